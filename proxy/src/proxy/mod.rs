//! The request path: Pingora's `ProxyHttp` phases (`service`), the per-request state they
//! share (`ctx`), how a request is normalised before any decision (request id, canonical
//! path, client address) and how the edge answers by itself (`respond`, `error`).

pub mod canonical_path;
pub mod client_ip;
pub mod ctx;
pub mod edge_paths;
pub mod error;
pub mod forward_auth;
pub mod forwarding;
pub mod header_rules;
pub mod message_limits;
pub mod redirect;
pub mod request_id;
pub mod respond;
pub mod service;
