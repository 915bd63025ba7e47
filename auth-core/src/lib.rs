//! The cinema's authentication core: accounts, passwords, tokens, roles and login history.
//!
//! Domain services are `impl Auth` blocks by subject (`account.rs`: registration, login,
//! profile, history; `session.rs`: refresh and logout; `admin.rs`: roles; `social/service.rs`:
//! sign-in with providers, link, unlink). They speak the vocabulary of `model.rs` (API types,
//! `LoginMethod`, `FailureReason`) and reach PostgreSQL through `repo/`, whose row types are
//! converted at that boundary, and Redis through `throttle.rs` and `revocation.rs`. The HTTP
//! layer (`http/`) is a thin axum router; every error goes through `error::Error` and is mapped
//! to a status code in one place (`http/error.rs`). The edge serves the router on a loopback
//! listener and routes `/auth/*` to it like to any upstream.

// The public surface is what the edge uses: the core itself (`Auth`, `Config`, `serve`),
// token verification (`token`, `keys`, `revocation`), the settings the edge validates
// (`config`, `social`, `client_network`) and the shared request plumbing. Everything else is
// the core's own business.
mod account;
mod admin;
pub mod client_network;
pub mod config;
mod core;
mod db_gate;
mod device;
pub mod device_grant;
mod email;
pub mod error;
mod http;
pub mod keys;
mod lifecycle;
pub mod mail;
mod migrate;
mod model;
mod password;
pub mod plumbing;
pub mod redis_client;
mod refresh;
mod repo;
pub mod revocation;
mod serve;
mod session;
pub mod social;
mod stats;
mod throttle;
pub mod token;

pub use crate::config::Config;
pub use crate::core::Auth;
pub use crate::error::Error;
pub use crate::http::openapi_json;
pub use crate::serve::serve;
pub use crate::stats::{LoginOutcomes, Stats};
