//! The client's IP: the socket peer, unless that peer is a trusted proxy, in which case the
//! one configured forwarding header is walked from the right, skipping trusted hops. Headers
//! from anyone else, and the other forwarding headers, are ignored, so a client cannot choose
//! the IP its rate limit is counted under. Addresses are canonical: an IPv4-mapped IPv6 peer
//! (a dual-stack listener) is its IPv4 address.

use crate::config::{ClientIpSpec, ForwardedHeader};
use auth_core::client_network::canonical_ip as canonical;
use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Resolves the client IP from the socket peer and, through trusted proxies, the header (the
/// request path takes the first address of `trusted_chain` itself, to keep the chain).
#[cfg(test)]
pub fn resolve(peer: IpAddr, headers: &HeaderMap, spec: &ClientIpSpec) -> IpAddr {
    trusted_chain(peer, headers, spec).map_or(canonical(peer), |chain| chain[0])
}

/// The addresses the edge believes, client first, socket peer last: the client, then the
/// trusted proxies it went through. None when the peer is not a trusted proxy (the chain is
/// the peer alone). Hops left of the client were written by the client or by proxies nobody
/// vouches for: they are not part of it.
pub fn trusted_chain(
    peer: IpAddr,
    headers: &HeaderMap,
    spec: &ClientIpSpec,
) -> Option<Vec<IpAddr>> {
    let peer = canonical(peer);
    let trusted = &spec.trusted_proxies[..];
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return None;
    }
    let hops = match spec.header {
        ForwardedHeader::XForwardedFor => xff_hops(headers),
        ForwardedHeader::Forwarded => forwarded_hops(headers),
        ForwardedHeader::XRealIp => real_ip_hops(headers),
    };
    let mut chain = vec![peer];
    // Rightmost first: the hop our trusted proxy saw. The first untrusted one is the client;
    // an unparsable hop ends the chain at the last address we believe.
    for hop in hops.unwrap_or_default().into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip, trusted) => chain.push(ip),
            Some(ip) => {
                chain.push(ip);
                break;
            }
            None => break,
        }
    }
    chain.reverse();
    Some(chain)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// `X-Real-IP`: one address; several header lines are a chain, as for X-Forwarded-For.
fn real_ip_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-real-ip")
        .iter()
        .map(|v| v.to_str().ok().and_then(|v| parse_hop(v.trim())))
        .collect();
    (!hops.is_empty()).then_some(hops)
}

/// Hops read from a forwarding header at most (the rightmost are the ones that matter): a
/// client behind a balancer cannot make every request parse thousands.
const MAX_HOPS: usize = 32;

/// Keeps the rightmost `MAX_HOPS` hops.
fn rightmost(mut hops: Vec<Option<IpAddr>>) -> Vec<Option<IpAddr>> {
    if hops.len() > MAX_HOPS {
        hops.drain(..hops.len() - MAX_HOPS);
    }
    hops
}

/// Every X-Forwarded-For value, comma-split, in order. None when the header is absent. Split
/// as bytes: one unreadable hop (a client's non-ASCII byte) must not hide the hops a proxy
/// appended to the same line.
fn xff_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        hops.extend(v.as_bytes().split(|b| *b == b',').map(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| parse_hop(h.trim()))
        }));
    }
    (!hops.is_empty()).then(|| rightmost(hops))
}

/// The `for=` of every Forwarded element, in order. None when the header is absent.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for v in headers.get_all(http::header::FORWARDED) {
        for element in v.as_bytes().split(|b| *b == b',') {
            let Ok(element) = std::str::from_utf8(element) else {
                hops.push(None);
                continue;
            };
            let node = element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                .map(|(_, v)| v.trim().trim_matches('"'));
            hops.push(node.and_then(parse_hop));
        }
    }
    (!hops.is_empty()).then(|| rightmost(hops))
}

/// "1.2.3.4", "1.2.3.4:5678", "[2001:db8::1]:443", "2001:db8::1".
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    let (ip, port) = h.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> ClientIpSpec {
        spec(list, ForwardedHeader::XForwardedFor)
    }

    fn spec(list: &[&str], header: ForwardedHeader) -> ClientIpSpec {
        ClientIpSpec {
            trusted_proxies: list.iter().map(|n| n.parse().unwrap()).collect(),
            header,
            networks: Default::default(),
            proxies_set_proto_host: false,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_trusted_chain_drops_what_the_client_wrote() {
        let spec = nets(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.0.0.5".parse().unwrap(),
        );
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        let chain = trusted_chain("10.0.0.2".parse().unwrap(), &h, &spec);
        assert_eq!(chain, Some(ips(&["203.0.113.7", "10.0.0.5", "10.0.0.2"])));
        assert_eq!(
            trusted_chain("198.51.100.1".parse().unwrap(), &h, &spec),
            None,
            "an untrusted peer's header is not believed"
        );
        // a trusted proxy that sent no header: the chain is the proxy alone
        let chain = trusted_chain("10.0.0.2".parse().unwrap(), &HeaderMap::new(), &spec);
        assert_eq!(chain, Some(ips(&["10.0.0.2"])));
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_ip() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            resolve(ip("9.9.9.9"), &h, &nets(&["10.0.0.0/8"])),
            ip("9.9.9.9")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &nets(&[])),
            ip("10.0.0.1"),
            "no trusted proxies: never believe"
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        // client spoofed 6.6.6.6; the real client 2.2.2.2 reached our proxy chain 10.0.0.5
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 2.2.2.2, 10.0.0.5")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("2.2.2.2"));
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &trusted),
            ip("2.2.2.2"),
            "several header lines"
        );
        let h = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &trusted),
            ip("10.0.0.9"),
            "all trusted: the leftmost"
        );
    }

    #[test]
    fn garbage_stops_the_walk() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "2.2.2.2, nonsense, 10.0.0.5")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_header_and_ports() {
        let trusted = spec(&["10.0.0.0/8", "::1/128"], ForwardedHeader::Forwarded);
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(resolve(ip("::1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "::ffff:5.5.5.5")]);
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &h, &nets(&["10.0.0.0/8"])),
            ip("5.5.5.5"),
            "mapped addresses"
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let h = headers(&[
            ("forwarded", "for=3.3.3.3:80"),
            ("x-forwarded-for", "4.4.4.4"),
            ("x-real-ip", "5.5.5.5"),
        ]);
        let with = |header| resolve(ip("10.1.1.1"), &h, &spec(&["10.0.0.0/8"], header));
        assert_eq!(with(ForwardedHeader::XForwardedFor), ip("4.4.4.4"));
        assert_eq!(with(ForwardedHeader::Forwarded), ip("3.3.3.3"));
        assert_eq!(with(ForwardedHeader::XRealIp), ip("5.5.5.5"));
        // a load balancer that appends only to X-Forwarded-For: a client's own Forwarded
        // header is not believed
        let h = headers(&[("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "2.2.2.2")]);
        assert_eq!(
            resolve(ip("10.1.1.1"), &h, &nets(&["10.0.0.0/8"])),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn mapped_peers_are_ipv4() {
        let h = HeaderMap::new();
        assert_eq!(
            resolve(ip("::ffff:203.0.113.9"), &h, &nets(&[])),
            ip("203.0.113.9")
        );
    }
}
