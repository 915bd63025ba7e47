//! Per-request state shared by the proxy phases.

use crate::filters::limiter::Quota;
use crate::routing::Route;
use crate::server::generation::Generation;
use http::HeaderValue;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

pub struct RequestCtx {
    /// The config generation this request is served by, loaded once, in the first phase, and
    /// released once the request is routed.
    pub generation: Option<Arc<Generation>>,
    /// Set in the first phase; every answer and log line of the request carries it.
    pub request_id: HeaderValue,
    pub route: Option<Arc<Route>>,
    /// The server this attempt goes to.
    pub server: Option<SocketAddr>,
    /// Servers that refused a connection; empty (no allocation) unless a retry happened.
    pub tried: Vec<SocketAddr>,
    pub started: Instant,
    /// The client as resolved through trusted proxies (the socket peer otherwise).
    pub client_ip: Option<IpAddr>,
    /// The client network `client_ip` is counted under (`[client_ip]` prefixes).
    pub client_net: Option<ipnet::IpNet>,
    /// The peer is a trusted proxy and `[client_ip] header = "forwarded"`: its `Forwarded`
    /// goes upstream.
    pub keep_forwarded: bool,
    /// The peer is a trusted proxy that sets `X-Forwarded-Proto`/`-Host` itself
    /// (`[client_ip] proxies_set_proto_host`).
    pub keep_proto_host: bool,
    /// `X-Forwarded-For` for the upstream when the peer is a trusted proxy: the trusted chain
    /// and the peer (otherwise the client address alone is written).
    pub forwarded_for: Option<String>,
    /// RateLimit-* values for the response, when the route is limited.
    pub quota: Option<Quota>,
    /// The verified caller; `None` is anonymous.
    pub identity: Option<Arc<crate::filters::identity::Verified>>,
    /// The request's spans, when `[tracing]` is on.
    pub trace: Option<crate::observe::traces::RequestTrace>,
    /// This connection's place in its client network's count (kept across keep-alive
    /// requests); None when the client is not limited.
    pub connection: Option<Arc<crate::server::connections::Slot>>,
    /// The client's network had no connection slot left: the request is refused.
    pub connection_refused: bool,
    /// The request line and headers exceed `[http] max_header_block`: refused with 431.
    pub header_too_large: bool,
    /// The path of a request to the edge's own `/_edge/` namespace as it arrived, before the
    /// canonical form: forward auth reads its policy from it (Envoy appends the client's raw
    /// path after the policy, and `..` there must not climb into another policy).
    pub raw_edge_path: Option<Box<str>>,
    /// The route's body limit, counted while the body streams upstream.
    pub body: Option<crate::proxy::message_limits::BodyCounter>,
    /// Rate-limit keys are written here, one policy after another (allocated on first use).
    pub key_buf: String,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            generation: None,
            request_id: HeaderValue::from_static(""),
            route: None,
            server: None,
            tried: Vec::new(),
            started: Instant::now(),
            client_ip: None,
            client_net: None,
            keep_forwarded: false,
            keep_proto_host: false,
            forwarded_for: None,
            quota: None,
            identity: None,
            trace: None,
            key_buf: String::new(),
            connection: None,
            connection_refused: false,
            header_too_large: false,
            body: None,
            raw_edge_path: None,
        }
    }
}
