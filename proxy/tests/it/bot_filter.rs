//! The Smart TV bot filter with the real edge and a real Redis: untouched TV traffic, the
//! question → answer → pass cycle, refusals (too fast, replayed, another client), escalating
//! lockouts, and Redis down.

use crate::support::{client, edge::Edge, redis::Redis, upstream::Upstream};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

pub const TV: &str = "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 TV Safari/537.36";
const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// A catch-all route behind the filter: a TV UA above 5 requests in 10 s is challenged. The
/// client's address comes from X-Forwarded-For (the test client is a trusted proxy), so one
/// test can play clients on several networks.
pub fn conf(u: &Upstream, redis: Option<&Redis>, min_answer: &str) -> String {
    let redis = redis.map_or(String::new(), |r| {
        format!("[redis]\nurl = \"{}\"\ntimeout = \"50ms\"\n", r.url())
    });
    conf_with(u, &redis, min_answer)
}

/// `conf` with any `[redis]` section (a topology of the test matrix).
pub fn conf_with(u: &Upstream, redis: &str, min_answer: &str) -> String {
    format!(
        "{redis}[client_ip]\ntrusted_proxies = [\"127.0.0.1\"]\nipv4_prefix = 24\n\
         [bot_filter]\nsecret = \"{SECRET}\"\nmin_answer_time = \"{min_answer}\"\n\
         max_failures = 3\nlockouts = [\"2s\", \"4s\"]\npass_rate = \"100/s\"\npass_burst = 100\n\
         [[bot_filter.rule]]\nname = \"tv-burst\"\nuser_agent = \"(?i)smart-tv|tizen|roku\"\n\
         rate = {{ requests = 5, window = \"10s\" }}\naction = \"challenge\"\n{}",
        crate::support::one_route(&[u.addr()], "")
    )
}

pub struct Tv<'a> {
    pub edge: &'a Edge,
    pub ua: &'a str,
    pub ip: &'a str,
}

