//! Route table: host + longest path prefix on segment boundaries. Built once per config
//! generation; a lookup allocates nothing for lowercase hosts.

pub mod balance_key;
pub mod upstream;

use crate::config::{AuthMode, RouteSpec};
use crate::filters::limiter::Policy;
use crate::filters::{Chain, Kit};
use crate::routing::upstream::Pool;
use std::collections::HashMap;
use std::sync::Arc;

/// A compiled route.
pub struct Route {
    pub name: String,
    pub prefix: String,
    pub strip_prefix: bool,
    pub pool: Arc<Pool>,
    /// The request filters of this route, compiled with its generation.
    pub filters: Chain,
    pub auth: AuthMode,
    /// Any of these roles (empty: any valid token).
    pub roles: Box<[String]>,
    /// The token must carry `email_verified: true`.
    pub require_verified_email: bool,
    pub stats: Arc<crate::observe::request_metrics::RouteStats>,
    /// `;` parameters in path segments are passed on.
    pub matrix_params: bool,
    /// Largest request body in bytes; None: no limit.
    pub max_body: Option<u64>,
    pub request_headers: crate::proxy::header_rules::HeaderRules,
    pub response_headers: crate::proxy::header_rules::HeaderRules,
}

impl Route {
    /// The path sent upstream: the matched prefix removed when `strip_prefix` is set.
    pub fn upstream_path<'a>(&self, path: &'a str) -> &'a str {
        if !self.strip_prefix || self.prefix == "/" {
            return path;
        }
        let rest = &path[self.prefix.len().min(path.len())..];
        if rest.is_empty() {
            "/"
        } else {
            rest
        }
    }
}

#[derive(Default)]
pub struct Router {
    /// Routes for one host, longest prefix first.
    by_host: HashMap<String, Vec<Arc<Route>>>,
    /// Routes without a host, longest prefix first.
    any_host: Vec<Arc<Route>>,
}

impl Router {
    pub fn build(
        specs: &[RouteSpec],
        pools: &HashMap<String, Arc<Pool>>,
        policies: &HashMap<String, Arc<Policy>>,
        kit: &Kit,
    ) -> Result<Router, String> {
        let mut router = Router::default();
        for spec in specs {
            let pool = pools.get(&spec.upstream).ok_or_else(|| {
                format!("route {}: unknown upstream {}", spec.name, spec.upstream)
            })?;
            let limits: Vec<Arc<Policy>> = spec
                .limits
                .iter()
                .map(|l| {
                    policies
                        .get(l)
                        .cloned()
                        .ok_or_else(|| format!("route {}: unknown limit {l}", spec.name))
                })
                .collect::<Result<_, _>>()?;
            let filters = Chain::for_route(spec, limits, kit)?;
            let route = Arc::new(Route {
                name: spec.name.clone(),
                prefix: spec.path.clone(),
                strip_prefix: spec.strip_prefix,
                auth: spec.auth,
                roles: spec.roles.clone().into_boxed_slice(),
                require_verified_email: spec.require_verified_email,
                stats: kit.metrics.stats_for(&spec.name),
                pool: pool.clone(),
                filters,
                matrix_params: spec.matrix_params,
                max_body: spec.max_body,
                request_headers: spec.request_headers.clone(),
                response_headers: spec.response_headers.clone(),
            });
            match &spec.host {
                Some(h) => router.by_host.entry(h.clone()).or_default().push(route),
                None => router.any_host.push(route),
            }
        }
        let by_len = |a: &Arc<Route>, b: &Arc<Route>| b.prefix.len().cmp(&a.prefix.len());
        router.any_host.sort_by(by_len);
        for routes in router.by_host.values_mut() {
            routes.sort_by(by_len);
        }
        Ok(router)
    }

