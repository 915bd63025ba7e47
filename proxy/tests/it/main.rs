//! Integration tests: one binary, real processes and servers (see `support`).

// The harness's helpers run outside #[test] functions, where clippy.toml's test allowance does
// not reach; a failed unwrap there fails the test that called it, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access_log;
mod account_lifecycle;
mod attacks;
mod auth;
mod balancing;
mod bot_filter;
mod config_errors;
mod connections;
mod contract;
mod degradation;
mod device_grant;
mod errors;
mod forward_auth;
mod forwarding;
mod grpc;
mod harness;
mod identity;
mod issuers;
mod message_limits;
mod observability;
mod partitions;
mod rate_limit;
mod redis_topologies;
mod reload;
mod request_id;
mod routing;
mod social;
mod streaming;
mod tls;
mod upgrade;
