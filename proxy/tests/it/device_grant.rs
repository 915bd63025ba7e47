//! Sign-in on a TV by a code approved on a phone (RFC 8628), through the real edge with its
//! embedded core, PostgreSQL and Redis: the TV app's JSON flow with every RFC error, the phone's
//! page (CSRF, password and social sign-in, approve, deny), the TV browser's page, the QR code,
//! brute force and replays.

use crate::social;
use crate::support::auth::{AuthStack, Options, PASSWORD};
use crate::support::social::Persona;
use crate::support::upstream::Upstream;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

pub const TV_UA: &str =
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/85.0 TV Safari/537.36";
const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1";
pub const CLIENT: &str = "cinema-tv";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub struct Tv {
    pub s: AuthStack,
    _movies: Upstream,
}

/// The stack with `[auth.device]` (1 s interval), the phone page routed at /activate, a
/// protected route, and (optionally) social providers.
pub fn stack_with(social: &str) -> Tv {
    social::secret_env();
    let movies = Upstream::start("movies");
    let routes = format!(
        "[upstream.movies]\nservers = [\"{}\"]\n\
         [[route]]\nname = \"required\"\npath = \"/req\"\nupstream = \"movies\"\nauth = \"required\"\n\
         [[route]]\nname = \"activate\"\npath = \"/activate\"\nupstream = \"auth\"\n",
        movies.addr()
    );
    let auth_extra = format!(
        "token_cookie = \"{}\"\n\
         device = {{ verification_uri = \"http://127.0.0.1/activate\", interval = \"1s\", user_code_ttl = \"2m\", \
         clients = [{{ id = \"{CLIENT}\", name = \"Cinema for Smart TV\" }}] }}\n",
        social::TOKEN_COOKIE
    );
    let s = AuthStack::start_with(Options {
        auth_extra: &auth_extra,
        routes_extra: &routes,
        social,
        ..Options::default()
    });
    Tv { s, _movies: movies }
}

pub fn stack() -> Tv {
    stack_with("")
}

impl Tv {
    pub async fn code(&self) -> Value {
        let r = self.code_raw(&[("client_id", CLIENT)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().await.unwrap()
    }

    pub async fn code_raw(&self, form: &[(&str, &str)]) -> Response {
        self.s
            .http
            .post(self.s.url("/auth/device/code"))
            .header("user-agent", TV_UA)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap()
    }

    pub async fn poll(&self, device_code: &str) -> Response {
        self.s
            .http
            .post(self.s.url("/auth/device/token"))
            .header("user-agent", TV_UA)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[
                ("grant_type", GRANT),
                ("device_code", device_code),
                ("client_id", CLIENT),
            ]))
            .send()
            .await
            .unwrap()
    }

    /// Polls at the code's interval until the answer is not `authorization_pending`.
    pub async fn poll_until_decided(&self, device_code: &str) -> (StatusCode, Value) {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let r = self.poll(device_code).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            if body["error"] != "authorization_pending" {
                return (status, body);
            }
        }
        panic!("never decided");
    }
}

/// A form body (`application/x-www-form-urlencoded`), the RFC's encoding.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// The RFC error of a response: (status, error code), checking the body's shape.
async fn rfc_error(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body["code"], body["error"], "{body}");
    (status, body["error"].as_str().unwrap().to_string())
}

/// A phone's browser: cookies kept by hand, the CSRF token read from the page.
pub struct Phone<'a> {
    pub tv: &'a Tv,
    pub http: reqwest::Client,
    pub cookies: Vec<(String, String)>,
}

fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl<'a> Phone<'a> {
    pub fn new(tv: &'a Tv, ip: &str) -> Phone<'a> {
        // redirects are the test's to follow (cookies are kept by hand)
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(ip.parse::<std::net::IpAddr>().ok())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Phone {
            tv,
            http,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &Response) {
        for v in r.headers().get_all(SET_COOKIE) {
            let text = v.to_str().unwrap();
            let (k, rest) = text.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap().to_string();
            self.cookies.retain(|(name, _)| name != k);
            if !value.is_empty() {
                self.cookies.push((k.to_string(), value));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(self.tv.s.url(path))
            .header("user-agent", PHONE_UA)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    pub async fn post(&mut self, form: &[(&str, &str)]) -> Response {
        let r = self
            .http
            .post(self.tv.s.url("/activate"))
            .header("user-agent", PHONE_UA)
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    /// Opens the page for `code`, signs in with the password form, and returns the
    /// confirmation page.
    pub async fn sign_in_and_open(&mut self, code: &str, email: &str) -> String {
        let (status, html) = self.get(&format!("/activate?user_code={code}")).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let csrf = hidden_value(&html, "csrf").expect("a csrf field");
        let r = self
            .post(&[
                ("csrf", &csrf),
                ("action", "login"),
                ("user_code", code),
                ("email", email),
                ("password", PASSWORD),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
        let back = r.headers()[LOCATION].to_str().unwrap().to_string();
        let (status, html) = self.get(&back).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        html
    }

    pub async fn decide(&mut self, html: &str, action: &str) -> (StatusCode, String) {
        let csrf = hidden_value(html, "csrf").expect("csrf");
        let code = hidden_value(html, "user_code").expect("user_code");
        let r = self
            .post(&[("csrf", &csrf), ("action", action), ("user_code", &code)])
            .await;
        let status = r.status();
        (status, r.text().await.unwrap())
    }
}

#[tokio::test]
async fn a_tv_signs_in_with_a_code_approved_on_a_phone() {
    let tv = stack();
    let user = tv.s.create_user("viewer@example.com", &["subscriber"]);
    let started = tv.code().await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let device_code = started["device_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 9);
    assert!(user_code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        "BCDFGHJKLMNPQRSTVWXZ".contains(c)
    }));
    assert_eq!(started["verification_uri"], "http://127.0.0.1/activate");
    assert_eq!(
        started["verification_uri_complete"],
        format!("http://127.0.0.1/activate?user_code={user_code}")
    );
    assert_eq!(started["interval"], 1);
    assert_eq!(started["expires_in"], 120);
    assert_eq!(device_code.len(), 43);
    // the device code is kept hashed: Redis holds no live secret
    assert!(tv
        .s
        .redis
        .keys("auth:device:dc:*")
        .iter()
        .all(|k| !k.contains(&device_code)));

    let (status, error) = rfc_error(tv.poll(&device_code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "authorization_pending")
    );

    // the phone: typed in lower case without the dash, signed in with a password
    let mut phone = Phone::new(&tv, "127.0.0.7");
    let typed = user_code.replace('-', "").to_lowercase();
    let html = phone.sign_in_and_open(&typed, "viewer@example.com").await;
    assert!(html.contains("Cinema for Smart TV"), "{html}");
    // the phone is on another network than the TV: the page warns (remote phishing)
    assert!(html.contains("different network than your phone"), "{html}");
    assert!(html.contains("Smart TV, Samsung Internet"), "{html}");
    assert!(html.contains(&user_code), "{html}");
    let (status, done) = phone.decide(&html, "approve").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("Approved"), "{done}");

    let (status, pair) = tv.poll_until_decided(&device_code).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    let access = pair["access_token"].as_str().unwrap();
    let (_, claims) = crate::support::auth::claims(access);
    assert_eq!(claims["sub"], user.as_str());
    let r =
        tv.s.http
            .get(tv.s.url("/req"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the TV's token works at the edge"
    );
    // and its refresh token works like any other
    let r = tv.s.refresh(pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);

    // the device code is spent once
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, error) = rfc_error(tv.poll(&device_code).await).await;
    assert_eq!(error, "invalid_grant");
    // login history: the TV's sign-in, method device, device type smart_tv, the TV's agent
    let rows = tv.s.sql(&format!(
        "SELECT method || ' ' || device || ' ' || success FROM login_history WHERE user_id = '{user}' AND method = 'device'"
    ));
    assert_eq!(rows.trim(), "device smart_tv true", "{rows}");
    let ua = tv.s.sql(&format!(
        "SELECT user_agent FROM login_history WHERE user_id = '{user}' AND method = 'device'"
    ));
    assert!(ua.contains("Tizen"), "{ua}");
    // the session the TV holds says smart_tv too
    let device = tv.s.sql(&format!(
        "SELECT device FROM sessions WHERE user_id = '{user}' ORDER BY created_at DESC LIMIT 1"
    ));
    assert_eq!(device.trim(), "smart_tv");

    // an approved code cannot be approved again, by this account or another
    let (status, again) = phone.decide(&html, "approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    tv.s.create_user("someone-else@example.com", &[]);
    let mut other = Phone::new(&tv, "127.0.0.17");
    let (status, _) = other.get(&format!("/activate?user_code={user_code}")).await;
    assert_eq!(status, StatusCode::OK, "the sign-in form");
    let (_, form) = other.get(&format!("/activate?user_code={user_code}")).await;
    let csrf = hidden_value(&form, "csrf").unwrap();
    let r = other
        .post(&[
            ("csrf", &csrf),
            ("action", "login"),
            ("user_code", &user_code),
            ("email", "someone-else@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, page) = other.get(&format!("/activate?user_code={user_code}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already used"), "{page}");
}

/// A code approved by a session that ends before the TV polls (the owner signed out
/// everywhere, or reset a stolen password) gives the TV nothing: an intruder's approval does
/// not outlive the owner's clean-up.
#[tokio::test]
async fn an_approval_is_withdrawn_when_the_approving_session_ends_first() {
    let tv = stack();
    let user = tv.s.create_user("owner@example.com", &[]);
    let started = tv.code().await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let device_code = started["device_code"].as_str().unwrap().to_string();
    let mut phone = Phone::new(&tv, "127.0.0.7");
    let html = phone
        .sign_in_and_open(&user_code, "owner@example.com")
        .await;
    let (status, done) = phone.decide(&html, "approve").await;
    assert_eq!(status, StatusCode::OK, "{done}");

    let owner = tv.s.login("owner@example.com", PASSWORD).await;
    let r =
        tv.s.http
            .post(tv.s.url("/auth/logout-all"))
            .bearer_auth(owner["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let (status, error) = rfc_error(tv.poll(&device_code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "access_denied")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, error) = rfc_error(tv.poll(&device_code).await).await;
    assert_eq!(
        error, "invalid_grant",
        "the approval is spent, not handed back"
    );
    let tv_sessions = tv.s.sql(&format!(
        "SELECT count(*) FROM sessions WHERE user_id = '{user}' AND device = 'smart_tv'"
    ));
    assert_eq!(tv_sessions.trim(), "0");
}

/// The TV's poll and the owner's "sign out everywhere" sent at the same moment, over several
/// accounts: in whichever order they land, the TV does not keep a session (either the poll
/// is refused, or the sign-out ends the TV's session too).
#[tokio::test]
async fn a_poll_racing_a_sign_out_everywhere_leaves_the_tv_signed_out() {
    let tv = stack();
    let mut outcomes = Vec::new();
    for i in 0..10u32 {
        let email = format!("racer{i}@example.com");
        tv.s.create_user(&email, &[]);
        let started = tv.code().await;
        let user_code = started["user_code"].as_str().unwrap().to_string();
        let device_code = started["device_code"].as_str().unwrap().to_string();
        let mut phone = Phone::new(&tv, &format!("127.0.1.{}", i + 1));
        let html = phone.sign_in_and_open(&user_code, &email).await;
        let (status, _) = phone.decide(&html, "approve").await;
        assert_eq!(status, StatusCode::OK);
        let owner = tv.s.login(&email, PASSWORD).await;
        let logout_all =
            tv.s.http
                .post(tv.s.url("/auth/logout-all"))
                .bearer_auth(owner["access_token"].as_str().unwrap())
                .send();
        let (poll, logout) = tokio::join!(tv.poll(&device_code), logout_all);
        assert!(logout.unwrap().status().is_success());
        let status = poll.status();
        outcomes.push(status.as_u16());
        if status == StatusCode::OK {
            let pair: Value = poll.json().await.unwrap();
            let r = tv.s.refresh(pair["refresh_token"].as_str().unwrap()).await;
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "account {i}: the TV's session outlived the sign-out everywhere"
            );
        } else {
            assert_eq!(rfc_error(poll).await.1, "access_denied", "account {i}");
        }
    }
    println!("TV polls against a sign-out everywhere: {outcomes:?}");
}

/// A TV session approved from a phone is no fresher a sign-in than the phone's: when the
/// phone signed in too long ago to link a provider, so did the TV (a stolen access token that
/// approves a TV of its own gains no "recent sign-in").
#[tokio::test]
async fn a_tv_session_is_only_as_recent_a_sign_in_as_the_phone_that_approved_it() {
    let (y, v, m) = social::fake_providers();
    let tv = stack_with(&social::three_providers(
        &y,
        &v,
        &m,
        "recent_login = \"2s\"\n",
    ));
    tv.s.create_user("owner@example.com", &[]);
    let started = tv.code().await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let device_code = started["device_code"].as_str().unwrap().to_string();
    let mut phone = Phone::new(&tv, "127.0.0.21");
    let html = phone
        .sign_in_and_open(&user_code, "owner@example.com")
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _) = phone.decide(&html, "approve").await;
    assert_eq!(status, StatusCode::OK);
    let (status, pair) = tv.poll_until_decided(&device_code).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let link = |token: String| {
        let tv = &tv;
        async move {
            tv.s.http
                .post(tv.s.url("/auth/oauth/yandex/link"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let tv_token = pair["access_token"].as_str().unwrap().to_string();
    assert_eq!(link(tv_token).await, StatusCode::FORBIDDEN);
    let fresh = tv.s.login("owner@example.com", PASSWORD).await;
    let fresh_token = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(link(fresh_token).await, StatusCode::OK);
}

#[tokio::test]
async fn every_rfc_error_and_bad_input_is_answered_in_the_rfc_shape() {
    let tv = stack();
    // code endpoint
    let (s, e) = rfc_error(tv.code_raw(&[("client_id", "someone-else")]).await).await;
    assert_eq!(
        (s, e.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let (s, e) = rfc_error(tv.code_raw(&[("scope", "x")]).await).await;
    assert_eq!(
        (s, e.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r =
        tv.s.http
            .post(tv.s.url("/auth/device/code"))
            .header("content-type", "text/plain")
            .body("client_id=cinema-tv")
            .send()
            .await
            .unwrap();
    assert_eq!(rfc_error(r).await.1, "invalid_request");
    let r =
        tv.s.http
            .post(tv.s.url("/auth/device/code"))
            .json(&json!({ "client_id": CLIENT }))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JSON works as well as a form");
    let r =
        tv.s.http
            .post(tv.s.url("/auth/device/code"))
            .header("content-type", "application/json")
            .body("{\"client_id\":")
            .send()
            .await
            .unwrap();
    assert_eq!(rfc_error(r).await.1, "invalid_request");
    let r =
        tv.s.http
            .post(tv.s.url("/auth/device/code"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("client_id={CLIENT}&pad={}", "x".repeat(200_000)))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // token endpoint
    let started = tv.code().await;
    let device_code = started["device_code"].as_str().unwrap();
    let token = |form: Vec<(&'static str, String)>| {
        let http = tv.s.http.clone();
        let url = tv.s.url("/auth/device/token");
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = encode(&pairs);
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let (s, e) = rfc_error(
        token(vec![
            ("grant_type", "password".into()),
            ("device_code", device_code.into()),
            ("client_id", CLIENT.into()),
        ])
        .await,
    )
    .await;
    assert_eq!(
        (s, e.as_str()),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (_, e) = rfc_error(
        token(vec![
            ("grant_type", GRANT.into()),
            ("client_id", CLIENT.into()),
        ])
        .await,
    )
    .await;
    assert_eq!(e, "invalid_request");
    let (s, e) = rfc_error(
        token(vec![
            ("grant_type", GRANT.into()),
            ("device_code", device_code.into()),
            ("client_id", "other".into()),
        ])
        .await,
    )
    .await;
    assert_eq!(
        (s, e.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    for forged in [
        "short",
        &"A".repeat(43),
        &format!("{}x", &device_code[..42]),
    ] {
        let (_, e) = rfc_error(
            token(vec![
                ("grant_type", GRANT.into()),
                ("device_code", forged.to_string()),
                ("client_id", CLIENT.into()),
            ])
            .await,
        )
        .await;
        assert_eq!(e, "invalid_grant", "{forged}");
    }
    // pending, then too fast: slow_down, and this code's interval grows by 5 s
    let (_, e) = rfc_error(tv.poll(device_code).await).await;
    assert_eq!(e, "authorization_pending");
    let r = tv.poll(device_code).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "slow_down", "{body}");
    assert_eq!(body["interval"], 6, "{body}");
    // at the old interval it is still too fast
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rfc_error(tv.poll(device_code).await).await.1, "slow_down");

    // denied on the phone: access_denied
    tv.s.create_user("viewer@example.com", &[]);
    let second = tv.code().await;
    let mut phone = Phone::new(&tv, "127.0.0.8");
    let html = phone
        .sign_in_and_open(second["user_code"].as_str().unwrap(), "viewer@example.com")
        .await;
    let (status, done) = phone.decide(&html, "deny").await;
    assert_eq!(status, StatusCode::OK);
    assert!(done.contains("Denied"), "{done}");
    let (status, body) = tv
        .poll_until_decided(second["device_code"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );

    // expiry: the store decides on the time it is given (time as a parameter)
    let redis = auth_core::redis_client::SharedRedis::new(
        auth_core::redis_client::RedisSettings::standalone(
            &format!("redis://127.0.0.1:{}/", tv.s.redis.master_ports()[0]),
            Duration::from_secs(1),
        ),
    );
    let running = tokio::spawn(redis.clone().run(std::future::pending()));
    let shared = Some(redis);
    for _ in 0..50 {
        if auth_core::redis_client::conn_of(&shared).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = tv.code().await;
    let hash = auth_core::social::flow::binding_hash(third["device_code"].as_str().unwrap());
    let later = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap() + 121_000;
    let outcome = auth_core::device_grant::store::poll(
        &shared,
        &hash,
        CLIENT,
        later,
        500,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(outcome, auth_core::device_grant::store::Poll::Expired);
    running.abort();
}

#[tokio::test]
async fn guessing_codes_is_refused_long_before_it_could_succeed() {
    let tv = stack();
    tv.s.create_user("guesser@example.com", &[]);
    let real = tv.code().await;
    let mut phone = Phone::new(&tv, "127.0.0.9");
    let html = phone
        .sign_in_and_open(real["user_code"].as_str().unwrap(), "guesser@example.com")
        .await;
    assert!(html.contains("Cinema for Smart TV"), "{html}");
    let mut statuses = vec![];
    for i in 0..12 {
        let guess = format!(
            "BCDF-GH{}{}",
            ["B", "C", "D", "F"][i % 4],
            ["K", "L", "M"][i % 3]
        );
        let (status, _) = phone.get(&format!("/activate?user_code={guess}")).await;
        statuses.push(status.as_u16());
    }
    // 10 failed lookups per network per 15 min (the real code's did not count): unknown
    // codes are 404 until then, refused from then on
    assert_eq!(&statuses[..10], &[404; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 2], "{statuses:?}");
    // even the real code is refused to this network now
    let (status, _) = phone
        .get(&format!(
            "/activate?user_code={}",
            real["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // and to this account from any other network (an IPv6 prefix, a botnet): failures are
    // counted per account as well
    let mut elsewhere = Phone::new(&tv, "127.0.0.99");
    elsewhere.cookies = phone.cookies.clone();
    let (status, _) = elsewhere
        .get(&format!(
            "/activate?user_code={}",
            real["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // asking for codes is limited per network too: 20 per 10 minutes (one was asked above)
    let mut granted = 1;
    let refused = loop {
        let r = tv.code_raw(&[("client_id", CLIENT)]).await;
        if r.status() != StatusCode::OK {
            break r;
        }
        granted += 1;
        assert!(granted <= 20, "more than 20 codes for one network");
    };
    assert_eq!(granted, 20);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // at 10 guesses per 15 minutes against 20^8 codes, with a thousand codes pending at once,
    // one network needs on average 20^8 / 1000 / 10 windows ≈ 2.6 × 10^6 windows (74 years)
}

#[tokio::test]
async fn the_approval_page_refuses_forged_forms_and_is_not_frameable() {
    let tv = stack();
    tv.s.create_user("viewer@example.com", &[]);
    let started = tv.code().await;
    let code = started["user_code"].as_str().unwrap();
    let mut phone = Phone::new(&tv, "127.0.0.10");
    let html = phone.sign_in_and_open(code, "viewer@example.com").await;
    // another site's form: right fields, no matching CSRF token
    let mut forged = Phone::new(&tv, "127.0.0.10");
    forged.cookies = phone
        .cookies
        .iter()
        .filter(|(k, _)| !k.contains("csrf"))
        .cloned()
        .collect();
    let r = forged
        .post(&[
            ("csrf", &hidden_value(&html, "csrf").unwrap()),
            ("action", "approve"),
            ("user_code", code),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut wrong = Phone::new(&tv, "127.0.0.10");
    wrong.cookies = phone.cookies.clone();
    let r = wrong
        .post(&[
            ("csrf", "x".repeat(43).as_str()),
            ("action", "approve"),
            ("user_code", code),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // the code is still pending
    assert_eq!(
        rfc_error(tv.poll(started["device_code"].as_str().unwrap()).await)
            .await
            .1,
        "authorization_pending"
    );
    let r =
        tv.s.http
            .get(tv.s.url(&format!("/activate?user_code={code}")))
            .send()
            .await
            .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let set = r.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    // a signed-out viewer is asked to sign in, not shown the device
    let html = r.text().await.unwrap();
    assert!(
        html.contains("name=\"password\"") && !html.contains("Cinema for Smart TV"),
        "{html}"
    );
}

#[tokio::test]
async fn the_qr_code_and_the_tv_browser_page() {
    let tv = stack();
    let r =
        tv.s.http
            .get(tv.s.url("/auth/device/qr?code=bcdf-ghjk"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && (svg.contains("<path") || svg.contains("<rect")),
        "{}",
        &svg[..200.min(svg.len())]
    );
    for tampered in ["BCDF-GHJ", "<script>", "AEIO-UAEI", ""] {
        let r =
            tv.s.http
                .get(tv.s.url(&format!("/auth/device/qr?code={tampered}")))
                .send()
                .await
                .unwrap();
        assert_eq!(rfc_error(r).await.1, "invalid_request", "{tampered}");
    }

    // the TV browser: a page in Russian with the code, the QR and a reload; no script
    tv.s.create_user("viewer@example.com", &[]);
    let browser = crate::support::client();
    let r = browser
        .get(tv.s.url(&format!("/auth/device?client_id={CLIENT}")))
        .header("user-agent", TV_UA)
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("Path=/auth/device") && set.contains("HttpOnly"),
        "sent only to the TV page: {set}"
    );
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("tv-device-code="), "{cookie}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("lang=\"ru\"") && html.contains("Откройте на телефоне"),
        "{html}"
    );
    assert!(
        html.contains("<svg") && html.contains("http-equiv=\"refresh\""),
        "{html}"
    );
    assert!(!html.contains("<script"), "no JavaScript");
    let at = html.find("class=\"code\">").unwrap() + 13;
    let code = &html[at..at + 9];
    // waiting: the same page again
    let wait = format!("/auth/device/wait?client_id={CLIENT}&user_code={code}");
    let r = browser
        .get(tv.s.url(&wait))
        .header("user-agent", TV_UA)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(code));
    // approved on the phone: the TV browser is signed in and sent to the site
    let mut phone = Phone::new(&tv, "127.0.0.11");
    let page = phone.sign_in_and_open(code, "viewer@example.com").await;
    assert_eq!(phone.decide(&page, "approve").await.0, StatusCode::OK);
    // reloaded at once, before the interval: an approved code is delivered anyway (a TV page
    // reloaded by hand must not slow itself out of its sign-in)
    let r = browser
        .get(tv.s.url(&wait))
        .header("user-agent", TV_UA)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let session = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{}=", social::TOKEN_COOKIE)))
        .expect("the session cookie");
    let token = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let r = browser
        .get(tv.s.url("/req"))
        .header(COOKIE, format!("{}={token}", social::TOKEN_COOKIE))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the TV browser is signed in at the edge"
    );
}

#[tokio::test]
async fn a_phone_signs_in_through_a_provider_and_comes_back_to_approve() {
    let (y, v, m) = social::fake_providers();
    let tv = stack_with(&social::three_providers(&y, &v, &m, ""));
    let started = tv.code().await;
    let code = started["user_code"].as_str().unwrap();
    let mut phone = Phone::new(&tv, "127.0.0.12");
    let (_, html) = phone.get(&format!("/activate?user_code={code}")).await;
    // the page offers each provider, each bringing the viewer back here
    let back = format!("return_to=%2Factivate%3Fuser_code%3D{code}");
    let link = format!("/auth/oauth/yandex/start?{back}");
    assert!(html.contains(&link.replace('&', "&amp;")), "{html}");
    y.set(Persona::person("1000077", "tv-owner@yandex.test"));
    let (authorize, flow) =
        social::start(&tv.s, "yandex", &format!("/activate?user_code={code}")).await;
    let callback = social::consent(&tv.s, &authorize).await;
    let r = social::callback(&tv.s, &callback, Some(&flow)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[LOCATION], format!("/activate?user_code={code}"));
    let token = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{}=", social::TOKEN_COOKIE)))
        .unwrap();
    let token = token
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    phone
        .cookies
        .push((social::TOKEN_COOKIE.to_string(), token));
    let (status, html) = phone.get(&format!("/activate?user_code={code}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Cinema for Smart TV"), "{html}");
    assert_eq!(phone.decide(&html, "approve").await.0, StatusCode::OK);
    let (status, pair) = tv
        .poll_until_decided(started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let me = social::me(&tv.s, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(
        me["email"], "tv-owner@yandex.test",
        "the TV holds the provider account's session"
    );
}

/// The phone's side in headless Chromium on a phone-sized screen: the QR's link opened, signed
/// in with the password form, the device checked and approved; the TV app then gets its tokens.
/// Screenshots go to target/test-artifacts/ for a human to look at.
#[tokio::test]
async fn the_phone_page_in_a_real_browser() {
    let tv = stack();
    tv.s.create_user("viewer@example.com", &[]);
    let started = tv.code().await;
    let code = started["user_code"].as_str().unwrap().to_string();
    let mut phone = crate::support::browser::Browser::start(PHONE_UA, "en-US,en").await;
    phone
        .call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
        )
        .await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    // what the QR code encodes, on this test's edge
    phone
        .navigate(&tv.s.url(&format!("/activate?user_code={code}")))
        .await;
    assert_eq!(
        phone.eval("document.scripts.length").await,
        0,
        "no JavaScript"
    );
    std::fs::write(
        dir.join("device-phone-sign-in.png"),
        phone.screenshot().await,
    )
    .unwrap();
    // the viewer types (the test fills the fields and presses the button)
    phone
        .eval(&format!(
            "document.querySelector('input[name=email]').value = 'viewer@example.com';
             document.querySelector('input[name=password]').value = '{PASSWORD}';
             document.querySelector('form button').click(); true"
        ))
        .await;
    phone.wait_for_load().await;
    let text = phone.eval("document.body.innerText").await;
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("Cinema for Smart TV") && text.contains(&code),
        "{text}"
    );
    assert!(text.contains("Smart TV, Samsung Internet"), "{text}");
    // it fits a phone screen: both buttons visible without zooming out
    assert_eq!(
        phone
            .eval("[...document.querySelectorAll('button')].every(b => b.getBoundingClientRect().right <= innerWidth)")
            .await,
        true
    );
    std::fs::write(
        dir.join("device-phone-confirm.png"),
        phone.screenshot().await,
    )
    .unwrap();
    phone
        .eval("document.querySelector('form button').click(); true")
        .await;
    phone.wait_for_load().await;
    let text = phone.eval("document.body.innerText").await;
    assert!(
        text.as_str().unwrap_or_default().contains("Approved"),
        "{text}"
    );
    std::fs::write(
        dir.join("device-phone-approved.png"),
        phone.screenshot().await,
    )
    .unwrap();
    let (status, pair) = tv
        .poll_until_decided(started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
}

/// A TV polling behind the bot filter's rules: polls above the rule's rate are challenged like
/// any TV traffic; once the TV answered and holds a pass, it keeps polling untouched and signs in.
#[tokio::test]
async fn a_tv_behind_the_bot_filter_keeps_polling_with_its_pass() {
    social::secret_env();
    let movies = Upstream::start("movies");
    let routes = format!(
        "[upstream.movies]\nservers = [\"{}\"]\n\
         [[route]]\nname = \"activate\"\npath = \"/activate\"\nupstream = \"auth\"\n\
         [bot_filter]\nsecret = \"device-grant-test-secret-0123456789abcdef\"\nmin_answer_time = \"300ms\"\n\
         [[bot_filter.rule]]\nname = \"tv-device\"\nuser_agent = \"(?i)smart-tv|tizen\"\npath = [\"/auth/device\"]\n\
         rate = {{ requests = 4, window = \"10s\" }}\naction = \"challenge\"\n",
        movies.addr()
    );
    let auth_extra = format!(
        "token_cookie = \"{}\"\n\
         device = {{ verification_uri = \"http://127.0.0.1/activate\", interval = \"1s\", \
         clients = [{{ id = \"{CLIENT}\", name = \"Cinema for Smart TV\" }}] }}\n",
        social::TOKEN_COOKIE
    );
    let s = AuthStack::start_with(Options {
        auth_extra: &auth_extra,
        routes_extra: &routes,
        ..Options::default()
    });
    let tv = Tv { s, _movies: movies };
    tv.s.create_user("viewer@example.com", &[]);
    let started = tv.code().await;
    let device_code = started["device_code"].as_str().unwrap().to_string();
    let poll = |pass: Option<String>| {
        let mut req =
            tv.s.http
                .post(tv.s.url("/auth/device/token"))
                .header("user-agent", TV_UA)
                .header("accept", "application/json")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&[
                    ("grant_type", GRANT),
                    ("device_code", &device_code),
                    ("client_id", CLIENT),
                ]));
        if let Some(p) = pass {
            req = req.header("x-edge-pass", p);
        }
        async move { req.send().await.unwrap() }
    };
    // above the rule's rate the TV gets the filter's question (JSON: it is an app)
    let mut challenge = None;
    for _ in 0..8 {
        let r = poll(None).await;
        if r.status() == StatusCode::FORBIDDEN {
            assert_eq!(r.headers()["edge-challenge"], "math");
            challenge = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "an RFC answer while under the rate"
        );
    }
    let challenge = challenge.expect("the fast TV was challenged");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = tv
        .s
        .http
        .post(tv.s.url(challenge["answer_url"].as_str().unwrap()))
        .header("user-agent", TV_UA)
        .header("accept", "application/json")
        .json(
            &json!({ "answer": crate::bot_filter::solve(challenge["question"].as_str().unwrap()) }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pass = r.json::<Value>().await.unwrap()["pass"]
        .as_str()
        .unwrap()
        .to_string();
    // with the pass, polls are the device flow's own answers, never the filter's
    for _ in 0..6 {
        let r = poll(Some(pass.clone())).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"] == "authorization_pending" || body["error"] == "slow_down",
            "{body}"
        );
    }
    let mut phone = Phone::new(&tv, "127.0.0.13");
    let html = phone
        .sign_in_and_open(started["user_code"].as_str().unwrap(), "viewer@example.com")
        .await;
    assert_eq!(phone.decide(&html, "approve").await.0, StatusCode::OK);
    let r = poll(Some(pass)).await;
    assert_eq!(r.status(), StatusCode::OK, "signed in through the filter");
}

/// The phone signs in at a real OpenID Provider (oidc-provider, its own login and consent
/// pages) and comes back to the same verification page to approve.
#[tokio::test]
async fn a_phone_signs_in_at_a_real_openid_provider_and_comes_back_to_approve() {
    use crate::support::oidc::ProviderBrowser;
    let (tv, op) = with_openid_provider();
    let started = tv.code().await;
    let code = started["user_code"].as_str().unwrap();
    let back_to = format!("/activate?user_code={code}");
    let mut phone = Phone::new(&tv, "127.0.0.14");
    let (_, html) = phone.get(&back_to).await;
    assert!(html.contains("/auth/oauth/op/start?return_to="), "{html}");
    let (authorization_url, flow) = social::start(&tv.s, "op", &back_to).await;
    let callback = ProviderBrowser::new(&op)
        .sign_in(&authorization_url, "alice")
        .await;
    let r = social::callback(&tv.s, &callback, Some(&flow)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    assert_eq!(r.headers()[LOCATION], back_to.as_str());
    phone.keep(&r);
    let (status, html) = phone.get(&back_to).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Cinema for Smart TV"), "{html}");
    assert_eq!(phone.decide(&html, "approve").await.0, StatusCode::OK);
    let (status, pair) = tv
        .poll_until_decided(started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let me = social::me(&tv.s, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(me["email"], "alice@op.test");
}

/// The phone in headless Chromium signs in at the real OpenID Provider (its own login and
/// consent pages) from the verification page's link, comes back to the same page and
/// approves; the TV app gets the provider account's tokens.
#[tokio::test]
async fn the_phone_page_with_social_sign_in_in_a_real_browser() {
    let (tv, op) = with_openid_provider();
    let op_port = op.port;
    let started = tv.code().await;
    let code = started["user_code"].as_str().unwrap().to_string();
    let mut phone = crate::support::browser::Browser::start(PHONE_UA, "en-US,en").await;
    phone
        .call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
        )
        .await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    phone
        .navigate(&tv.s.url(&format!("/activate?user_code={code}")))
        .await;
    // the provider's link on the page, followed as a tap would
    phone
        .eval("document.querySelector('a[href*=\"/auth/oauth/op/start\"]').click(); true")
        .await;
    phone.wait_for_load().await;
    let at = phone.eval("location.href").await;
    assert!(
        at.as_str()
            .unwrap_or_default()
            .contains(&format!(":{op_port}/")),
        "at the provider: {at}"
    );
    std::fs::write(
        dir.join("device-phone-provider-login.png"),
        phone.screenshot().await,
    )
    .unwrap();
    phone
        .eval(
            "const f = document.querySelector('input[name=login]').form;
             f.querySelector('input[name=login]').value = 'alice';
             f.querySelector('input[name=password]').value = 'any';
             f.submit(); true",
        )
        .await;
    phone.wait_for_load().await;
    // the consent page (if the provider asks), then back to the verification page
    for _ in 0..3 {
        let here = phone.eval("location.href").await;
        if !here
            .as_str()
            .unwrap_or_default()
            .contains(&format!(":{op_port}/"))
        {
            break;
        }
        phone
            .eval("document.querySelector('form').submit(); true")
            .await;
        phone.wait_for_load().await;
    }
    let text = phone.eval("document.body.innerText").await;
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("Cinema for Smart TV") && text.contains(&code),
        "{text}"
    );
    std::fs::write(
        dir.join("device-phone-social-confirm.png"),
        phone.screenshot().await,
    )
    .unwrap();
    phone
        .eval("document.querySelector('form button').click(); true")
        .await;
    phone.wait_for_load().await;
    let text = phone.eval("document.body.innerText").await;
    assert!(
        text.as_str().unwrap_or_default().contains("Approved"),
        "{text}"
    );
    let (status, pair) = tv
        .poll_until_decided(started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let me = social::me(&tv.s, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(me["email"], "alice@op.test");
}

/// The stack with oidc-provider as the provider "op" (the conf names its port, it needs the
/// edge's callback).
fn with_openid_provider() -> (Tv, crate::support::oidc::OpenIdProvider) {
    use crate::support::oidc::{OpenIdProvider, CLIENT_ID};
    let op_port = crate::support::free_port();
    let tv = stack_with(&social::social_section(
        "",
        &format!(
            "[social.provider.op]\nkind = \"generic_oidc\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_env = \"TEST_PROVIDER_SECRET\"\n\
             discovery_url = \"http://127.0.0.1:{op_port}/.well-known/openid-configuration\"\n"
        ),
    ));
    let op = OpenIdProvider::start(
        op_port,
        &[tv.s.url("/auth/oauth/op/callback")],
        crate::support::social::SECRET,
    );
    (tv, op)
}
