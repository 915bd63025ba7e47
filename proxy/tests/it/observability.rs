//! Traces to a real OTLP collector (rotel), W3C propagation to the upstream, trace ids in log
//! lines, a dead collector, and `/_edge/metrics` read with a Prometheus text parser.

use crate::support::auth::{AuthStack, Options, PASSWORD};
use crate::support::otel::{Collector, Span};
use crate::support::{client, edge::Edge, eventually, free_port, one_route, upstream::Upstream};
use serde_json::Value;
use std::time::{Duration, Instant};

fn tracing_conf(endpoint: &str, protocol: &str, trust: &str) -> String {
    format!(
        "[tracing]\nendpoint = \"{endpoint}\"\nprotocol = \"{protocol}\"\nservice_name = \"edge-test\"\n\
         sampling = 1.0\nbatch_delay = \"100ms\"\ntrust_incoming = [{trust}]\n"
    )
}

/// A limited route, so the request has a rate_limit child span.
fn limited_route(u: &Upstream) -> String {
    format!(
        "[limit.per-ip]\nkey = \"ip\"\nrate = \"100/s\"\nburst = 100\n\
         [[route]]\nname = \"movies\"\npath = \"/\"\nupstream = \"p\"\nlimits = [\"per-ip\"]\n\
         [upstream.p]\nservers = [\"{}\"]\n",
        u.addr()
    )
}

/// The trace id and parent span id of a `traceparent` (version-traceid-spanid-flags).
fn traceparent(seen: &Value) -> (String, String) {
    let tp = seen["headers"]["traceparent"]
        .as_str()
        .expect("the upstream got a traceparent");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    (parts[1].to_string(), parts[2].to_string())
}

fn find<'a>(spans: &'a [Span], trace: &str, name: &str) -> Option<&'a Span> {
    spans.iter().find(|s| s.trace_id == trace && s.name == name)
}

async fn spans_arrive_linked(protocol: &str) {
    let collector = Collector::start();
    let port = if protocol == "grpc" {
        collector.grpc_port
    } else {
        collector.http_port
    };
    let u = Upstream::start("movies");
    // every phase that has a span: a token check (optional route, keys of a remote core that
    // need not answer), the bot filter (no rules) and a rate limit
    let phases = format!(
        "[auth]\njwks_url = \"http://127.0.0.1:{}/jwks\"\nissuer = \"i\"\naudience = \"a\"\n\
         [bot_filter]\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
        free_port()
    );
    let route = limited_route(&u).replace(
        "limits = [\"per-ip\"]\n",
        "limits = [\"per-ip\"]\nauth = \"optional\"\n",
    );
    let edge = Edge::start(&format!(
        "{}{phases}{route}",
        tracing_conf(&format!("http://127.0.0.1:{port}"), protocol, "")
    ));
    let r = client()
        .get(edge.url("/api/v1/movies"))
        .header("x-request-id", "rid-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    let (trace, upstream_span) = traceparent(&seen);

    let spans = collector
        .wait_for(|s| {
            ["GET", "upstream", "rate_limit", "identity", "bot_filter"]
                .iter()
                .all(|n| find(s, &trace, n).is_some())
        })
        .await;
    let server = find(&spans, &trace, "GET").unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(server.service, "edge-test");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        server.parent_id, "",
        "a root span: the client was not trusted"
    );
    assert_eq!(server.attributes["request.id"], "rid-trace-1");
    assert_eq!(server.attributes["http.route"], "movies");
    assert_eq!(server.attributes["http.response.status_code"], "200");
    assert_eq!(server.attributes["client.address"], "127.0.0.1");
    let upstream = find(&spans, &trace, "upstream").unwrap();
    assert_eq!(upstream.parent_id, server.id);
    assert_eq!(upstream.kind, "SPAN_KIND_CLIENT");
    assert_eq!(
        upstream.id, upstream_span,
        "the upstream's traceparent names the upstream span"
    );
    for phase in ["rate_limit", "identity", "bot_filter"] {
        let span = find(&spans, &trace, phase).unwrap_or_else(|| panic!("{phase}: {spans:#?}"));
        assert_eq!(span.parent_id, server.id, "{phase}");
    }

    // the access log line carries the same trace id
    let logged = eventually(Duration::from_secs(3), || {
        edge.json_logs().iter().any(|l| {
            l["target"] == "edge::access"
                && l["request_id"] == "rid-trace-1"
                && l["trace_id"] == trace.as_str()
        })
    })
    .await;
    assert!(logged, "{}", edge.logs());
}

#[tokio::test]
async fn spans_reach_a_collector_over_grpc_with_parent_links_and_the_request_id() {
    spans_arrive_linked("grpc").await;
}

#[tokio::test]
async fn spans_reach_a_collector_over_http_protobuf() {
    spans_arrive_linked("http").await;
}

