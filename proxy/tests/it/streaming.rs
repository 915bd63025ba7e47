use crate::support::{
    client,
    edge::Edge,
    one_route,
    upstream::{range_body, Upstream},
};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn conf(u: &Upstream) -> String {
    one_route(&[u.addr()], "")
}

#[tokio::test]
async fn large_responses_stream_without_buffering() {
    let u = Upstream::start("u");
    let edge = Edge::start(&conf(&u));
    let started = Instant::now();
    let mut resp = client().get(edge.url("/stream")).send().await.unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(first.starts_with(b"first chunk"), "{first:?}");
    let mut total = first.len();
    while let Some(c) = resp.chunk().await.unwrap() {
        total += c.len();
    }
    let done_at = started.elapsed();
    assert_eq!(total, 12 + 4 * (1 << 20));
    assert!(done_at >= Duration::from_millis(800), "{done_at:?}");
    assert!(
        first_at < Duration::from_millis(500),
        "the first chunk waited for the rest: {first_at:?} of {done_at:?}"
    );
}

#[tokio::test]
async fn range_requests_pass_through() {
    let u = Upstream::start("u");
    let edge = Edge::start(&conf(&u));
    let resp = client()
        .get(edge.url("/range"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &range_body()[100..200]
    );
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let u = Upstream::start("u");
    let edge = Edge::start(&conf(&u));
    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", edge.port))
            .await
            .unwrap();
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().contains_key("x-request-id"));
    for text in ["hello", "второе сообщение"] {
        ws.send(Message::Text(text.into())).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply, Message::Text(format!("echo: {text}").into()));
    }
    ws.close(None).await.unwrap();
}
