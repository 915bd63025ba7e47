//! W3C trace context (`traceparent`, `tracestate`) read from request headers, by the edge for
//! a trusted caller's trace and by the core for the edge's.

/// Reads trace headers from an `http::HeaderMap` for an OpenTelemetry propagator.
pub struct HeaderReader<'a>(pub &'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
