//! Demo movies API behind the edge in `make run`: a stand-in for the cinema's FastAPI
//! services, showing what an upstream receives from the edge.

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

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

async fn whoami(headers: HeaderMap) -> Json<Value> {
    let mut seen = Map::new();
    for name in ECHOED {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            seen.insert((*name).to_string(), Value::String(v.to_string()));
        }
    }
    Json(json!({ "headers": seen }))
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
    let app = Router::new()
        .route("/api/v1/movies", get(movies))
        .route("/api/v1/movies/premium", get(premium))
        .route("/api/v1/whoami", get(whoami))
        .route("/health", get(|| async { "ok" }));
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
