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

const TRUST_LB: &str =
    "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheader = \"x-forwarded-for\"\n";

#[tokio::test]
async fn through_a_trusted_proxy_the_believed_chain_goes_upstream() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    // the test client plays the load balancer in front of the edge; like AWS ALB it appends to
    // X-Forwarded-For and passes the client's other forwarding headers through
    let edge = Edge::start(&conf(&axum, &py, TRUST_LB));
    // 6.6.6.6 was written by the client itself; 203.0.113.7 is what the balancer saw
    let lb = [
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=10.9.9.9;host=evil.example;proto=https"),
        ("x-forwarded-prefix", "/evil"),
    ];
    let echo = get(edge.url("/echo"), &lb).await;
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1", "{h}");
    assert_eq!(h["x-real-ip"], "203.0.113.7");
    // not vouched for (proxies_set_proto_host is off): the edge's own view
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-host"], "cinema.test", "{h}");
    assert!(
        h.get("forwarded").is_none(),
        "Forwarded is not the header read: {h}"
    );
    assert!(h.get("x-forwarded-prefix").is_none(), "{h}");
    let py_seen = get(edge.url("/py/x"), &lb).await;
    assert_eq!(py_seen["client"], "203.0.113.7", "{py_seen}");
    assert_eq!(py_seen["scheme"], "http", "{py_seen}");
    // an IPv6 client behind the balancer
    let echo = get(edge.url("/echo"), &[("x-forwarded-for", "2001:db8::7")]).await;
    assert_eq!(echo["headers"]["x-forwarded-for"], "2001:db8::7, 127.0.0.1");
    // a client's non-ASCII byte in its own hop does not hide the hop the balancer appended
    let r = client()
        .get(edge.url("/echo"))
        .header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(b"1.2.3.4\xff, 203.0.113.9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["x-real-ip"], "203.0.113.9", "{echo}");
    // CGI/WSGI servers read X_Forwarded_For as X-Forwarded-For: lookalikes are stripped
    let echo = get(
        edge.url("/echo"),
        &[
            ("x_forwarded_for", "6.6.6.6"),
            ("x-forwarded_host", "evil.example"),
        ],
    )
    .await;
    let h = &echo["headers"];
    assert!(
        h.get("x_forwarded_for").is_none() && h.get("x-forwarded_host").is_none(),
        "{h}"
    );
}

#[tokio::test]
async fn a_balancer_that_sets_proto_and_host_is_believed_one_line_each() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let edge = Edge::start(&conf(
        &axum,
        &py,
        &format!("{TRUST_LB}proxies_set_proto_host = true\n"),
    ));
    let lb = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "www.cinema.example"),
    ];
    let h = get(edge.url("/echo"), &lb).await["headers"].clone();
    assert_eq!(h["x-forwarded-proto"], "https", "{h}");
    assert_eq!(h["x-forwarded-host"], "www.cinema.example", "{h}");
    assert_eq!(get(edge.url("/py/x"), &lb).await["scheme"], "https");
    // two lines are two opinions, a bogus scheme is none: the edge's own view instead
    let h = get(
        edge.url("/echo"),
        &[
            ("x-forwarded-proto", "evil"),
            ("x-forwarded-host", "a.example"),
            ("x-forwarded-host", "b.example"),
        ],
    )
    .await["headers"]
        .clone();
    assert_eq!(h["x-forwarded-proto"], "http", "{h}");
    assert_eq!(h["x-forwarded-host"], "cinema.test", "{h}");
}

#[tokio::test]
async fn route_header_rules_apply_both_ways_and_cannot_touch_what_the_edge_writes() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let rules = "request_headers = { set = { \"x-service\" = \"movies\" }, add = { \"x-tag\" = \"edge\" }, remove = [\"x-debug\"] }\n\
                 response_headers = { set = { \"strict-transport-security\" = \"max-age=63072000\" }, remove = [\"x-served-by\"] }\n";
    let text = conf(&axum, &py, "").replacen(
        "upstream = \"axum\"\n",
        &format!("upstream = \"axum\"\n{rules}"),
        1,
    );
    let edge = Edge::start(&text);
    let r = client()
        .get(edge.url("/echo"))
        .header("x-debug", "1")
        .header("x-service", "spoofed")
        .header("x-tag", "client")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-served-by").is_none(),
        "removed from the response"
    );
    assert_eq!(r.headers()["strict-transport-security"], "max-age=63072000");
    let echo: Value = r.json().await.unwrap();
    let h = &echo["headers"];
    assert!(h.get("x-debug").is_none(), "{h}");
    assert_eq!(
        h["x-service"], "movies",
        "set replaces the client's value: {h}"
    );
    assert_eq!(
        h["x-tag"], "client, edge",
        "add keeps the client's value: {h}"
    );
    // the rules are the route's: the other route is untouched
    let r = client()
        .get(edge.url("/py/x"))
        .header("x-debug", "1")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    // a rule naming a header the edge writes is refused at load, naming file and key
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("edge.toml"),
        format!(
            "{}[[listener]]\naddress = \"127.0.0.1:1\"\n{}",
            crate::support::edge::base_conf(dir.path()),
            text.replace("x-service", "x-user-id")
        ),
    )
    .unwrap();
    let (code, out) = crate::support::edge::check(dir.path());
    assert_ne!(code, 0);
    assert!(
        out.contains("edge.toml: route[0].request_headers.set.x-user-id")
            && out.contains("written by the edge itself"),
        "{out}"
    );
}
