//! `[client_ip]`: trusted proxies, the forwarding header, client network prefixes.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use auth_core::client_network::ClientNetworks;

pub(in crate::config) fn client_ip_spec(
    file: &str,
    c: &ClientIpFile,
    p: &mut Problems,
) -> ClientIpSpec {
    // header names are case-insensitive
    let lower = c.header.as_deref().map(str::to_ascii_lowercase);
    let header: ForwardedHeader = choice(file, "client_ip.header", lower.as_deref(), p);
    let defaults = ClientNetworks::default();
    let mut prefix =
        |key: &str, value: Option<u8>, default: u8, range: std::ops::RangeInclusive<u8>| {
            let v = value.unwrap_or(default);
            if !range.contains(&v) {
                p.add(
                    file,
                    format!("client_ip.{key}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                );
            }
            v
        };
    let networks = ClientNetworks {
        // wider than /16 or /32 would put unrelated clients in one bucket
        ipv4_prefix: prefix("ipv4_prefix", c.ipv4_prefix, defaults.ipv4_prefix, 16..=32),
        ipv6_prefix: prefix("ipv6_prefix", c.ipv6_prefix, defaults.ipv6_prefix, 32..=128),
    };
    ClientIpSpec {
        trusted_proxies: cidrs(file, "client_ip.trusted_proxies", &c.trusted_proxies, p),
        header,
        networks,
        proxies_set_proto_host: c.proxies_set_proto_host.unwrap_or(false),
    }
}
