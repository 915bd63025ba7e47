//! OpenTelemetry traces: one server span per request, child spans for the phases that can
//! take time (bot filter, identity, rate limit, upstream), W3C `traceparent` to the upstream,
//! and export over OTLP (gRPC or HTTP/protobuf) in batches.
//!
//! Export never touches a request: finished spans go to a bounded queue that a background
//! thread drains; when the collector is slow or gone the queue fills and spans are dropped,
//! never waited for. An unsampled request gets a non-recording span, which costs an id and a
//! sampler decision. An incoming `traceparent` is continued only from `trust_incoming` peers,
//! so clients can neither choose trace ids nor force sampling.

use crate::config::{OtlpProtocol, TracingSpec};
use auth_core::plumbing::trace_context::HeaderReader;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use pingora::http::RequestHeader;
use std::net::IpAddr;

pub type Span = opentelemetry_sdk::trace::Span;

pub struct Tracing {
    tracer: opentelemetry_sdk::trace::Tracer,
    provider: SdkTracerProvider,
    propagator: TraceContextPropagator,
    trust_incoming: Vec<ipnet::IpNet>,
    /// The gRPC client's runtime; it lives as long as the exporter.
    _runtime: Option<tokio::runtime::Runtime>,
}

/// The request's server span (inside its context) and the current upstream attempt's span.
pub struct RequestTrace {
    pub cx: Context,
    pub upstream: Option<Span>,
}

impl RequestTrace {
    /// Hex trace id, for log lines: from a log line to the trace in Jaeger.
    pub fn trace_id(&self) -> Option<String> {
        let sc = self.cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }
}

