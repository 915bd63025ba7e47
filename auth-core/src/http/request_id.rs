//! The request id of the request being handled (and the response headers every answer gets), for error bodies and logs. The edge always
//! sends `x-request-id`; a request that reaches the core directly gets a fresh one.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub use crate::plumbing::request_id::HEADER;

/// The current request's id, or "" outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default()
}

/// Middleware: runs the handler with the request id in scope and echoes it on the response.
pub async fn scope(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .filter(|v| crate::plumbing::request_id::is_safe(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(crate::plumbing::request_id::generate);
    let span = tracing::info_span!("auth.request", request_id = %id, method = %req.method(), path = %req.uri().path());
    // continue the edge's trace: the edge sends `traceparent` with every proxied request
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&crate::plumbing::trace_context::HeaderReader(req.headers()))
    });
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
    let mut response =
        tracing::Instrument::instrument(REQUEST_ID.scope(id.clone(), next.run(req)), span).await;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(HEADER, v);
    }
    // tokens and account data must not sit in a cache (RFC 6749 5.1); public documents such
    // as the JWKS set their own policy
    if !headers.contains_key(axum::http::header::CACHE_CONTROL) {
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    response
}
