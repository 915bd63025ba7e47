//! Who a client is, for the bot filter: its client network (`[client_ip]` prefixes, the same
//! the limiter and the login throttle count by: /32 and /64 by default; /24 suits an audience
//! behind carrier NAT) and its User-Agent. Stable across replicas, since challenge records in
//! Redis carry it.

use sha2::{Digest, Sha256};
#[cfg(test)]
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub network: ipnet::IpNet,
    /// SHA-256 of the User-Agent, truncated: binds passes without storing the string.
    pub ua_hash: [u8; 16],
    /// Hex id of (network, User-Agent): the key of rate buckets, failures and lockouts.
    pub id: String,
}

/// The networks the unit tests use: /24 and /64, so that a move within a /24 is tested.
#[cfg(test)]
pub const TEST_NETWORKS: auth_core::client_network::ClientNetworks =
    auth_core::client_network::ClientNetworks {
        ipv4_prefix: 24,
        ipv6_prefix: 64,
    };

impl Client {
    /// The client of `ip` with the test networks.
    #[cfg(test)]
    pub fn for_ip(ip: IpAddr, user_agent: &[u8]) -> Client {
        Client::new(TEST_NETWORKS.of(ip), user_agent)
    }

    pub fn new(network: ipnet::IpNet, user_agent: &[u8]) -> Client {
        let ua = Sha256::digest(user_agent);
        let mut ua_hash = [0u8; 16];
        ua_hash.copy_from_slice(&ua[..16]);
        let mut h = Sha256::new();
        h.update(network.to_string().as_bytes());
        h.update([0]);
        h.update(ua_hash);
        let id = hex(&h.finalize()[..12]);
        Client {
            network,
            ua_hash,
            id,
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_network_and_agent_is_the_same_client() {
        let ua = b"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)";
        let a = Client::for_ip("203.0.113.7".parse().unwrap(), ua);
        let b = Client::for_ip("203.0.113.200".parse().unwrap(), ua);
        assert_eq!(a, b, "carrier NAT moves a TV within its /24");
        assert_eq!(a.network.to_string(), "203.0.113.0/24");
        assert_ne!(a.id, Client::for_ip("203.0.114.7".parse().unwrap(), ua).id);
        assert_ne!(
            a.id,
            Client::for_ip("203.0.113.7".parse().unwrap(), b"Roku/DVP-9.10").id
        );
        let v6 = Client::for_ip("2001:db8:1:2:3:4:5:6".parse().unwrap(), ua);
        assert_eq!(v6.network.to_string(), "2001:db8:1:2::/64");
        assert_eq!(a.id.len(), 24);
    }
}
