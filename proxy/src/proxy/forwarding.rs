//! The forwarding headers an upstream receives. Whatever a client sends in them is replaced:
//! `X-Forwarded-For` is the chain the edge believes (the client, then trusted proxies, then
//! the socket peer when it is one of them), `X-Forwarded-Proto` and `X-Forwarded-Host` say how
//! the client reached the edge, and `Forwarded` (RFC 7239) passes only from a trusted proxy
//! whose `Forwarded` is the header the edge reads. Many balancers append to X-Forwarded-For but
//! pass a client's X-Forwarded-Host through, so a trusted proxy's `X-Forwarded-Proto`/`-Host`
//! (one line each, well-formed) are kept only when `[client_ip] proxies_set_proto_host` says
//! it sets them; `X-Forwarded-Port`/`-Prefix` (read by Spring, Werkzeug) likewise.

use crate::proxy::ctx::RequestCtx;
use pingora::http::RequestHeader;
use std::fmt::Write;
use std::net::IpAddr;

const XFF: &str = "x-forwarded-for";
const PROTO: &str = "x-forwarded-proto";
const HOST: &str = "x-forwarded-host";
const PORT: &str = "x-forwarded-port";
const PREFIX: &str = "x-forwarded-prefix";

/// `a, b, c` for `X-Forwarded-For`.
pub fn join(chain: &[IpAddr]) -> String {
    let mut out = String::with_capacity(chain.len() * 16);
    for (i, ip) in chain.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{ip}");
    }
    out
}

/// Writes the forwarding headers; `client_ip` is the resolved client, formatted.
pub fn write_upstream(
    upstream: &mut RequestHeader,
    ctx: &RequestCtx,
    client_ip: &str,
    tls: bool,
) -> pingora::Result<()> {
    match &ctx.forwarded_for {
        Some(chain) => upstream.insert_header(XFF, chain.as_str())?,
        None => upstream.insert_header(XFF, client_ip)?,
    }
    // a lookup is cheaper than Pingora's remove (two maps) for the usual absent header
    if !ctx.keep_forwarded && upstream.headers.contains_key(http::header::FORWARDED) {
        upstream.remove_header(&http::header::FORWARDED);
    }
    let proto_kept = ctx.keep_proto_host
        && single(&upstream.headers, PROTO).is_some_and(|v| {
            v.as_bytes().eq_ignore_ascii_case(b"https")
                || v.as_bytes().eq_ignore_ascii_case(b"http")
        });
    if !proto_kept {
        upstream.insert_header(PROTO, if tls { "https" } else { "http" })?;
    }
    let host_kept = ctx.keep_proto_host
        && single(&upstream.headers, HOST).is_some_and(|v| {
            v.to_str()
                .is_ok_and(|h| h.parse::<http::uri::Authority>().is_ok())
        });
    if !host_kept {
        let host = upstream
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| {
                upstream
                    .uri
                    .authority()
                    .and_then(|a| a.as_str().parse().ok())
            });
        match host {
            Some(h) => upstream.insert_header(HOST, h)?,
            None => {
                upstream.remove_header(HOST);
            }
        }
    }
    if !ctx.keep_proto_host {
        for name in [PORT, PREFIX] {
            if upstream.headers.contains_key(name) {
                upstream.remove_header(name);
            }
        }
    }
    Ok(())
}

/// The header's value when it came as exactly one line (two lines are two opinions).
fn single(headers: &http::HeaderMap, name: &str) -> Option<http::HeaderValue> {
    let mut all = headers.get_all(name).iter();
    all.next().filter(|_| all.next().is_none()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_a_chain() {
        let chain: Vec<IpAddr> = ["203.0.113.7", "2001:db8::1", "10.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(join(&chain), "203.0.113.7, 2001:db8::1, 10.0.0.2");
        assert_eq!(join(&chain[..1]), "203.0.113.7");
    }
}
