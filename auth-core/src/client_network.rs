//! One notion of "client network", shared by every per-client count of the edge and the core:
//! the limiter's IP keys, the bot filter's client and the core's login throttle. Counting
//! exact IPv6 addresses would hand every client 2^64 fresh buckets (one /64 is what a home
//! or a phone gets), so IPv6 is grouped by prefix; IPv4-mapped IPv6 addresses (a dual-stack
//! listener's IPv4 clients) are counted as the IPv4 address they carry.

use ipnet::IpNet;
use std::net::IpAddr;

/// The prefix lengths that make one client network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNetworks {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for ClientNetworks {
    fn default() -> Self {
        ClientNetworks {
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

impl ClientNetworks {
    /// The network `ip` counts under.
    pub fn of(&self, ip: IpAddr) -> IpNet {
        let ip = canonical_ip(ip);
        let prefix = match ip {
            IpAddr::V4(_) => self.ipv4_prefix.min(32),
            IpAddr::V6(_) => self.ipv6_prefix.min(128),
        };
        // prefixes are clamped to their family's length above, so this cannot fail
        IpNet::new(ip, prefix)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(ip))
    }

    /// The network of an address the core got as text (`x-real-ip`, a stored `inet`); None
    /// when there is none or it does not parse.
    pub fn of_text(&self, ip: Option<&str>) -> Option<String> {
        let ip: IpAddr = ip?.parse().ok()?;
        Some(self.of(ip).to_string())
    }
}

/// `::ffff:a.b.c.d` is `a.b.c.d`: one client, whichever socket family it arrived on.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(n: &ClientNetworks, ip: &str) -> String {
        n.of(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn defaults_group_ipv6_by_64_and_keep_ipv4_exact() {
        let n = ClientNetworks::default();
        assert_eq!(net(&n, "203.0.113.7"), "203.0.113.7/32");
        assert_eq!(net(&n, "2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(net(&n, "2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_ne!(net(&n, "2001:db8:1:3::1"), net(&n, "2001:db8:1:2::1"));
        assert_eq!(net(&n, "::1"), "::/64");
    }

    #[test]
    fn text_addresses_and_garbage() {
        let n = ClientNetworks::default();
        assert_eq!(
            n.of_text(Some("2001:db8::1")).as_deref(),
            Some("2001:db8::/64")
        );
        assert_eq!(
            n.of_text(Some("::ffff:192.0.2.1")).as_deref(),
            Some("192.0.2.1/32")
        );
        assert_eq!(n.of_text(Some("not an ip")), None);
        assert_eq!(n.of_text(None), None);
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let n = ClientNetworks::default();
        assert_eq!(net(&n, "::ffff:198.51.100.9"), "198.51.100.9/32");
        assert_ne!(
            net(&n, "::ffff:198.51.100.9"),
            net(&n, "::ffff:198.51.100.10")
        );
        let wide = ClientNetworks {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        };
        assert_eq!(net(&wide, "::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(net(&wide, "2001:db8:1:2::1"), "2001:db8:1::/48");
    }
}
