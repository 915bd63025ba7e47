//! Demo movies API behind the edge in `make run`: a stand-in for the cinema's FastAPI
//! services, showing what an upstream receives from the edge, and how a service learns from
//! the edge's `/_edge/ready` whether sign-in is available right now.

mod grpc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The edge's latest readiness report (None until the first poll answers).
type EdgeReport = Arc<RwLock<Option<Value>>>;

/// Polls the edge's report in the background, so requests never wait on it.
async fn poll_edge(url: String, report: EdgeReport) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo-movies: no HTTP client: {e}");
            return;
        }
    };
    loop {
        let fresh = match http.get(&url).send().await {
            Ok(r) => r.json::<Value>().await.ok(),
            Err(_) => None,
        };
        if let Ok(mut slot) = report.write() {
            *slot = fresh;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Whether login works now: `None` when the edge's report is unknown.
fn auth_available(report: &EdgeReport) -> Option<bool> {
    let report = report.read().ok()?;
    report.as_ref()?.get("auth_available")?.as_bool()
}

/// What the service knows of the edge: a client can hide "sign in" while it is unavailable.
async fn status(State(report): State<EdgeReport>) -> Json<Value> {
    let edge = report.read().ok().and_then(|r| r.clone());
    Json(json!({
        "auth_available": auth_available(&report),
        "edge": edge,
    }))
}

/// Headers an upstream cares about, echoed by `/api/v1/whoami`.
const ECHOED: &[&str] = &[
    "x-request-id",
    "x-user-id",
    "x-user-roles",
    "x-auth-status",
    "traceparent",
    "tracestate",
    "host",
];

async fn movies() -> Json<Value> {
    Json(json!({
        "movies": [
            { "id": 1, "title": "Stalker", "year": 1979 },
            { "id": 2, "title": "The Irony of Fate", "year": 1976 },
            { "id": 3, "title": "Brother", "year": 1997 }
        ]
    }))
}

/// Behind `auth = "required"`, `roles = ["subscriber"]`: the edge lets only subscribers in,
/// so the service just reads who it is serving.
async fn premium(headers: HeaderMap) -> Json<Value> {
    let user = headers
        .get("x-user-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Json(json!({
        "for_user": user,
        "movies": [
            { "id": 10, "title": "Solaris (restored, 4K)", "year": 1972 },
            { "id": 11, "title": "Andrei Rublev (director's cut)", "year": 1966 }
        ]
    }))
}

async fn whoami(State(report): State<EdgeReport>, headers: HeaderMap) -> Json<Value> {
    let mut seen = Map::new();
    for name in ECHOED {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            seen.insert((*name).to_string(), Value::String(v.to_string()));
        }
    }
    // anonymous callers keep browsing when auth is down; the page can say why sign-in is off
    Json(json!({ "headers": seen, "auth_available": auth_available(&report) }))
}

/// SIGINT or SIGTERM. Handled explicitly: a background job of a non-interactive shell (as in
/// `make run`) starts with SIGINT ignored.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::var("DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into());
    // `demo-movies --health`: the container health check (the slim image has no curl)
    if std::env::args().any(|a| a == "--health") {
        let url = format!("http://{}/health", addr.replace("0.0.0.0", "127.0.0.1"));
        let ok = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        std::process::exit(if ok { 0 } else { 1 });
    }
    let ready_url = std::env::var("EDGE_READY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/_edge/ready".into());
    let report = EdgeReport::default();
    tokio::spawn(poll_edge(ready_url, report.clone()));
    let app = Router::new()
        .route("/api/v1/movies", get(movies))
        .route("/api/v1/movies/premium", get(premium))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/status", get(status))
        .route("/health", get(|| async { "ok" }))
        .route("/grpc.health.v1.Health/Check", post(grpc::health_check))
        .with_state(report);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-movies: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("demo-movies listening on {addr}");
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await
    {
        eprintln!("demo-movies: {e}");
    }
}
