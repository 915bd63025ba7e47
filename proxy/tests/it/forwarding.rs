//! Forwarding headers: what a client writes in X-Forwarded-For/-Proto/-Host or Forwarded
//! never reaches an upstream as the truth; through a trusted proxy the believed chain does.
//! Checked on two real upstreams: the axum echo (raw headers) and FastAPI under uvicorn,
//! which trusts X-Forwarded-* from its peer (the edge) and so would report a spoofed client.

use crate::support::{client, edge::Edge, fastapi::FastApi, upstream::Upstream};
use serde_json::Value;

/// Routes `/echo` to the axum upstream and `/py` to FastAPI; `extra` adds conf.
fn conf(axum: &Upstream, py: &FastApi, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"echo\"\npath = \"/echo\"\nupstream = \"axum\"\n\
         [[route]]\nname = \"py\"\npath = \"/py\"\nupstream = \"fastapi\"\n\
         [upstream.axum]\nservers = [\"{}\"]\n[upstream.fastapi]\nservers = [\"{}\"]\n{extra}",
        axum.addr(),
        py.addr()
    )
}

const SPOOF: [(&str, &str); 4] = [
    ("x-forwarded-for", "6.6.6.6, 7.7.7.7"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=6.6.6.6;proto=https"),
];

async fn get(url: String, headers: &[(&str, &str)]) -> Value {
    let mut req = client().get(url).header("host", "cinema.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_client_cannot_forge_forwarding_headers() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let edge = Edge::start(&conf(&axum, &py, ""));
    let echo = get(edge.url("/echo"), &SPOOF).await;
    let h = &echo["headers"];
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "the socket peer only: {h}"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "cinema.test");
    assert!(
        h.get("forwarded").is_none(),
        "Forwarded from a client is dropped: {h}"
    );
    // FastAPI believes X-Forwarded-* from the edge: it must see the real client and scheme
    let py_seen = get(edge.url("/py/x"), &SPOOF).await;
    assert_eq!(py_seen["client"], "127.0.0.1", "{py_seen}");
    assert_eq!(py_seen["scheme"], "http", "{py_seen}");
}

#[tokio::test]
async fn through_a_trusted_proxy_the_believed_chain_goes_upstream() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    // the test client plays the load balancer in front of the edge
    let edge = Edge::start(&conf(
        &axum,
        &py,
        "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheader = \"x-forwarded-for\"\n",
    ));
    // 6.6.6.6 was written by the client itself; 203.0.113.7 is what the balancer saw
    let lb = [
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "www.cinema.example"),
    ];
    let echo = get(edge.url("/echo"), &lb).await;
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1", "{h}");
    assert_eq!(h["x-real-ip"], "203.0.113.7");
    assert_eq!(h["x-forwarded-proto"], "https", "the balancer saw TLS");
    assert_eq!(h["x-forwarded-host"], "www.cinema.example");
    let py_seen = get(edge.url("/py/x"), &lb).await;
    assert_eq!(py_seen["client"], "203.0.113.7", "{py_seen}");
    assert_eq!(py_seen["scheme"], "https", "{py_seen}");
    // an IPv6 client behind the balancer
    let echo = get(edge.url("/echo"), &[("x-forwarded-for", "2001:db8::7")]).await;
    assert_eq!(echo["headers"]["x-forwarded-for"], "2001:db8::7, 127.0.0.1");
}
