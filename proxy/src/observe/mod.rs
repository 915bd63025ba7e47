//! What the edge tells its operators: logs, the access log, traces, metrics and health.

pub mod access_log;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod request_metrics;
pub mod traces;
