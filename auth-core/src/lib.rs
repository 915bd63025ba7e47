//! The cinema's authentication core: accounts, passwords, tokens, roles and login history.
//!
//! Domain logic lives in `Auth` (`account.rs`, `session.rs`, `admin.rs`) and talks to
//! PostgreSQL through `repo/` and to Redis through `throttle.rs` and `revocation.rs`. The HTTP
//! layer (`http/`) is a thin axum router; every error goes through `error::Error` and is mapped
//! to a status code in one place (`http/error.rs`). The edge serves the router on a loopback
//! listener and routes `/auth/*` to it like to any upstream.

mod account;
mod admin;
pub mod client_network;
pub mod clock;
pub mod config;
mod core;
pub mod db_gate;
pub mod device;
pub mod email;
pub mod error;
pub mod http;
pub mod keys;
pub mod migrate;
pub mod model;
pub mod password;
pub mod refresh;
mod repo;
pub mod revocation;
mod serve;
mod session;
pub mod social;
pub mod stats;
mod throttle;
pub mod token;

pub use crate::config::Config;
pub use crate::core::Auth;
pub use crate::error::Error;
pub use crate::serve::serve;
