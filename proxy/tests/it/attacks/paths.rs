//! Path encodings and normalisations against `auth = "required"`: the edge decides on the
//! canonical path and sends that same path upstream, so no form of the premium path reaches
//! the premium handler without a token, whichever way the service decodes it.

use crate::support::auth::{AuthStack, Options, PASSWORD};
use crate::support::edge::Edge;
use crate::support::fastapi::FastApi;
use crate::support::raw::{self, RawResponse};
use crate::support::upstream::Upstream;
use std::net::SocketAddr;

const PREMIUM: &str = "/api/v1/movies/premium";

/// Forms of the premium path a client can send; at least one decoder or normaliser out there
/// reads each of them as `PREMIUM` (or a path under it).
const VARIANTS: &[&str] = &[
    "/api/v1/movies/premium",
    "/api/v1/movies/premium/",
    "/api/v1/movies/premium/x",
    "/api/v1/movies/%70remium",
    "/api/v1/movies/prem%69um",
    "/api/v1/movies/%70%72%65%6d%69%75%6d",
    "/api/v1/%6dovies/premium",
    "/api/v1/%6Dovies/premium",
    "/api/%76%31/movies/premium",
    "/api/v1/movies%2Fpremium",
    "/api/v1/movies%2fpremium",
    "/api%2Fv1/movies/premium",
    "/api/v1/movies/premium%2F",
    "/api/v1/movies/premium%2f..",
    "/api/v1/movies%5Cpremium",
    "/api/v1/movies%5cpremium",
    "/api/v1/movies\\premium",
    "/api/v1//movies/premium",
    "//api/v1/movies/premium",
    "/api/v1/movies//premium",
    "/api/v1/./movies/premium",
    "/api/v1/movies/./premium",
    "/api/v1/x/../movies/premium",
    "/api/v1/movies/x/../premium",
    "/api/v1/movies/%2e/premium",
    "/api/v1/movies/%2E/premium",
    "/api/v1/movies/x/%2e%2e/premium",
    "/api/v1/movies/x/%2E%2E/premium",
    "/api/v1/movies/x/.%2e/premium",
    "/api/v1/movies/%252e%252e/movies/premium",
    "/api/v1/movies/%2570remium",
    "/api/v1/movies/%25%37%30remium",
    "/api/v1/movies/%25%32%66..",
    "/api/v1/movies/x/%252e%252e/premium",
    "/api/v1/movies/%c0%ae%c0%ae/movies/premium",
    "/api/v1/movies/x/%c0%ae%c0%ae/premium",
    "/api/v1/movies/premium;x=1",
    "/api/v1/movies;x=1/premium",
    "/api/v1/movies/premium;",
    "/api/v1/movies/premium%00",
    "/api/v1/movies/premium%00.json",
    "/api/v1/movies/premium%0a",
    "/api/v1/movies/premium?x=/../",
    "/api/v1/movies/premium%3f",
    "/api/v1/movies/premium%23",
    "/api/v1/movies/x/..;/premium",
];

/// The auth stack with both upstreams, each behind a public `/api/v1` and a required
/// `/api/v1/movies/premium` for the subscriber role, told apart by host.
struct Stage {
    s: AuthStack,
    _axum: Upstream,
    _fastapi: FastApi,
}

fn stage() -> Stage {
    let axum = Upstream::start("axum");
    let fastapi = FastApi::start();
    let mut routes = format!(
        "[upstream.axum]\nservers = [\"{}\"]\n[upstream.fastapi]\nservers = [\"{}\"]\n",
        axum.addr(),
        fastapi.addr()
    );
    for up in ["axum", "fastapi"] {
        routes.push_str(&format!(
            "[[route]]\nname = \"{up}-api\"\nhost = \"{up}.test\"\npath = \"/api/v1\"\nupstream = \"{up}\"\n\
             [[route]]\nname = \"{up}-premium\"\nhost = \"{up}.test\"\npath = \"{PREMIUM}\"\nupstream = \"{up}\"\n\
             auth = \"required\"\nroles = [\"subscriber\"]\n"
        ));
    }
    let s = AuthStack::start_with(Options {
        routes_extra: &routes,
        ..Options::default()
    });
    Stage {
        s,
        _axum: axum,
        _fastapi: fastapi,
    }
}

