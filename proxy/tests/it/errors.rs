use crate::support::{client, edge::Edge, eventually, free_port, one_route, upstream::Upstream};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn json_error(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(
        resp.headers().contains_key("content-length"),
        "an edge error always has a Content-Length"
    );
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["request_id"],
        id.as_str(),
        "the body carries the request id"
    );
    (status, id, body)
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let dead = free_port();
    let edge = Edge::start(&one_route(&[format!("127.0.0.1:{dead}")], ""));
    let resp = client()
        .get(edge.url("/x"))
        .header("x-request-id", "rid-502")
        .send()
        .await
        .unwrap();
    let (status, id, body) = json_error(resp).await;
    assert_eq!((status, id.as_str()), (502, "rid-502"));
    assert_eq!(body["error"], "upstream unreachable");
    // the failure is logged with the request id (the writer is non-blocking: wait for it)
    let logged = eventually(Duration::from_secs(3), || {
        edge.json_logs()
            .iter()
            .any(|l| l["message"] == "request failed" && l["request_id"] == "rid-502")
    })
    .await;
    assert!(logged, "{}", edge.logs());
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_after_the_read_timeout() {
    let u = Upstream::start("u");
    let edge = Edge::start(&one_route(&[u.addr()], "read_timeout = \"300ms\"\n"));
    let started = Instant::now();
    let resp = client().get(edge.url("/slow/3000")).send().await.unwrap();
    let elapsed = started.elapsed();
    let (status, _, body) = json_error(resp).await;
    assert_eq!(status, 504);
    assert_eq!(body["error"], "upstream timed out");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    // a fast request on the same route still works
    assert_eq!(
        client()
            .get(edge.url("/slow/10"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_pool_with_every_server_unhealthy_is_a_503_without_connecting() {
    let u = Upstream::start("u");
    let edge = Edge::start(&one_route(
        &[u.addr()],
        "health_check = { path = \"/health\", interval = \"100ms\" }\n",
    ));
    u.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = u.hits();
    let resp = client().get(edge.url("/x")).send().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let (status, _, body) = json_error(resp).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "no healthy upstream server");
    assert_eq!(u.hits(), before);
}

/// `edge health`: what a container health check runs (no curl in the image).
#[tokio::test]
async fn the_health_command_exits_0_for_a_live_edge_and_1_otherwise() {
    let u = Upstream::start("u");
    let edge = Edge::start(&one_route(&[u.addr()], ""));
    let health = |args: &[&str]| {
        std::process::Command::new(crate::support::edge::binary())
            .arg("health")
            .args(args)
            .env_remove("EDGE_HEALTH_URL")
            .output()
            .expect("run edge health")
    };
    let origin = format!("http://127.0.0.1:{}", edge.port);
    let out = health(&["--url", &origin]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"status\""),
        "{out:?}"
    );
    // the ready report, from loopback (allowed by default)
    let out = health(&["--url", &origin, "--ready"]);
    assert!(out.status.success(), "{out:?}");
    // nothing listening: exit 1 within the timeout, with the reason
    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = health(&["--url", &closed, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    // an answer other than 200 (the edge's 404 for an unknown /_edge/ path): exit 1
    let out = health(&["--url", &format!("{origin}/_edge/nowhere")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
