//! Request filters: the decisions a routed request goes through before it is proxied.

pub mod botfilter;
pub mod identity;
pub mod limiter;