impl<'a> Tv<'a> {
    /// The tests' usual TV: a Tizen set on 198.51.100.0/24.
    pub fn at(edge: &'a Edge) -> Tv<'a> {
        Tv {
            edge,
            ua: TV,
            ip: "198.51.100.7",
        }
    }

    pub async fn get(&self, path: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut req = client()
            .get(self.edge.url(path))
            .header("user-agent", self.ua)
            .header("x-forwarded-for", self.ip)
            .header("accept", "application/json");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Requests until the filter challenges; returns the challenge body.
    pub async fn until_challenged(&self) -> Value {
        for _ in 0..20 {
            let r = self.get("/api/v1/movies", &[]).await;
            if r.status() == StatusCode::FORBIDDEN {
                assert_eq!(r.headers()["edge-challenge"], "math");
                assert_eq!(r.headers()["cache-control"], "no-store");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["code"], "challenge", "{body}");
                return body;
            }
            assert_eq!(r.status(), StatusCode::OK);
        }
        panic!("never challenged");
    }

    pub async fn answer(&self, challenge: &Value, answer: &str) -> reqwest::Response {
        client()
            .post(self.edge.url(challenge["answer_url"].as_str().unwrap()))
            .header("user-agent", self.ua)
            .header("x-forwarded-for", self.ip)
            .header("accept", "application/json")
            .json(&serde_json::json!({ "answer": answer }))
            .send()
            .await
            .unwrap()
    }
}

/// Reads "a + b = ?" or "a × b + c = ?".
pub fn solve(question: &str) -> String {
    let expr = question.trim_end_matches(" = ?");
    let (left, right) = expr.rsplit_once(" + ").unwrap();
    let left: u32 = match left.split_once(" × ") {
        Some((a, b)) => a.parse::<u32>().unwrap() * b.parse::<u32>().unwrap(),
        None => left.parse().unwrap(),
    };
    (left + right.parse::<u32>().unwrap()).to_string()
}

fn redis_calls(r: &Redis) -> u64 {
    ["eval", "evalsha", "get", "getdel", "set", "pttl", "incr"]
        .iter()
        .map(|c| r.command_calls(c))
        .sum()
}

#[tokio::test]
async fn tv_traffic_at_a_normal_rate_is_untouched_and_costs_no_round_trip() {
    let u = Upstream::start("movies");
    let redis = Redis::start();
    let edge = Edge::start(&conf(&u, Some(&redis), "300ms"));
    let tv = Tv::at(&edge);
    let before = redis_calls(&redis);
    for _ in 0..5 {
        let r = tv.get("/api/v1/movies", &[("x-tv-probe", "1")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("set-cookie").is_none());
        let seen: Value = r.json().await.unwrap();
        let names: Vec<&String> = seen["headers"].as_object().unwrap().keys().collect();
        assert!(
            names
                .iter()
                .all(|n| !n.contains("edge") && !n.contains("challenge")),
            "nothing of the filter reaches the upstream: {names:?}"
        );
    }
    assert_eq!(
        redis_calls(&redis),
        before,
        "clean traffic made Redis calls"
    );
    // another network's TV has its own budget
    let neighbour = Tv {
        ip: "203.0.113.9",
        ..tv
    };
    assert_eq!(neighbour.get("/x", &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_human_paced_answer_earns_a_pass_bound_to_the_client() {
    let u = Upstream::start("movies");
    let redis = Redis::start();
    let edge = Edge::start(&conf(&u, Some(&redis), "300ms"));
    let tv = Tv::at(&edge);
    let challenge = tv.until_challenged().await;
    assert_eq!(challenge["expires_in"], 120);
    assert!(challenge["request_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let answer = solve(challenge["question"].as_str().unwrap());
    assert_eq!(
        challenge["answer_digits"].as_u64().unwrap() as usize,
        answer.len()
    );
    // the stored question holds a MAC of the answer, never the answer
    let keys = redis.cli(&["KEYS", "bf:q:*"]);
    let key = keys.lines().next().expect("a stored question");
    let record = redis.cli(&["GET", key]);
    let fields: Vec<&str> = record.trim().split('|').collect();
    assert_eq!(fields[0], "v1", "{record}");
    assert!(fields[1].len() >= 32, "a MAC, not a short answer: {record}");
    assert!(
        !fields.contains(&answer.as_str()),
        "the answer in clear: {record}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = tv.answer(&challenge, &answer).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pass_header = r.headers()["x-edge-pass"].to_str().unwrap().to_string();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("edge_pass=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body: Value = r.json().await.unwrap();
    let pass = body["pass"].as_str().unwrap().to_string();
    assert_eq!(pass, pass_header);
    assert_eq!(body["expires_in"], 2700);

    // the same fast TV now browses with the pass, as an app (header) or a browser (cookie)
    for _ in 0..10 {
        let r = tv.get("/api/v1/movies", &[("x-edge-pass", &pass)]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let cookie_header = format!("edge_pass={pass}");
    assert_eq!(
        tv.get("/api/v1/movies", &[("cookie", &cookie_header)])
            .await
            .status(),
        StatusCode::OK
    );
    // a replayed challenge id is refused, and not with a pass
    let r = tv.answer(&challenge, &answer).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["reason"], "expired");
    assert!(again.get("pass").is_none());

    // the pass from another User-Agent, or from another network: challenged like anyone
    for other in [
        Tv {
            ua: "Roku/DVP-9.10 (519.10E04111A)",
            ..tv
        },
        Tv {
            ip: "203.0.113.50",
            ..tv
        },
    ] {
        let mut status = StatusCode::OK;
        for _ in 0..8 {
            status = other
                .get("/api/v1/movies", &[("x-edge-pass", &pass)])
                .await
                .status();
        }
        assert_eq!(status, StatusCode::FORBIDDEN, "{} {}", other.ua, other.ip);
    }
    // the same /24 (carrier NAT moved the TV; `ipv4_prefix = 24`): the pass still works
    let moved = Tv {
        ip: "198.51.100.201",
        ..tv
    };
    for _ in 0..8 {
        assert_eq!(
            moved
                .get("/api/v1/movies", &[("x-edge-pass", &pass)])
                .await
                .status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn fast_answers_and_guessing_end_in_a_lockout_that_escalates() {
    let u = Upstream::start("movies");
    let redis = Redis::start();
    let edge = Edge::start(&conf(&u, Some(&redis), "1s"));
    let tv = Tv::at(&edge);
    let challenge = tv.until_challenged().await;
    // right, but at machine speed: refused, counted, and a new question comes back
    let r = tv
        .answer(&challenge, &solve(challenge["question"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let next: Value = r.json().await.unwrap();
    assert_eq!(next["reason"], "too_fast");
    assert_ne!(next["challenge_id"], challenge["challenge_id"]);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = tv.answer(&next, "99999").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let next: Value = r.json().await.unwrap();
    assert_eq!(next["reason"], "wrong_answer");
    // three failures: locked out for the first lockout length
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = tv.answer(&next, "99999").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "2");
    let locked: Value = r.json().await.unwrap();
    assert_eq!(locked["code"], "locked_out", "{locked}");
    // while locked, browsing above the rate gets the lockout, not a question
    let mut status = StatusCode::OK;
    for _ in 0..5 {
        status = tv.get("/api/v1/movies", &[]).await.status();
        if status != StatusCode::OK {
            break;
        }
    }
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        !redis.cli(&["KEYS", "bf:*:lock"]).is_empty(),
        "the lockout lives in Redis"
    );
    assert!(edge.logged("bot filter: client locked out").await);

    // after it, three more failures lock out for longer
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut last = None;
    let mut challenge = tv.until_challenged().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let r = tv.answer(&challenge, "0").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r.headers()["retry-after"].to_str().unwrap().to_string());
            break;
        }
        challenge = r.json().await.unwrap();
    }
    assert_eq!(last.as_deref(), Some("4"), "the second lockout is longer");
}

#[tokio::test]
async fn with_redis_down_clean_traffic_passes_and_answers_fail_closed() {
    let u = Upstream::start("movies");
    let redis = Redis::start();
    let edge = Edge::start(&conf(&u, Some(&redis), "300ms"));
    let tv = Tv::at(&edge);
    let challenge = tv.until_challenged().await;
    redis.kill();
    let calm = Tv {
        ip: "192.0.2.1",
        ..tv
    };
    for _ in 0..5 {
        assert_eq!(
            calm.get("/api/v1/movies", &[]).await.status(),
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = tv
        .answer(&challenge, &solve(challenge["question"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert!(body["request_id"].is_string());
    // a suspicious client cannot get a question either: 503, not a free pass
    assert_eq!(
        tv.get("/api/v1/movies", &[]).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn without_redis_the_filter_keeps_its_state_in_memory() {
    let u = Upstream::start("movies");
    let edge = Edge::start(&conf(&u, None, "300ms"));
    let tv = Tv::at(&edge);
    let challenge = tv.until_challenged().await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = tv
        .answer(&challenge, &solve(challenge["question"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // bad bodies are a clear 400 with the request id
    let r = client()
        .post(edge.url("/_edge/challenge/whatever"))
        .header("x-forwarded-for", "198.51.100.7")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["request_id"].is_string());
    let r = client()
        .post(edge.url("/_edge/challenge/whatever"))
        .header("content-type", "application/json")
        .body(format!("{{\"answer\": \"{}\"}}", "9".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The HTML challenge in a real browser: rendered in Russian for a Russian TV, answered with
/// the keyboard, and the viewer lands on the page they wanted with the pass cookie set. The
/// screenshot is kept in target/test-artifacts/ for a human to look at.
#[tokio::test]
async fn the_challenge_page_is_answered_in_a_real_browser() {
    let u = Upstream::start("movies");
    let edge = Edge::start(&conf(&u, None, "300ms"));
    // the browser first (it can take seconds to start on a busy machine), then the TV's
    // earlier requests from the same address and User-Agent until it is above the rate: the
    // navigation right after is challenged (the next token is two seconds away)
    let mut browser = crate::support::browser::Browser::start(TV, "ru-RU,ru").await;
    let mut challenged = false;
    for _ in 0..10 {
        let r = client()
            .get(edge.url("/api/v1/movies"))
            .header("user-agent", TV)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::FORBIDDEN {
            // an HTML page of the edge's own: not framable, not sniffed, no script allowed
            let h = r.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["referrer-policy"], "no-referrer");
            challenged = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(challenged, "the TV was never above the rate");
    browser.navigate(&edge.url("/api/v1/movies?page=2")).await;
    let text = browser.eval("document.body.innerText").await;
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(text.contains("Решите пример"), "{text}");
    assert_eq!(
        browser.eval("document.scripts.length").await,
        0,
        "no JavaScript"
    );
    assert_eq!(
        browser.eval("document.activeElement.id").await,
        "answer",
        "the input has focus: a D-pad needs no pointer"
    );
    // everything fits one 720p TV screen: no scrolling with a remote
    assert_eq!(
        browser
            .eval("document.querySelector('button').getBoundingClientRect().bottom <= innerHeight")
            .await,
        true
    );
    let question = browser
        .eval("document.querySelector('.q').textContent")
        .await;
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bot-filter-challenge.png"), &png).unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;
    browser
        .type_and_enter(&solve(question.as_str().unwrap()))
        .await;
    // redirected (303) back to the page, now served: the upstream echoes the pass cookie
    assert_eq!(
        browser.eval("location.pathname + location.search").await,
        "/api/v1/movies?page=2"
    );
    let body = browser.eval("document.body.innerText").await;
    let seen: Value = serde_json::from_str(body.as_str().unwrap()).expect("the upstream's JSON");
    assert!(
        seen["headers"]["cookie"]
            .as_str()
            .is_some_and(|c| c.contains("edge_pass=v1.")),
        "{seen}"
    );
    let png = browser.screenshot().await;
    std::fs::write(dir.join("bot-filter-passed.png"), &png).unwrap();
}