#[tokio::test]
async fn an_incoming_trace_is_continued_only_from_trusted_peers() {
    let u = Upstream::start("movies");
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let dead = free_port(); // no collector needed to see what the upstream receives
    for (trust, continued) in [("", false), ("\"127.0.0.1\"", true)] {
        let edge = Edge::start(&format!(
            "{}{}",
            tracing_conf(&format!("http://127.0.0.1:{dead}"), "grpc", trust),
            one_route(&[u.addr()], "")
        ));
        let r = client()
            .get(edge.url("/x"))
            .header("traceparent", incoming)
            .header("tracestate", "vendor=client-chosen")
            .send()
            .await
            .unwrap();
        let seen: Value = r.json().await.unwrap();
        let (trace, parent) = traceparent(&seen);
        assert_eq!(
            trace == "4bf92f3577b34da6a3ce929d0e0e4736",
            continued,
            "trust [{trust}]"
        );
        assert_ne!(
            parent, "00f067aa0ba902b7",
            "the edge's own span is the parent"
        );
        if !continued {
            assert!(seen["headers"].get("tracestate").is_none(), "{seen}");
        }
    }
}

#[tokio::test]
async fn a_dead_collector_changes_nothing_for_clients() {
    let u = Upstream::start("movies");
    let dead = free_port();
    let mut edge = Edge::start(&format!(
        "{}{}",
        tracing_conf(&format!("http://127.0.0.1:{dead}"), "grpc", ""),
        limited_route(&u)
    ));
    let started = Instant::now();
    for _ in 0..200 {
        let r = client().get(edge.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // 200 sequential requests through a debug build take well under a second each
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(edge.is_running());
}

#[tokio::test]
async fn the_auth_core_spans_join_the_edge_trace() {
    let collector = Collector::start();
    let routes = tracing_conf(
        &format!("http://127.0.0.1:{}", collector.grpc_port),
        "grpc",
        "",
    );
    let s = AuthStack::start_with(Options {
        routes_extra: &routes,
        ..Options::default()
    });
    s.create_user("viewer@example.com", &["subscriber"]);
    let r = s.login_raw("viewer@example.com", PASSWORD, "t").await;
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let spans = collector
        .wait_for(|spans| {
            let Some(server) = spans
                .iter()
                .find(|s| s.attributes.get("request.id") == Some(&rid))
            else {
                return false;
            };
            [
                "auth.request",
                "http.login",
                "auth.login",
                "password.verify",
                "db.users.credential",
            ]
            .iter()
            .all(|n| find(spans, &server.trace_id, n).is_some())
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.attributes.get("request.id") == Some(&rid))
        .unwrap_or_else(|| panic!("{spans:#?}"));
    let t = &server.trace_id;
    let upstream = find(&spans, t, "upstream").expect("upstream span");
    let core = find(&spans, t, "auth.request").unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(
        core.parent_id, upstream.id,
        "the core continues the edge's trace"
    );
    // request → handler → domain → password check, each the parent of the next
    let handler = find(&spans, t, "http.login").unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(handler.parent_id, core.id);
    let login = find(&spans, t, "auth.login").unwrap();
    assert_eq!(login.parent_id, handler.id);
    assert_eq!(
        find(&spans, t, "password.verify").unwrap().parent_id,
        login.id
    );
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_requests_by_route_and_status() {
    let u = Upstream::start("movies");
    let tight = "[limit.one]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 1\n\
         [[route]]\nname = \"tight\"\npath = \"/tight\"\nupstream = \"p\"\nlimits = [\"one\"]\n";
    let edge = Edge::start(&format!("{}{tight}", limited_route(&u)));
    // a request the edge refuses itself counts under the route it matched
    for expected in [200, 429] {
        let r = client().get(edge.url("/tight")).send().await.unwrap();
        assert_eq!(r.status(), expected);
    }
    for _ in 0..7 {
        assert_eq!(
            client().get(edge.url("/a")).send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        client()
            .get(edge.url("/_edge/nothing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let text = edge.metrics_text().await;
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "edge_requests_total",
            &[("route", "movies"), ("code", "200")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value("edge_requests_total", &[("route", ""), ("code", "404")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            "edge_requests_total",
            &[("route", "tight"), ("code", "429")]
        ),
        Some(1.0)
    );
    assert_eq!(value("edge_ratelimit_allowed_total", &[]), Some(8.0));
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "edge_request_duration_seconds" && s.labels.get("route") == Some("movies")
        })
        .expect("latency histogram");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert_eq!(inf.count, 7.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(scrape.docs.contains_key("edge_requests_total"));
}

#[tokio::test]
async fn an_unsampled_request_propagates_its_trace_and_exports_nothing() {
    let collector = Collector::start();
    let u = Upstream::start("movies");
    let conf = tracing_conf(
        &format!("http://127.0.0.1:{}", collector.grpc_port),
        "grpc",
        "",
    )
    .replace("sampling = 1.0", "sampling = 0.0");
    let edge = Edge::start(&format!("{conf}{}", limited_route(&u)));
    for _ in 0..20 {
        let seen: Value = client()
            .get(edge.url("/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tp = seen["headers"]["traceparent"].as_str().unwrap().to_string();
        assert!(tp.ends_with("-00"), "not sampled, still propagated: {tp}");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(collector.spans().is_empty(), "{:#?}", collector.spans());
}