    /// The route for `host` (may carry a port, any case) and `path` (no query). The longest
    /// matching prefix wins across host routes and host-less routes; on a tie the host route wins.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        // "cinema.example." is the same name as "cinema.example" (DNS root): without this a
        // trailing dot would skip the host's routes for the host-less ones
        let host_routes = host.map(|h| {
            let h = strip_port(h);
            h.strip_suffix('.').unwrap_or(h)
        });
        let host_routes = host_routes.and_then(|h| {
            if h.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_host.get(&h.to_ascii_lowercase())
            } else {
                self.by_host.get(h)
            }
        });
        let specific =
            host_routes.and_then(|routes| routes.iter().find(|r| prefix_matches(&r.prefix, path)));
        let general = self
            .any_host
            .iter()
            .find(|r| prefix_matches(&r.prefix, path));
        match (specific, general) {
            (Some(s), Some(g)) if g.prefix.len() > s.prefix.len() => Some(g),
            (Some(s), _) => Some(s),
            (None, g) => g,
        }
    }
}

/// The host a request is for: HTTP/2's `:authority`, else the `Host` header. A host that is
/// not a name or an IP literal with an optional numeric port is refused, as is an HTTP/1.1
/// request without one (RFC 9112 §3.2): services behind the edge parse odd hosts their own way
/// (`cinema.example:abc` is `cinema.example` to some), so the edge must not route them to
/// another host's routes.
pub fn request_host(
    req: &pingora::http::RequestHeader,
) -> Result<Option<&str>, crate::proxy::error::EdgeError> {
    use crate::proxy::error::EdgeError::BadRequest;
    let host = match req.uri.authority() {
        Some(a) => Some(a.as_str()),
        None => {
            let mut values = req.headers.get_all(http::header::HOST).iter();
            let first = values.next();
            if values.next().is_some() {
                return Err(BadRequest("more than one Host header"));
            }
            match first {
                Some(v) => Some(v.to_str().map_err(|_| BadRequest("invalid Host header"))?),
                None if req.version == http::Version::HTTP_11 => {
                    return Err(BadRequest("missing Host header"))
                }
                None => None,
            }
        }
    };
    match host {
        Some(h) if !valid_host(h) => Err(BadRequest("invalid Host header")),
        h => Ok(h),
    }
}

/// `name[:port]` or `[v6][:port]`; a name is dot-separated labels of letters, digits, `-`
/// and `_`, with at most one trailing dot; a port is 1-5 digits.
fn valid_host(h: &str) -> bool {
    let (name, port) = if let Some(rest) = h.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => ("", p.strip_prefix(':').unwrap_or("x")),
        }
    } else {
        match h.rsplit_once(':') {
            Some((name, port)) => (name, port),
            None => (h, "0"),
        }
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let name = name.strip_suffix('.').unwrap_or(name);
    let name_ok = h.starts_with('[')
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }));
    port_ok && name_ok
}

