use crate::support::{client, edge::Edge, eventually, upstream::Upstream};
use std::time::Duration;

#[tokio::test]
async fn one_structured_line_per_request() {
    let u = Upstream::start("u");
    let edge = Edge::start(&format!(
        "[[route]]\nname = \"movies\"\npath = \"/api\"\nupstream = \"p\"\n[upstream.p]\nservers = [\"{}\"]\n",
        u.addr()
    ));
    let resp = client()
        .get(edge.url("/api/movies?token=secret"))
        .header("x-request-id", "rid-log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = client()
        .get(edge.url("/nowhere"))
        .header("x-request-id", "rid-log-2")
        .send()
        .await
        .unwrap();

    let find = |id: &str| {
        edge.json_logs()
            .into_iter()
            .find(|l| l["target"] == "edge::access" && l["request_id"] == id)
    };
    assert!(
        eventually(Duration::from_secs(3), || find("rid-log-2").is_some()).await,
        "{}",
        edge.logs()
    );
    let line = find("rid-log-1").expect("access line");
    assert_eq!(line["method"], "GET");
    assert_eq!(
        line["path"], "/api/movies",
        "the query string is not logged"
    );
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "movies");
    assert_eq!(line["upstream"], u.addr());
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(line["bytes_sent"].as_u64().unwrap() > 0);
    assert!(!edge.logs().contains("secret"));
    let miss = find("rid-log-2").unwrap();
    assert_eq!(miss["status"], 404);
    assert_eq!(miss["route"], "");
    let count = edge
        .json_logs()
        .iter()
        .filter(|l| l["target"] == "edge::access" && l["request_id"] == "rid-log-1")
        .count();
    assert_eq!(count, 1);
}
