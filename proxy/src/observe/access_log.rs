//! One structured line per request, written by the `logging` phase.

use crate::proxy::ctx::RequestCtx;
use pingora::proxy::Session;

pub const TARGET: &str = "edge::access";

pub fn write(
    session: &Session,
    ctx: &RequestCtx,
    error: Option<&pingora::Error>,
    trace_id: Option<&str>,
) {
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let client = ctx.client_ip;
    let route = ctx.route.as_ref().map(|r| r.name.as_str()).unwrap_or("");
    tracing::info!(
        target: TARGET,
        request_id = ctx.request_id.to_str().unwrap_or(""),
        method = req.method.as_str(),
        // the path only: query strings can carry tokens and personal data
        path = req.uri.path(),
        status,
        route,
        upstream = ctx.server.map(tracing::field::display),
        duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
        bytes_sent = session.body_bytes_sent(),
        client_ip = client.map(tracing::field::display),
        error = error.map(|e| e.etype().as_str()),
        trace_id,
        "request"
    );
}