impl Tracing {
    /// Builds the exporter and the tracer provider; also installs the W3C propagator and the
    /// provider globally, for the auth core's `tracing` spans.
    pub fn init(spec: &TracingSpec) -> Result<Tracing, String> {
        let (exporter, runtime) = match spec.protocol {
            OtlpProtocol::Grpc => {
                // tonic needs a Tokio runtime of its own: the export thread is not on one
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("tracing runtime: {e}"))?;
                let exporter = rt.block_on(async {
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(&spec.endpoint)
                        .with_timeout(spec.export_timeout)
                        .build()
                });
                (exporter, Some(rt))
            }
            OtlpProtocol::HttpProtobuf => {
                let base = spec.endpoint.trim_end_matches('/');
                let url = if base.ends_with("/v1/traces") {
                    base.to_string()
                } else {
                    format!("{base}/v1/traces")
                };
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(url)
                    .with_timeout(spec.export_timeout)
                    .build();
                (exporter, None)
            }
        };
        let exporter = exporter.map_err(|e| format!("tracing exporter: {e}"))?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(spec.max_queue)
            .with_max_export_batch_size(spec.max_batch)
            .with_scheduled_delay(spec.batch_delay)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                spec.sampling,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(spec.service_name.clone())
                    .build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        use opentelemetry::trace::TracerProvider as _;
        Ok(Tracing {
            tracer: provider.tracer("edge"),
            provider,
            propagator: TraceContextPropagator::new(),
            trust_incoming: spec.trust_incoming.clone(),
            _runtime: runtime,
        })
    }

    /// A tracer for the `tracing` bridge (the auth core's spans).
    pub fn tracer_for(&self, name: &'static str) -> opentelemetry_sdk::trace::Tracer {
        use opentelemetry::trace::TracerProvider as _;
        self.provider.tracer(name)
    }

    /// Starts the request's server span, continuing the caller's trace only from a trusted
    /// peer.
    pub fn start_request(
        &self,
        req: &RequestHeader,
        peer: Option<IpAddr>,
        client_ip: Option<IpAddr>,
        request_id: &str,
    ) -> RequestTrace {
        let trusted = peer.is_some_and(|ip| self.trust_incoming.iter().any(|n| n.contains(&ip)));
        let parent = if trusted {
            self.propagator.extract(&HeaderReader(&req.headers))
        } else {
            Context::new()
        };
        // the sampler decides first; only a recorded span pays for its attributes
        let mut span = self
            .tracer
            .span_builder(method_name(&req.method))
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        if span.is_recording() {
            span.set_attribute(KeyValue::new(
                "http.request.method",
                req.method.as_str().to_string(),
            ));
            span.set_attribute(KeyValue::new("url.path", req.uri.path().to_string()));
            span.set_attribute(KeyValue::new("request.id", request_id.to_string()));
            if let Some(ip) = client_ip {
                span.set_attribute(KeyValue::new("client.address", ip.to_string()));
            }
        }
        RequestTrace {
            cx: parent.with_span(span),
            upstream: None,
        }
    }

    /// A child span of the request, ended when dropped; none for an unsampled request.
    pub fn child(&self, trace: &RequestTrace, name: &'static str, kind: SpanKind) -> Option<Span> {
        if !trace.cx.span().span_context().is_sampled() {
            return None;
        }
        Some(
            self.tracer
                .span_builder(name)
                .with_kind(kind)
                .start_with_context(&self.tracer, &trace.cx),
        )
    }

    /// A request filter's span (rate limit, bot filter, identity), ended when dropped.
    pub fn phase(&self, ctx: &crate::proxy::ctx::RequestCtx, name: &'static str) -> Option<Span> {
        self.child(ctx.trace.as_ref()?, name, SpanKind::Internal)
    }

    /// Starts the upstream attempt's span and writes its `traceparent` into the upstream
    /// request (replacing any the client sent).
    pub fn start_upstream(
        &self,
        trace: &mut RequestTrace,
        upstream: &mut RequestHeader,
        server: Option<std::net::SocketAddr>,
    ) {
        upstream.remove_header("tracestate");
        // unsampled: the upstream still learns the trace (with the sampled flag off)
        let Some(mut span) = self.child(trace, "upstream", SpanKind::Client) else {
            self.propagator
                .inject_context(&trace.cx, &mut HeaderWriter(upstream));
            return;
        };
        if let Some(addr) = server {
            span.set_attribute(KeyValue::new("server.address", addr.ip().to_string()));
            span.set_attribute(KeyValue::new("server.port", i64::from(addr.port())));
        }
        let cx = trace
            .cx
            .with_remote_span_context(span.span_context().clone());
        self.propagator
            .inject_context(&cx, &mut HeaderWriter(upstream));
        trace.upstream = Some(span);
    }

    /// Ends the request: status, route and error on the server span, and the upstream span.
    pub fn finish(
        trace: &mut RequestTrace,
        route: Option<&str>,
        status: u16,
        error: Option<String>,
    ) {
        if let Some(mut up) = trace.upstream.take() {
            up.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if let Some(e) = &error {
                up.set_status(Status::error(e.clone()));
            }
            up.end();
        }
        let span = trace.cx.span();
        if !span.is_recording() {
            span.end();
            return;
        }
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if let Some(route) = route {
            span.set_attribute(KeyValue::new("http.route", route.to_string()));
        }
        if status >= 500 || error.is_some() {
            span.set_status(Status::error(
                error.unwrap_or_else(|| format!("status {status}")),
            ));
        }
        span.end();
    }

    /// Exports what is queued (at shutdown).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

/// Exports the queued spans when the edge stops, so the last requests' traces are not lost.
pub struct TraceFlusher(pub std::sync::Arc<Tracing>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for TraceFlusher {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let _ = shutdown.changed().await;
        let tracing = self.0.clone();
        let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
    }
}

struct HeaderWriter<'a>(&'a mut RequestHeader);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        // an empty tracestate is no tracestate
        if value.is_empty() {
            return;
        }
        let _ = self.0.insert_header(key.to_string(), value);
    }
}

/// The span name of a request: its method, without allocating for the standard ones.
fn method_name(m: &http::Method) -> std::borrow::Cow<'static, str> {
    const KNOWN: [(http::Method, &str); 7] = [
        (http::Method::GET, "GET"),
        (http::Method::POST, "POST"),
        (http::Method::PUT, "PUT"),
        (http::Method::DELETE, "DELETE"),
        (http::Method::PATCH, "PATCH"),
        (http::Method::HEAD, "HEAD"),
        (http::Method::OPTIONS, "OPTIONS"),
    ];
    match KNOWN.iter().find(|(k, _)| k == m) {
        Some((_, name)) => std::borrow::Cow::Borrowed(name),
        None => std::borrow::Cow::Owned(m.as_str().to_string()),
    }
}
