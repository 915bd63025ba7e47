//! A real HTTP upstream on its own thread and runtime: echoes what it received as JSON and
//! has endpoints for slow, streamed, ranged and WebSocket responses, and a switchable /health.

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::served::Served;

#[derive(Default)]
struct Shared {
    name: String,
    hits: AtomicUsize,
    unhealthy: AtomicBool,
}

pub struct Upstream {
    pub port: u16,
    shared: Arc<Shared>,
    served: Served,
}

/// Bytes served by `/range`: 1000 bytes of digits.
pub fn range_body() -> Vec<u8> {
    (0..1000u32).map(|i| b'0' + (i % 10) as u8).collect()
}

impl Upstream {
    /// On a port the OS picks at bind time: no window in which another test (or a process
    /// the tests start) can take it, as there is between `free_port` and a later bind.
    pub fn start(name: &str) -> Upstream {
        Self::start_on(name, 0)
    }

    /// On `port` (0: any free one); a fixed port is how tests bring a stopped upstream back.
    pub fn start_on(name: &str, port: u16) -> Upstream {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            ..Default::default()
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/slow/{ms}", get(slow))
            .route("/stream", get(stream))
            .route("/range", get(range))
            .route("/ws", get(ws))
            .fallback(echo)
            .with_state(shared.clone());
        let served = Served::start(app, port, "upstream");
        Upstream {
            port: served.port,
            shared,
            served,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests served, /health excluded.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.shared.unhealthy.store(!healthy, Ordering::SeqCst);
    }

    /// Closes the listener: connections to the port are then refused.
    pub fn stop(mut self) {
        self.served.stop();
    }
}

async fn echo(State(s): State<Arc<Shared>>, req: Request) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    // a header sent more than once shows as its values joined with ", " (as HTTP reads it)
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        let joined = match headers.get(k.as_str()).and_then(|old| old.as_str()) {
            Some(old) => format!("{old}, {v}"),
            None => v,
        };
        headers.insert(k.to_string(), serde_json::Value::String(joined));
    }
    let method = req.method().as_str().to_string();
    let uri = req.uri().to_string();
    // the whole body, as a service would read it: how many bytes came through
    let body_bytes = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => serde_json::Value::from(b.len()),
        Err(_) => serde_json::Value::Null,
    };
    let body = serde_json::json!({
        "server": s.name,
        "method": method,
        "uri": uri,
        "headers": headers,
        "body_bytes": body_bytes,
    });
    (
        [
            ("content-type", "application/json"),
            ("x-served-by", s.name.as_str()),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn health(State(s): State<Arc<Shared>>) -> StatusCode {
    if s.unhealthy.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn slow(State(s): State<Arc<Shared>>, Path(ms): Path<u64>) -> String {
    s.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

/// One chunk at once, the rest after 800 ms: a buffering proxy would hold the first chunk.
async fn stream(State(s): State<Arc<Shared>>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let chunks = futures_util::stream::unfold(0u32, |n| async move {
        match n {
            0 => Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"first chunk\n")),
                1,
            )),
            1..=4 => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok(bytes::Bytes::from(vec![b'x'; 1 << 20])), n + 1))
            }
            _ => None,
        }
    });
    Response::new(Body::from_stream(chunks))
}

async fn range(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let body = range_body();
    let spec = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="));
    let Some((a, b)) = spec.and_then(|s| s.split_once('-')) else {
        return ([("accept-ranges", "bytes")], body).into_response();
    };
    let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
        return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    };
    let b = b.min(body.len() - 1);
    let content_range = format!("bytes {a}-{b}/{}", body.len());
    (
        StatusCode::PARTIAL_CONTENT,
        [("content-range", content_range)],
        body[a..=b].to_vec(),
    )
        .into_response()
}

async fn ws(State(s): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(t) = msg {
                if socket
                    .send(Message::Text(format!("echo: {t}").into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    })
}
