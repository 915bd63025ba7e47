//! Logging setup in one place: JSON or human lines to stdout through a non-blocking writer, so
//! a slow log pipe never stalls a request. Pingora's own `log` records are captured too.

use crate::config::{LogFormat, LogSettings};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; keep the guard alive until exit so buffered lines flush.
/// With tracing on, `tracing` spans (the auth core's `#[instrument]`s) are exported too.
pub fn init(log: &LogSettings, traces: Option<&crate::observe::traces::Tracing>) -> WorkerGuard {
    use tracing_subscriber::prelude::*;
    let spec = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| log.level.clone());
    let filter = filter(&spec);
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let lines = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Human => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
    };
    let spans =
        traces.map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer_for("auth-core")));
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(spans)
        .try_init();
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
    guard
}

/// Crates whose debug output carries whole request and response headers (cookies,
/// `Authorization`, `Set-Cookie` with tokens) or URLs with tokens in their query.
const HEADER_DUMPERS: &[&str] = &[
    "pingora_core",
    "pingora_proxy",
    "pingora_http",
    "pingora_pool",
    "pingora_load_balancing",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
];

/// The log filter of `spec`, with the header-dumping crates held at info unless `spec` names
/// them itself: `level = "debug"` must not write tokens and passwords to the log.
fn filter(spec: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    for krate in HEADER_DUMPERS.iter().filter(|k| !spec.contains(*k)) {
        if let Ok(directive) = format!("{krate}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Plain stderr logging for commands that run before a config is known.
pub fn init_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
