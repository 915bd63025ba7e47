//! The bytes a consistent-hash pool hashes on, taken from the request without allocating.

use crate::config::{Balance, HashKey};
use pingora::proxy::Session;
use std::net::IpAddr;

/// `buf` holds the client IP when that is the key. `client` is the resolved client address
/// (through trusted proxies) and `user` the verified subject: identity headers from clients
/// are stripped before this runs, so hashing on them would hash an empty key.
pub fn extract<'a>(
    balance: &Balance,
    session: &'a Session,
    client: Option<IpAddr>,
    user: Option<&'a str>,
    buf: &'a mut [u8; 16],
) -> &'a [u8] {
    let Balance::ConsistentHash(key) = balance else {
        return b"";
    };
    match key {
        HashKey::User => user.map_or(b"", str::as_bytes),
        HashKey::ClientIp => match client {
            Some(IpAddr::V4(ip)) => {
                buf[..4].copy_from_slice(&ip.octets());
                &buf[..4]
            }
            Some(IpAddr::V6(ip)) => {
                *buf = ip.octets();
                &buf[..]
            }
            None => b"",
        },
        HashKey::Path => session.req_header().uri.path().as_bytes(),
        HashKey::Header(name) => session.get_header_bytes(name),
        HashKey::Cookie(name) => {
            auth_core::plumbing::cookie::get_bytes(&session.req_header().headers, name)
                .unwrap_or(b"")
        }
    }
}
