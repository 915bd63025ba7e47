//! Body and header-block limits: a declared body over the route's `max_body` is refused before
//! it is sent, a streamed (chunked) one as soon as it passes the limit, a header block over
//! `[http] max_header_block` with 431; all as JSON carrying the request id. Bodies under the
//! limit arrive whole at two real upstreams (axum, FastAPI under uvicorn).

use crate::support::{edge::Edge, fastapi::FastApi, raw, upstream::Upstream};
use std::net::SocketAddr;

fn conf(axum: &Upstream, py: &FastApi) -> String {
    format!(
        "[http]\nmax_body = \"1KiB\"\n\
         [[route]]\nname = \"echo\"\npath = \"/echo\"\nupstream = \"axum\"\n\
         [[route]]\nname = \"py\"\npath = \"/py\"\nupstream = \"fastapi\"\n\
         [[route]]\nname = \"uploads\"\npath = \"/uploads\"\nupstream = \"axum\"\nmax_body = \"off\"\n\
         [[route]]\nname = \"small\"\npath = \"/small\"\nupstream = \"axum\"\nmax_body = \"16\"\n\
         [upstream.axum]\nservers = [\"{}\"]\n[upstream.fastapi]\nservers = [\"{}\"]\n",
        axum.addr(),
        py.addr()
    )
}

fn addr(edge: &Edge) -> SocketAddr {
    ([127, 0, 0, 1], edge.port).into()
}

fn post_sized(edge: &Edge, path: &str, body: &[u8]) -> raw::RawResponse {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: cinema.test\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw::send(addr(edge), &req).expect("an answer")
}

/// A chunked body of `chunks` chunks of `size` bytes; `finish` adds the terminating chunk.
fn post_chunked(
    edge: &Edge,
    path: &str,
    chunks: usize,
    size: usize,
    finish: bool,
) -> raw::RawResponse {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: cinema.test\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..chunks {
        req.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b'a', size));
        req.extend_from_slice(b"\r\n");
    }
    if finish {
        req.extend_from_slice(b"0\r\n\r\n");
    }
    raw::send(addr(edge), &req).expect("an answer")
}

fn assert_refused(r: &raw::RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json().expect("a JSON body");
    assert_eq!(body["code"], code, "{body}");
    let rid = r.header("x-request-id").expect("a request id");
    assert_eq!(body["request_id"], rid);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let edge = Edge::start(&conf(&axum, &py));
    // exactly the limit passes, whole, to both upstreams
    for path in ["/echo/x", "/py/x"] {
        let r = post_sized(&edge, path, &[b'a'; 1024]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json().unwrap()["body_bytes"], 1024, "{path}");
    }
    let hits = axum.hits();
    // one byte more: 413, and the upstream never hears of it
    let r = post_sized(&edge, "/echo/x", &[b'a'; 1025]);
    assert_refused(&r, 413, "body_too_large");
    assert_eq!(axum.hits(), hits);
    // the headers alone are enough: a client announcing 5 GiB is answered without sending it
    let r = raw::send(
        addr(&edge),
        b"POST /py/x HTTP/1.1\r\nHost: cinema.test\r\nContent-Length: 5368709120\r\n\r\n",
    )
    .expect("an answer before the body");
    assert_refused(&r, 413, "body_too_large");
    // the route's own limit wins over [http]
    assert_refused(
        &post_sized(&edge, "/small", &[b'a'; 17]),
        413,
        "body_too_large",
    );
    let r = post_sized(&edge, "/uploads/film", &vec![b'a'; 3 << 20]);
    assert_eq!(r.status, 200, "max_body = \"off\"");
    assert_eq!(r.json().unwrap()["body_bytes"], 3 << 20);
}

#[tokio::test]
async fn a_streamed_body_is_counted_as_it_passes() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let edge = Edge::start(&conf(&axum, &py));
    for path in ["/echo/x", "/py/x"] {
        let r = post_chunked(&edge, path, 4, 256, true);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json().unwrap()["body_bytes"], 1024, "{path}");
    }
    // no length announced: refused once the count passes 1 KiB (the rest is never awaited)
    for path in ["/echo/x", "/py/x"] {
        let r = post_chunked(&edge, path, 5, 256, false);
        assert_refused(&r, 413, "body_too_large");
    }
    // an Upgrade header does not lift the limit: only frames after a real 101 are not a body
    let r = raw::send(
        addr(&edge),
        format!(
            "POST /echo/x HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: close\r\n\
             Content-Length: 5000\r\n\r\n{}",
            "a".repeat(5000)
        )
        .as_bytes(),
    )
    .expect("an answer");
    assert_refused(&r, 413, "body_too_large");
    let mut upgrade_chunked = b"POST /py/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..5 {
        upgrade_chunked.extend_from_slice(format!("100\r\n{}\r\n", "a".repeat(256)).as_bytes());
    }
    let r = raw::send(addr(&edge), &upgrade_chunked).expect("an answer");
    assert_eq!(r.status, 413, "{}", r.text());
    // many tiny chunks add up the same way
    let r = post_chunked(&edge, "/echo/x", 1100, 1, false);
    assert_refused(&r, 413, "body_too_large");
}

#[tokio::test]
async fn a_header_block_over_the_limit_is_431() {
    let (axum, py) = (Upstream::start("u"), FastApi::start());
    let edge = Edge::start(&conf(&axum, &py));
    let a = addr(&edge);
    let ok = raw::get(
        a,
        "cinema.test",
        "/echo/x",
        &[("cookie", &"a".repeat(20_000))],
    )
    .unwrap();
    assert_eq!(ok.status, 200, "20 KB of cookies fit the default 32 KiB");
    let hits = axum.hits();
    // one big line, many lines, and a long request target all count
    let big = "a".repeat(40_000);
    let many: Vec<(String, String)> = (0..100)
        .map(|i| (format!("x-filler-{i}"), "b".repeat(400)))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let long_target = format!("/echo/x?q={}", "c".repeat(40_000));
    for r in [
        raw::get(a, "cinema.test", "/echo/x", &[("cookie", &big)]),
        raw::get(a, "cinema.test", "/py/x", &many),
        raw::get(a, "cinema.test", &long_target, &[]),
        // the edge's own paths are no exception
        raw::get(a, "cinema.test", "/_edge/health", &[("x-junk", &big)]),
    ] {
        assert_refused(&r.expect("an answer"), 431, "header_too_large");
    }
    assert_eq!(axum.hits(), hits, "nothing oversized reached the upstream");
    // a reload can lower the limit
    let text = std::fs::read_to_string(edge.conf_dir().join("routes.toml")).unwrap();
    edge.write_routes(&text.replace("[http]\n", "[http]\nmax_header_block = \"8KiB\"\n"));
    let lowered = crate::support::eventually(std::time::Duration::from_secs(10), || {
        raw::get(
            a,
            "cinema.test",
            "/echo/x",
            &[("cookie", &"a".repeat(10_000))],
        )
        .is_some_and(|r| r.status == 431)
    })
    .await;
    assert!(lowered, "max_header_block follows a reload");
}
