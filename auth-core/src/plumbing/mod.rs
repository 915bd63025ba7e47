//! Request plumbing both crates need, written once: the edge (Pingora) and the core (axum)
//! share the `http` crate's types, so these take `http::HeaderMap` and plain strings. One
//! rule each: where the edge and the core disagreed, a request could pass one and not the
//! other.

pub mod bearer;
pub mod clock;
pub mod cookie;
pub mod html;
pub mod redact;
pub mod request_id;
pub mod trace_context;