impl Stage {
    fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.s.edge.port).into()
    }

    fn get(&self, host: &str, target: &str, headers: &[(&str, &str)]) -> RawResponse {
        raw::get(self.addr(), host, target, headers)
            .unwrap_or_else(|| panic!("{host}{target}: the connection closed without an answer"))
    }
}

/// What the most liberal decoder makes of a path: percent-decoding until nothing changes,
/// backslashes as slashes, `;` parameters dropped, dot segments and empty segments removed.
fn liberal(path: &str) -> String {
    let mut p = path.split(['?', '#']).next().unwrap_or("").to_string();
    loop {
        let decoded = percent_decode(&p);
        if decoded == p {
            break;
        }
        p = decoded;
    }
    let p = p.replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                // overlong "%c0%ae" is how some decoders spell '.'
                if v == 0xc0 && b.get(i + 3) == Some(&b'%') {
                    if let Ok(0xae) = u8::from_str_radix(s.get(i + 4..i + 6).unwrap_or(""), 16) {
                        out.push(b'.');
                        i += 6;
                        continue;
                    }
                }
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_refusal_or_public(what: &str, r: &RawResponse) {
    assert!(r.status < 500, "{what}: {} {}", r.status, r.text());
    if r.status == 400 || r.status == 401 || r.status == 403 {
        let body = r
            .json()
            .unwrap_or_else(|| panic!("{what}: JSON body: {}", r.text()));
        let id = r.header("x-request-id").unwrap_or_default();
        assert_eq!(body["request_id"], id, "{what}: {body}");
        assert!(body["code"].is_string(), "{what}: {body}");
        if r.status == 400 {
            assert_eq!(body["code"], "invalid_path", "{what}: {body}");
        }
    }
}

#[tokio::test]
async fn no_form_of_a_required_path_reaches_its_handler_without_a_token() {
    assert!(VARIANTS.len() >= 30);
    let stage = stage();
    let mut refused = 0;
    for variant in VARIANTS {
        // FastAPI routes on the decoded path: the handler says which route it was
        let r = stage.get("fastapi.test", variant, &[]);
        assert_refusal_or_public(&format!("fastapi {variant}"), &r);
        if r.status == 200 {
            let body = r.json().expect("fastapi json");
            assert_ne!(
                body["handler"], "premium",
                "fastapi {variant}: reached the premium handler without a token: {body}"
            );
        } else {
            refused += 1;
        }
        // axum routes on the raw path and echoes it: what it received must not mean the
        // premium path to any decoder behind it
        let r = stage.get("axum.test", variant, &[]);
        assert_refusal_or_public(&format!("axum {variant}"), &r);
        if r.status == 200 {
            let body = r.json().expect("echo json");
            let uri = body["uri"].as_str().unwrap_or_default();
            let meaning = liberal(uri);
            assert!(
                meaning != PREMIUM && !meaning.starts_with(&format!("{PREMIUM}/")),
                "axum {variant}: the upstream got {uri}, which decodes to {meaning}"
            );
        }
    }
    assert!(refused >= 30, "only {refused} variants refused");
}

#[tokio::test]
async fn the_upstream_receives_the_path_the_edge_decided_on() {
    let stage = stage();
    stage.s.create_user("sub@example.com", &["subscriber"]);
    let pair = stage.s.login("sub@example.com", PASSWORD).await;
    let token = pair["access_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    for variant in [
        "/api/v1/movies/%70remium",
        "/api/v1/x/../movies/./premium",
        "/api//v1/%6dovies/premium",
    ] {
        let r = stage.get("fastapi.test", variant, &auth);
        assert_eq!(r.status, 200, "{variant}: {}", r.text());
        let body = r.json().unwrap();
        assert_eq!(body["handler"], "premium", "{variant}");
        assert_eq!(
            body["raw_path"], PREMIUM,
            "{variant}: canonical path upstream"
        );
        assert!(body["user"].is_string(), "{variant}: identity passed");
        let r = stage.get("axum.test", variant, &auth);
        assert_eq!(r.status, 200, "{variant}");
        assert_eq!(r.json().unwrap()["uri"], PREMIUM, "{variant}");
    }
    // a subscriber's token does not open an encoded path the edge refuses
    let r = stage.get("fastapi.test", "/api/v1/movies%2Fpremium", &auth);
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn strip_prefix_and_matrix_params_work_on_the_canonical_path() {
    let u = Upstream::start("u");
    let edge = Edge::start(&format!(
        "[upstream.u]\nservers = [\"{a}\"]\n\
         [[route]]\nname = \"svc\"\npath = \"/svc\"\nupstream = \"u\"\nstrip_prefix = true\n\
         [[route]]\nname = \"matrix\"\npath = \"/m\"\nupstream = \"u\"\nmatrix_params = true\n",
        a = u.addr()
    ));
    let addr: SocketAddr = ([127, 0, 0, 1], edge.port).into();
    let uri_of = |target: &str| {
        let r = raw::get(addr, "a.test", target, &[]).expect("answer");
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        r.json().unwrap()["uri"].as_str().unwrap().to_string()
    };
    assert_eq!(uri_of("/%73vc/./a//%62?q=%2F"), "/a/b?q=%2F");
    assert_eq!(uri_of("/x/../svc"), "/");
    assert_eq!(uri_of("/m/x;v=1/y;z"), "/m/x;v=1/y;z");
    let r = raw::get(addr, "a.test", "/svc/a;jsessionid=1", &[]).expect("answer");
    assert_eq!(r.status, 400, "no matrix_params on /svc");
    assert_eq!(r.json().unwrap()["code"], "invalid_path");
    assert_eq!(u.hits(), 3);
}

#[tokio::test]
async fn odd_hosts_do_not_fall_through_to_host_less_routes() {
    // the premium route exists only for cinema.test; a host-less public route catches the rest
    let fastapi = FastApi::start();
    let routes = format!(
        "[upstream.fastapi]\nservers = [\"{}\"]\n\
         [[route]]\nname = \"api\"\npath = \"/api/v1\"\nupstream = \"fastapi\"\n\
         [[route]]\nname = \"premium\"\nhost = \"cinema.test\"\npath = \"{PREMIUM}\"\n\
         upstream = \"fastapi\"\nauth = \"required\"\n",
        fastapi.addr()
    );
    let s = AuthStack::start_with(Options {
        routes_extra: &routes,
        ..Options::default()
    });
    let addr: SocketAddr = ([127, 0, 0, 1], s.edge.port).into();
    for host in [
        "cinema.test",
        "CINEMA.test",
        "cinema.test.",
        "cinema.test:80",
        "cinema.test..",
        "cinema.test:abc",
        "cinema.test:",
        "cinema.test, other.test",
        "cinema%2etest",
        "cinema.test\t",
        "user@cinema.test",
    ] {
        let r = raw::get(addr, host, PREMIUM, &[]);
        let Some(r) = r else { continue }; // Pingora refused it before routing
        assert!(
            r.status == 400 || r.status == 401,
            "{host:?}: {} {}",
            r.status,
            r.text()
        );
        if r.status == 400 {
            let body = r.json().unwrap_or_default();
            assert!(
                body["code"].is_string() || r.body.is_empty(),
                "{host:?}: {}",
                r.text()
            );
        }
    }
    // HTTP/1.1 without a Host header
    let r = raw::send(
        addr,
        format!("GET {PREMIUM} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("an answer");
    assert_eq!(r.status, 400);
}
