//! One file per section of the conf: each turns its file mirror (`file.rs`) into the
//! validated runtime type (`runtime.rs`), reporting problems by file and key. They depend on
//! `values` and `resolve` only, never on each other.

mod auth;
mod bot_filter;
mod client_ip;
mod device;
mod forward_auth;
mod http;
mod issuers;
mod limits;
mod listeners;
mod mail;
mod redis;
mod routes;
mod server;
mod social;
mod tracing;
mod upstreams;

pub use bot_filter::SECRET_ENV as BOT_SECRET_ENV;

pub(super) use self::auth::settings as auth_settings;
pub(super) use self::bot_filter::settings as bot_filter_settings;
pub(super) use self::client_ip::*;
pub(super) use self::forward_auth::*;
pub(super) use self::http::*;
pub(super) use self::issuers::*;
pub(super) use self::limits::*;
pub(super) use self::listeners::*;
pub(super) use self::mail::settings as mail_settings;
pub(super) use self::redis::*;
pub(super) use self::routes::*;
pub(super) use self::server::*;
pub(super) use self::social::settings as social_settings;
pub(super) use self::tracing::*;
pub(super) use self::upstreams::*;
