//! Bucket keys: `rl:{policy}:{kind}:{value}`, written into a buffer the request reuses for
//! each of its policies. One key per Redis call keeps the script Redis Cluster safe.

use super::Policy;
use crate::config::LimitKey;
use http::HeaderMap;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// What a request is counted as.
pub struct Subject<'a> {
    /// The client network (`[client_ip]` prefixes) the address belongs to.
    pub ip: IpNet,
    /// The verified user id, when identity at the edge has one.
    pub user: Option<&'a str>,
    pub route: &'a str,
    pub headers: &'a HeaderMap,
}

/// Header values longer than this are hashed so a client cannot grow Redis keys.
const MAX_RAW_VALUE: usize = 64;

impl Subject<'_> {
    pub fn write_key(&self, policy: &Policy, buf: &mut String) {
        buf.clear();
        let _ = write!(buf, "rl:{}:", policy.name);
        let _ = match &policy.key {
            LimitKey::Ip => write!(buf, "ip:{}", self.ip),
            LimitKey::Route => write!(buf, "route:{}", self.route),
            LimitKey::User => match self.user {
                Some(user) => write!(buf, "user:{user}"),
                // anonymous requests are counted by address
                None => write!(buf, "ip:{}", self.ip),
            },
            LimitKey::Header(name) => match self
                .headers
                .get(name)
                .map(|v| v.as_bytes())
                .filter(|v| !v.is_empty())
            {
                // braces would make a hash tag: the client would pick the Redis Cluster slot
                // of its buckets and could pile every bucket on one shard
                Some(v)
                    if v.len() <= MAX_RAW_VALUE
                        && v.iter()
                            .all(|b| b.is_ascii_graphic() && *b != b'{' && *b != b'}') =>
                {
                    // graphic ASCII is valid UTF-8
                    write!(buf, "h:{}", std::str::from_utf8(v).unwrap_or(""))
                }
                Some(v) => {
                    // SHA-256 is the same on every replica whatever toolchain built it
                    // (std's DefaultHasher is not guaranteed stable across releases)
                    let digest = Sha256::digest(v);
                    let _ = buf.write_str("hh:");
                    digest[..8].iter().try_for_each(|b| write!(buf, "{b:02x}"))
                }
                None => write!(buf, "ip:{}", self.ip),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LimitSpec, OnRedisDown, RateLimitSettings};

    fn policy(key: LimitKey) -> Policy {
        let spec = LimitSpec {
            name: "p".into(),
            key,
            rate: 1.0,
            burst: 1,
            cost: 1,
            on_redis_down: OnRedisDown::Local,
            lease: crate::config::LeaseSetting::Off,
        };
        Policy::compile(&spec, &RateLimitSettings::default())
    }

    #[test]
    fn keys_by_kind() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "abc".parse().unwrap());
        let s = Subject {
            ip: "10.1.2.3/32".parse().unwrap(),
            user: None,
            route: "movies",
            headers: &headers,
        };
        let mut buf = String::new();
        let key = |k: LimitKey, buf: &mut String| {
            s.write_key(&policy(k), buf);
            buf.clone()
        };
        assert_eq!(key(LimitKey::Ip, &mut buf), "rl:p:ip:10.1.2.3/32");
        assert_eq!(key(LimitKey::Route, &mut buf), "rl:p:route:movies");
        assert_eq!(
            key(LimitKey::User, &mut buf),
            "rl:p:ip:10.1.2.3/32",
            "anonymous: by IP"
        );
        assert_eq!(
            key(LimitKey::Header("x-api-key".parse().unwrap()), &mut buf),
            "rl:p:h:abc"
        );
        assert_eq!(
            key(LimitKey::Header("x-missing".parse().unwrap()), &mut buf),
            "rl:p:ip:10.1.2.3/32"
        );
        let s = Subject {
            user: Some("u-42"),
            ..s
        };
        s.write_key(&policy(LimitKey::User), &mut buf);
        assert_eq!(buf, "rl:p:user:u-42");
    }

    #[test]
    fn long_or_odd_header_values_are_hashed() {
        let mut headers = HeaderMap::new();
        headers.insert("x-k", "y".repeat(500).parse().unwrap());
        let s = Subject {
            ip: "10.1.2.3/32".parse().unwrap(),
            user: None,
            route: "r",
            headers: &headers,
        };
        let mut buf = String::new();
        s.write_key(&policy(LimitKey::Header("x-k".parse().unwrap())), &mut buf);
        // the first 8 bytes of SHA-256("y" x 500), computed outside Rust: every build and
        // every replica must name this bucket the same
        assert_eq!(buf, "rl:p:hh:a730708b6f663849");
        // a value with a hash tag is hashed too: no client chooses the cluster slot
        let mut tagged = HeaderMap::new();
        tagged.insert("x-k", "{slot7}abc".parse().unwrap());
        let s = Subject {
            headers: &tagged,
            ..s
        };
        s.write_key(&policy(LimitKey::Header("x-k".parse().unwrap())), &mut buf);
        assert!(buf.starts_with("rl:p:hh:") && !buf.contains('{'), "{buf}");
    }
}
