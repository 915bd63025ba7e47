//! Resolution of upstream addresses (DNS), done once when the conf is loaded.

use std::net::{SocketAddr, ToSocketAddrs};

/// Upstream servers may be named ("movies:8081" in compose); names are resolved when the
/// config is loaded, so a reload picks up DNS changes.
pub(super) fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if s.rsplit_once(':')
        .is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!("\"{s}\" is not host:port"));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("\"{s}\" resolves to no address")),
        Err(e) => Err(format!("cannot resolve \"{s}\": {e}")),
    }
}
