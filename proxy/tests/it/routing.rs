use crate::support::{client, edge::Edge, upstream::Upstream};
use serde_json::Value;

fn conf(a: &Upstream, b: &Upstream) -> String {
    format!(
        r#"
[[route]]
name = "root"
path = "/"
upstream = "a"

[[route]]
name = "api"
path = "/api"
upstream = "a"

[[route]]
name = "api-v1-b"
path = "/api/v1"
upstream = "b"

[[route]]
name = "host-b"
host = "films.example"
path = "/api"
upstream = "b"

[[route]]
name = "strip"
path = "/svc/b"
upstream = "b"
strip_prefix = true

[upstream.a]
servers = ["{}"]

[upstream.b]
servers = ["{}"]
"#,
        a.addr(),
        b.addr()
    )
}

async fn served_by(edge: &Edge, host: Option<&str>, path: &str) -> (String, Value) {
    let mut req = client().get(edge.url(path));
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let body: Value = resp.json().await.unwrap();
    (body["server"].as_str().unwrap().to_string(), body)
}

#[tokio::test]
async fn longest_prefix_wins_on_segment_boundaries() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&conf(&a, &b));
    assert_eq!(served_by(&edge, None, "/api/v1/movies").await.0, "b");
    assert_eq!(served_by(&edge, None, "/api/v1").await.0, "b");
    assert_eq!(
        served_by(&edge, None, "/api/v10").await.0,
        "a",
        "/api/v1 must not match /api/v10"
    );
    assert_eq!(served_by(&edge, None, "/api/other").await.0, "a");
    assert_eq!(served_by(&edge, None, "/anything").await.0, "a");
}

#[tokio::test]
async fn host_routes_match_case_insensitively_and_ignore_the_port() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&conf(&a, &b));
    assert_eq!(
        served_by(&edge, Some("films.example"), "/api/x").await.0,
        "b"
    );
    assert_eq!(
        served_by(&edge, Some("FILMS.example:8080"), "/api/x")
            .await
            .0,
        "b"
    );
    assert_eq!(
        served_by(&edge, Some("other.example"), "/api/x").await.0,
        "a"
    );
    // the Host header reaches the upstream unchanged
    let (_, body) = served_by(&edge, Some("films.example"), "/api/x").await;
    assert_eq!(body["headers"]["host"], "films.example");
}

#[tokio::test]
async fn strip_prefix_rewrites_the_path_and_keeps_the_query() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&conf(&a, &b));
    let (server, body) = served_by(&edge, None, "/svc/b/items/7?sort=desc&q=%20x").await;
    assert_eq!(server, "b");
    assert_eq!(body["uri"], "/items/7?sort=desc&q=%20x");
    let (_, body) = served_by(&edge, None, "/svc/b?x=1").await;
    assert_eq!(body["uri"], "/?x=1");
}

#[tokio::test]
async fn unmatched_requests_get_a_json_404() {
    let b = Upstream::start("b");
    let edge = Edge::start(&format!(
        "[[route]]\nname = \"only\"\npath = \"/only\"\nupstream = \"b\"\n[upstream.b]\nservers = [\"{}\"]\n",
        b.addr()
    ));
    let resp = client()
        .get(edge.url("/elsewhere"))
        .header("x-request-id", "rid-404")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["x-request-id"], "rid-404");
    let len: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["request_id"], "rid-404");
    assert_eq!(json["error"], "no route for this host and path");
    assert_eq!(b.hits(), 0);
}