/// "/api" matches "/api", "/api/" and "/api/x" but not "/apix".
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080" → "::1"
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Balance, UpstreamSpec};
    use std::time::Duration;

    fn pool(name: &str) -> Arc<Pool> {
        let spec = UpstreamSpec {
            name: name.into(),
            servers: vec!["127.0.0.1:1".parse().unwrap()],
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            retries: 0,
            tls_sni: None,
            protocol: Default::default(),
            health_check: None,
        };
        Arc::new(Pool::build(spec).unwrap())
    }

    fn route(name: &str, host: Option<&str>, path: &str, strip: bool) -> RouteSpec {
        RouteSpec {
            name: name.into(),
            host: host.map(Into::into),
            path: path.into(),
            upstream: "u".into(),
            strip_prefix: strip,
            limits: vec![],
            auth: Default::default(),
            roles: vec![],
            require_verified_email: false,
            matrix_params: false,
            max_body: Some(crate::config::DEFAULT_MAX_BODY),
            issuers: vec!["self".into()],
            request_headers: Default::default(),
            response_headers: Default::default(),
        }
    }

    fn router(specs: &[RouteSpec]) -> Router {
        let pools = HashMap::from([("u".to_string(), pool("u"))]);
        let limiter = Arc::new(crate::filters::limiter::Limiter::new(
            None,
            &crate::config::RateLimitSettings::default(),
        ));
        let kit = Kit {
            limiter: &limiter,
            headers_on_success: true,
            bot: None,
            identity: None,
            issuers: &HashMap::new(),
            metrics: &Default::default(),
        };
        Router::build(specs, &pools, &HashMap::new(), &kit).unwrap()
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let r = router(&[
            route("root", None, "/", false),
            route("api", None, "/api", false),
            route("v1", None, "/api/v1", false),
        ]);
        let name = |p: &str| r.find(None, p).map(|r| r.name.as_str());
        assert_eq!(name("/api/v1/movies"), Some("v1"));
        assert_eq!(name("/api/v1"), Some("v1"));
        assert_eq!(name("/api/v10"), Some("api"));
        assert_eq!(name("/apix"), Some("root"));
        assert_eq!(name("/"), Some("root"));
    }

    #[test]
    fn host_routes_and_hostless_routes() {
        let r = router(&[
            route("any", None, "/api/v1", false),
            route("host", Some("cinema.example"), "/api", false),
        ]);
        let name = |h: &str, p: &str| r.find(Some(h), p).map(|r| r.name.clone());
        // the longer host-less prefix beats the shorter host prefix
        assert_eq!(name("cinema.example", "/api/v1/x").as_deref(), Some("any"));
        assert_eq!(name("cinema.example", "/api/x").as_deref(), Some("host"));
        assert_eq!(
            name("CINEMA.example:8080", "/api/x").as_deref(),
            Some("host")
        );
        assert_eq!(name("other.example", "/api/x"), None);
        assert_eq!(
            name("cinema.example.:8080", "/api/x").as_deref(),
            Some("host"),
            "a trailing dot is the same host"
        );
        assert_eq!(name("other.example", "/api/v1"), Some("any".into()));
    }

    #[test]
    fn equal_prefix_prefers_host_route() {
        let r = router(&[
            route("any", None, "/api", false),
            route("host", Some("a.example"), "/api", false),
        ]);
        assert_eq!(r.find(Some("a.example"), "/api").unwrap().name, "host");
        assert_eq!(r.find(Some("b.example"), "/api").unwrap().name, "any");
        assert_eq!(r.find(None, "/api").unwrap().name, "any");
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash() {
        let r = router(&[
            route("s", None, "/svc", true),
            route("root", None, "/", true),
        ]);
        let s = r.find(None, "/svc/a/b").unwrap();
        assert_eq!(s.upstream_path("/svc/a/b"), "/a/b");
        assert_eq!(s.upstream_path("/svc"), "/");
        assert_eq!(r.find(None, "/x").unwrap().upstream_path("/x"), "/x");
    }

    #[test]
    fn hosts_are_names_or_ip_literals_with_numeric_ports() {
        for ok in [
            "cinema.example",
            "cinema.example.",
            "Cinema.Example:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "localhost",
            "a_b.example",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "cinema.example..",
            "cinema.example:abc",
            "cinema.example:",
            "cinema.example:123456",
            "cinema.example, other",
            "cinema%2eexample",
            "cin ema.example",
            "[::1",
            "[zz]",
            "[::1]x",
            "user@cinema.example",
            ".cinema.example",
            "кино.example",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn a_host_is_required_in_http_1_1_only() {
        let mut req = pingora::http::RequestHeader::build("GET", b"/", None).unwrap();
        assert!(request_host(&req).is_err(), "HTTP/1.1 without Host");
        req.set_version(http::Version::HTTP_10);
        assert_eq!(request_host(&req).unwrap(), None);
        req.insert_header("host", "a.example:81").unwrap();
        assert_eq!(request_host(&req).unwrap(), Some("a.example:81"));
        req.append_header("host", "b.example").unwrap();
        assert!(request_host(&req).is_err(), "two Host headers");
    }

    #[test]
    fn ports_and_ipv6_hosts() {
        assert_eq!(strip_port("a.example:8080"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }
}
