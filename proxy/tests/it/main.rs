//! Integration tests: one binary, real processes and servers (see `support`).

mod support;

mod access_log;
mod attacks;
mod auth;
mod balancing;
mod bot_filter;
mod config_errors;
mod degradation;
mod errors;
mod harness;
mod identity;
mod observability;
mod partitions;
mod rate_limit;
mod reload;
mod request_id;
mod routing;
mod social;
mod streaming;
mod tls;
mod upgrade;
