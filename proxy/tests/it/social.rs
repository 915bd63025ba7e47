//! Social login through the real edge: the authorization-code + PKCE flow against a real
//! OpenID Provider (oidc-provider, with its login and consent pages), the Yandex, VK and
//! Mail.ru adapters against a local server speaking their documented wire formats, the JSON
//! mode of apps, link and unlink, and every way a callback can be wrong.

use crate::support::auth::{error_of, AuthStack, Options, PASSWORD};
use crate::support::oidc::{OpenIdProvider, ProviderBrowser, CLIENT_ID};
use crate::support::social::{FakeProvider, Kind, Persona, SECRET};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

const FLOW_COOKIE: &str = "oauth-flow";
pub(crate) const TOKEN_COOKIE: &str = "access_token";
const REFRESH_COOKIE: &str = "access_token_refresh";

/// Every provider's client secret comes from this variable (the conf names it).
pub(crate) fn secret_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("TEST_PROVIDER_SECRET", SECRET));
}

fn stack(social: &str) -> AuthStack {
    secret_env();
    AuthStack::start_with(Options {
        auth_extra: &format!("token_cookie = \"{TOKEN_COOKIE}\"\n"),
        social,
        ..Options::default()
    })
}

pub(crate) fn social_section(extra: &str, providers: &str) -> String {
    format!(
        "[social]\npublic_url = \"{{edge}}\"\nreturn_to_allow = [\"https://app.cinema.test\"]\n{extra}\n{providers}"
    )
}

/// The `name=value` of a Set-Cookie named `name`, and its whole header.
fn set_cookie(r: &Response, name: &str) -> Option<(String, String)> {
    r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let first = text.split(';').next()?;
        let (k, value) = first.split_once('=')?;
        (k == name).then(|| (value.to_string(), text.to_string()))
    })
}

fn location(r: &Response) -> String {
    r.headers()[LOCATION].to_str().unwrap().to_string()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn start_url(s: &AuthStack, provider: &str, return_to: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    s.url(&format!("/auth/oauth/{provider}/start?{q}"))
}

/// A browser at the edge: starts a sign-in, returns the provider URL and the flow cookie.
pub(crate) async fn start(s: &AuthStack, provider: &str, return_to: &str) -> (String, String) {
    let r = s
        .http
        .get(start_url(s, provider, return_to))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "start {provider}");
    let (cookie, header) = set_cookie(&r, FLOW_COOKIE).expect("flow cookie");
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    (location(&r), cookie)
}

/// A whole sign-in at fake Yandex, as `persona`, that is expected to fail: its error.
async fn failed_sign_in(s: &AuthStack, y: &FakeProvider, persona: Persona) -> (StatusCode, Value) {
    y.set(persona);
    let (url, cookie) = start(s, "yandex", "/").await;
    let back = consent(s, &url).await;
    error_of(callback(s, &back, Some(&cookie)).await).await
}

/// The fake provider's consent: its redirect back to the edge's callback.
pub(crate) async fn consent(s: &AuthStack, authorization_url: &str) -> String {
    let r = s.http.get(authorization_url).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "authorize: {:?}",
        r.text().await
    );
    location(&r)
}

/// An app's flow (`mode=json`) finished: the provider's consent to `started`, then the
/// callback with the flow secret in `X-OAuth-Flow`.
pub(crate) async fn app_callback(s: &AuthStack, started: &Value) -> Response {
    let back = consent(s, started["authorization_url"].as_str().unwrap()).await;
    s.http
        .get(&back)
        .header("x-oauth-flow", started["flow"].as_str().unwrap())
        .send()
        .await
        .unwrap()
}

pub(crate) async fn callback(s: &AuthStack, url: &str, cookie: Option<&str>) -> Response {
    let mut req = s.http.get(url);
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("{FLOW_COOKIE}={c}"));
    }
    req.send().await.unwrap()
}

/// A whole browser sign-in at a fake provider; the access token from the cookie.
pub(crate) async fn sign_in(s: &AuthStack, provider: &str) -> Result<String, (StatusCode, Value)> {
    let (url, cookie) = start(s, provider, "/films/42").await;
    let back = consent(s, &url).await;
    let r = callback(s, &back, Some(&cookie)).await;
    if r.status() != StatusCode::FOUND {
        return Err(error_of(r).await);
    }
    assert_eq!(location(&r), "/films/42");
    let (token, header) = set_cookie(&r, TOKEN_COOKIE).expect("token cookie");
    assert!(header.contains("HttpOnly"), "{header}");
    Ok(token)
}

pub(crate) async fn me(s: &AuthStack, token: &str) -> Value {
    let r = s
        .http
        .get(s.url("/auth/me"))
        .header(COOKIE, format!("{TOKEN_COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn sql_count(s: &AuthStack, query: &str) -> i64 {
    s.sql(query).trim().parse().unwrap()
}

#[tokio::test]
async fn openid_provider_code_flow_with_pkce_and_its_login_pages() {
    // the edge's conf names the provider's port, the provider needs the edge's callback
    let op_port = crate::support::free_port();
    let s = stack(&social_section(
        "",
        &format!(
            "[social.provider.op]\nkind = \"generic_oidc\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_env = \"TEST_PROVIDER_SECRET\"\n\
             discovery_url = \"http://127.0.0.1:{op_port}/.well-known/openid-configuration\"\n\
             [social.provider.google]\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_env = \"TEST_PROVIDER_SECRET\"\n\
             discovery_url = \"http://127.0.0.1:{op_port}/.well-known/openid-configuration\"\n"
        ),
    ));
    let callbacks = [
        s.url("/auth/oauth/op/callback"),
        s.url("/auth/oauth/google/callback"),
    ];
    let op = OpenIdProvider::start(op_port, &callbacks, SECRET);

    let (auth_url, cookie) = start(&s, "op", "/films/42").await;
    assert!(auth_url.starts_with(&op.url("/auth?")), "{auth_url}");
    assert_eq!(
        query_param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&auth_url, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert_eq!(
        query_param(&auth_url, "redirect_uri"),
        Some(s.url("/auth/oauth/op/callback"))
    );
    assert!(query_param(&auth_url, "scope")
        .unwrap()
        .split(' ')
        .any(|x| x == "openid"));
    let state = query_param(&auth_url, "state").unwrap();
    assert!(query_param(&auth_url, "nonce").is_some_and(|n| n.len() >= 43));
    assert!(query_param(&auth_url, "code_verifier").is_none());
    // the flow waits in Redis under its state, with a TTL, the verifier out of every URL
    let record = s.redis.cli(&["GET", &format!("auth:oauth:flow:{state}")]);
    let record: Value = serde_json::from_str(&record).expect("flow record");
    let verifier = record["pkce_verifier"].as_str().unwrap();
    assert!(!auth_url.contains(verifier));
    let ttl: i64 = s
        .redis
        .cli(&["TTL", &format!("auth:oauth:flow:{state}")])
        .trim()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");

    // the provider's own login and consent pages, as a browser walks them
    let mut browser = ProviderBrowser::new(&op);
    let back = browser.sign_in(&auth_url, "alice").await;
    assert!(
        back.starts_with(&s.url("/auth/oauth/op/callback?")),
        "{back}"
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    assert_eq!(query_param(&back, "iss"), Some(op.url("")));

    let r = callback(&s, &back, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    assert_eq!(location(&r), "/films/42");
    let (token, _) = set_cookie(&r, TOKEN_COOKIE).expect("access token cookie");
    let (cleared, _) = set_cookie(&r, FLOW_COOKIE).expect("flow cookie cleared");
    assert_eq!(cleared, "");
    let user = me(&s, &token).await;
    assert_eq!(user["email"], "alice@op.test");
    assert_eq!(user["has_password"], false);
    // the browser's session continues with the refresh cookie, sent only to /auth/refresh
    let (refresh, header) = set_cookie(&r, REFRESH_COOKIE).expect("refresh cookie");
    for attr in [
        "Path=/auth/refresh",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=2592000",
    ] {
        assert!(header.contains(attr), "{attr} in {header}");
    }
    let rr = s
        .http
        .post(s.url("/auth/refresh"))
        .header(COOKIE, format!("{REFRESH_COOKIE}={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rr.status(), StatusCode::OK);
    let (next_refresh, _) = set_cookie(&rr, REFRESH_COOKIE).expect("rotated refresh cookie");
    assert_ne!(next_refresh, refresh, "the refresh token rotates");
    let (next_token, _) = set_cookie(&rr, TOKEN_COOKIE).expect("new access cookie");
    assert_eq!(me(&s, &next_token).await["id"], user["id"]);
    let pair: Value = rr.json().await.unwrap();
    assert_eq!(pair["refresh_token"], next_refresh.as_str());
    assert_eq!(
        s.sql("SELECT provider, subject FROM social_accounts"),
        "op|alice"
    );
    assert_eq!(s.sql("SELECT method, success FROM login_history"), "op|t");
    // the state was read once: the same callback again is refused
    let (status, body) = error_of(callback(&s, &back, Some(&cookie)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_state");

    // signing in again finds the same account by (provider, subject)
    let (auth_url, cookie) = start(&s, "op", "/").await;
    let back = browser.sign_in(&auth_url, "alice").await;
    let r = callback(&s, &back, Some(&cookie)).await;
    let (token2, _) = set_cookie(&r, TOKEN_COOKIE).expect("token");
    assert_eq!(me(&s, &token2).await["id"], user["id"]);

    // an address the provider does not vouch for is not claimed
    let (auth_url, cookie) = start(&s, "op", "/").await;
    let back = ProviderBrowser::new(&op)
        .sign_in(&auth_url, "unverified-bob")
        .await;
    let r = callback(&s, &back, Some(&cookie)).await;
    let (token3, _) = set_cookie(&r, TOKEN_COOKIE).expect("token");
    let bob = me(&s, &token3).await;
    assert_eq!(bob["email"], Value::Null);
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) FROM credentials WHERE email LIKE 'unverified%'"
        ),
        0
    );
    assert_eq!(
        s.sql("SELECT email FROM social_accounts WHERE subject = 'unverified-bob'"),
        "unverified-bob@op.test"
    );

    // the google kind (discovery pointed here): the same person's verified email already
    // belongs to the "op" account, so it is not merged; another person signs up
    let (auth_url, cookie) = start(&s, "google", "/").await;
    let back = ProviderBrowser::new(&op).sign_in(&auth_url, "alice").await;
    let (status, body) = error_of(callback(&s, &back, Some(&cookie)).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "account_exists");
    let (auth_url, cookie) = start(&s, "google", "/").await;
    let back = ProviderBrowser::new(&op).sign_in(&auth_url, "carol").await;
    let r = callback(&s, &back, Some(&cookie)).await;
    let (token4, _) = set_cookie(&r, TOKEN_COOKIE).expect("token");
    assert_eq!(me(&s, &token4).await["email"], "carol@op.test");
    assert_eq!(
        s.sql("SELECT success, coalesce(failure_reason, '-') FROM login_history WHERE method = 'google' ORDER BY occurred_at"),
        "f|email_belongs_to_another_account\nt|-"
    );
}

/// Fake Yandex, VK and Mail.ru, each with its own client id.
pub(crate) fn fake_providers() -> (FakeProvider, FakeProvider, FakeProvider) {
    (
        FakeProvider::start(Kind::Yandex, "yandex-app"),
        FakeProvider::start(Kind::Vk, "51234567"),
        FakeProvider::start(Kind::MailRu, "mailru-app"),
    )
}

pub(crate) fn three_providers(
    y: &FakeProvider,
    v: &FakeProvider,
    m: &FakeProvider,
    extra: &str,
) -> String {
    social_section(
        extra,
        &format!(
            "{}\n{}\n{}",
            y.conf("yandex"),
            v.conf("vk"),
            m.conf("mailru")
        ),
    )
}

#[tokio::test]
async fn yandex_vk_and_mailru_adapters_speak_each_providers_protocol() {
    let (y, v, m) = fake_providers();
    let s = stack(&three_providers(&y, &v, &m, ""));

    y.set(Persona::person("1000034426", "ivan@yandex.test"));
    let token = sign_in(&s, "yandex").await.expect("yandex sign-in");
    assert_eq!(me(&s, &token).await["email"], "ivan@yandex.test");
    let log = y.log().join("\n");
    assert!(
        log.contains("info authorization=OAuth"),
        "Yandex's OAuth scheme: {log}"
    );
    assert!(
        log.contains("token auth=true"),
        "client in HTTP Basic: {log}"
    );

    v.set(Persona::person("987654321", "petr@vk.test"));
    let token = sign_in(&s, "vk").await.expect("vk sign-in");
    assert_eq!(me(&s, &token).await["email"], "petr@vk.test");
    let log = v.log().join("\n");
    assert!(
        log.contains("\"device_id\""),
        "VK code exchange carries device_id: {log}"
    );
    assert!(
        log.contains("token auth=false"),
        "VK: client in the body: {log}"
    );
    assert!(
        log.contains("user_info application/x-www-form-urlencoded"),
        "{log}"
    );

    m.set(Persona::person("5551234", "olga@mail.test"));
    let token = sign_in(&s, "mailru")
        .await
        .expect("mail.ru sign-in, token answer without token_type");
    assert_eq!(me(&s, &token).await["email"], "olga@mail.test");

    assert_eq!(
        s.sql("SELECT provider || ':' || subject FROM social_accounts ORDER BY provider"),
        "mailru:5551234\nvk:987654321\nyandex:1000034426"
    );
    // each provider's rows sit in its own partition
    assert_eq!(sql_count(&s, "SELECT count(*) FROM social_accounts_vk"), 1);
    assert_eq!(
        s.sql("SELECT method FROM login_history WHERE success ORDER BY occurred_at"),
        "yandex\nvk\nmailru"
    );
    // counted as social sign-ins, not password logins
    let metrics = s.edge.metrics_text().await;
    assert!(
        metrics.contains("edge_auth_logins_total{method=\"social\",outcome=\"ok\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("edge_auth_logins_total{method=\"password\",outcome=\"ok\"} 0"));
}

#[tokio::test]
async fn every_wrong_callback_is_refused_with_a_clear_error() {
    let (y, v, m) = fake_providers();
    let s = stack(&three_providers(&y, &v, &m, "http_timeout = \"1s\"\n"));
    let refused = |r: (StatusCode, Value), status: StatusCode, code: &str| {
        assert_eq!(r.0, status, "{}", r.1);
        assert_eq!(r.1["code"], code, "{}", r.1);
        assert!(r.1["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    };
    let cb = s.url("/auth/oauth/yandex/callback");

    // no state, a forged state
    refused(
        error_of(callback(&s, &format!("{cb}?code=x"), None).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );
    let forged = "A".repeat(43);
    refused(
        error_of(callback(&s, &format!("{cb}?code=x&state={forged}"), Some("c")).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );

    // another browser's cookie, and no cookie: refused, and the flow is spent
    let (url_a, _cookie_a) = start(&s, "yandex", "/").await;
    let (_url_b, cookie_b) = start(&s, "yandex", "/").await;
    let back_a = consent(&s, &url_a).await;
    refused(
        error_of(callback(&s, &back_a, Some(&cookie_b)).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );
    let (url, _) = start(&s, "yandex", "/").await;
    let back = consent(&s, &url).await;
    refused(
        error_of(callback(&s, &back, None).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );

    // expired: the record is gone from Redis
    let (url, cookie) = start(&s, "yandex", "/").await;
    let state = query_param(&url, "state").unwrap();
    let back = consent(&s, &url).await;
    s.redis
        .cli(&["PEXPIRE", &format!("auth:oauth:flow:{state}"), "1"]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    refused(
        error_of(callback(&s, &back, Some(&cookie)).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );

    // a callback for another provider than the flow started with (mix-up)
    let (url, cookie) = start(&s, "yandex", "/").await;
    let back = consent(&s, &url).await;
    let other = back.replace("/auth/oauth/yandex/", "/auth/oauth/mailru/");
    refused(
        error_of(callback(&s, &other, Some(&cookie)).await).await,
        StatusCode::BAD_REQUEST,
        "invalid_state",
    );

    // the user says no at the provider
    let deny = Persona {
        deny: true,
        ..Persona::default()
    };
    refused(
        failed_sign_in(&s, &y, deny).await,
        StatusCode::BAD_REQUEST,
        "access_denied",
    );

    // the provider refuses the code, takes longer than http_timeout, redirects the token
    // request, or sends a userinfo over the size cap: 502, never a hang
    let slow = Persona {
        token_delay: Duration::from_secs(4),
        ..Persona::default()
    };
    let t0 = Instant::now();
    refused(
        failed_sign_in(&s, &y, slow).await,
        StatusCode::BAD_GATEWAY,
        "provider_error",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    for persona in [
        Persona {
            refuse_code: true,
            ..Persona::default()
        },
        Persona {
            token_redirect: true,
            ..Persona::default()
        },
        Persona {
            userinfo_padding: 2 << 20,
            ..Persona::default()
        },
    ] {
        refused(
            failed_sign_in(&s, &y, persona).await,
            StatusCode::BAD_GATEWAY,
            "provider_error",
        );
    }
    assert!(
        s.edge.logged("larger than 1048576 bytes").await,
        "size cap in the log"
    );
    assert!(
        s.edge.logged("a redirect, not followed").await,
        "redirect not followed"
    );

    // an email that belongs to an account is not linked silently
    assert_eq!(
        s.register("ivan@provider.test", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    y.set(Persona::person("777", "Ivan@Provider.test"));
    let (status, body) = sign_in(&s, "yandex").await.expect_err("collision");
    refused(
        (status, body.clone()),
        StatusCode::CONFLICT,
        "account_exists",
    );
    assert!(body["error"].as_str().unwrap().contains("link"), "{body}");
    assert_eq!(sql_count(&s, "SELECT count(*) FROM social_accounts"), 0);
    assert_eq!(sql_count(&s, "SELECT count(*) FROM users"), 1);

    // open redirects are refused before the provider is involved
    for bad in [
        "//evil.test/",
        "https://evil.test/",
        "/\\evil.test",
        "https://app.cinema.test.evil.test/",
    ] {
        let r = s
            .http
            .get(start_url(&s, "yandex", bad))
            .send()
            .await
            .unwrap();
        refused(
            error_of(r).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        );
    }
    let r = s
        .http
        .get(start_url(&s, "yandex", "https://app.cinema.test/tv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    // an unknown provider
    let r = s
        .http
        .get(s.url("/auth/oauth/facebook/start"))
        .send()
        .await
        .unwrap();
    refused(error_of(r).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn apps_use_json_mode_with_the_flow_secret_in_a_header() {
    let (y, v, m) = fake_providers();
    let s = stack(&three_providers(&y, &v, &m, ""));
    let r = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=json"))
        .header("user-agent", "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r, FLOW_COOKIE).is_none(), "apps get no cookie");
    let started: Value = r.json().await.unwrap();
    let flow = started["flow"].as_str().unwrap().to_string();
    assert_eq!(started["expires_in"], 600);
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    // the flow secret in a cookie does not open a JSON-mode flow
    let (status, _) = error_of(callback(&s, &back, Some(&flow)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let r = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=json"))
        .send()
        .await
        .unwrap();
    let started: Value = r.json().await.unwrap();
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    let r = s
        .http
        .get(&back)
        .header("x-oauth-flow", started["flow"].as_str().unwrap())
        .header("user-agent", "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    let me: Value = s
        .get("/auth/me", pair["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ivan@provider.test");
    assert_eq!(
        s.sql("SELECT device FROM login_history WHERE success"),
        "smart_tv"
    );
    let r = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Redis down: a sign-in can be neither started nor finished, and the answer says so at once
    let r = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=json"))
        .send()
        .await
        .unwrap();
    let started: Value = r.json().await.unwrap();
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    s.redis.cli(&["SHUTDOWN", "NOSAVE"]);
    let t0 = Instant::now();
    let r = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=json"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    let r = s
        .http
        .get(&back)
        .header("x-oauth-flow", started["flow"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn link_and_unlink_from_the_personal_account() {
    let (y, v, m) = fake_providers();
    let s = stack(&three_providers(&y, &v, &m, "recent_login = \"3s\"\n"));
    assert_eq!(
        s.register("anna@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let pair = s.login("anna@example.com", PASSWORD).await;
    let at = pair["access_token"].as_str().unwrap().to_string();

    let link = |provider: &'static str, token: String| {
        let s = &s;
        async move {
            s.http
                .post(s.url(&format!("/auth/oauth/{provider}/link?return_to=/account")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    // linking needs a signed-in user
    let r = s
        .http
        .post(s.url("/auth/oauth/vk/link"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    v.set(Persona::person("4242", "anna.vk@vk.test"));
    let r = link("vk", at.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(&r, FLOW_COOKIE).expect("flow cookie");
    let started: Value = r.json().await.unwrap();
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    let r = callback(&s, &back, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(location(&r), "/account");
    let linked: Value = s.get("/auth/social", &at).await.json().await.unwrap();
    assert_eq!(linked[0]["provider"], "vk");
    assert_eq!(linked[0]["email"], "anna.vk@vk.test");

    // VK now signs in to the same account
    let token = sign_in(&s, "vk").await.expect("vk sign-in");
    let anna = me(&s, &token).await;
    assert_eq!(anna["email"], "anna@example.com");

    // the same VK account cannot be linked to a second account
    assert_eq!(
        s.register("boris@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let boris = s.login("boris@example.com", PASSWORD).await;
    let r = link("vk", boris["access_token"].as_str().unwrap().to_string()).await;
    let (cookie, _) = set_cookie(&r, FLOW_COOKIE).unwrap();
    let started: Value = r.json().await.unwrap();
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    let (status, body) = error_of(callback(&s, &back, Some(&cookie)).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // anna has a password: VK can go
    let r = s
        .http
        .delete(s.url("/auth/social/vk"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .http
        .delete(s.url("/auth/social/vk"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // an account made through Yandex alone cannot drop Yandex: nothing would be left
    y.set(Persona::person("31337", "solo@yandex.test"));
    let solo = sign_in(&s, "yandex").await.expect("yandex sign-in");
    let r = s
        .http
        .delete(s.url("/auth/social/yandex"))
        .header(COOKIE, format!("{TOKEN_COOKIE}={solo}"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("last way"),
        "{body}"
    );
    // with Mail.ru linked as well, Yandex can go
    let r = link("mailru", solo.clone()).await;
    let (cookie, _) = set_cookie(&r, FLOW_COOKIE).unwrap();
    let started: Value = r.json().await.unwrap();
    let back = consent(&s, started["authorization_url"].as_str().unwrap()).await;
    assert_eq!(
        callback(&s, &back, Some(&cookie)).await.status(),
        StatusCode::FOUND
    );
    let r = s
        .http
        .delete(s.url("/auth/social/yandex"))
        .bearer_auth(&solo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // a sign-in older than recent_login cannot start a link
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, body) = error_of(link("yandex", at.clone()).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// Every secret a sign-in handles, looked for in the edge's logs at debug level: provider
/// client secrets, authorization codes and provider tokens (Mail.ru's travels in a query
/// string, and a failed request used to log its URL), our access and refresh tokens, cookies,
/// passwords and `Authorization` values.
#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_debug_level() {
    secret_env();
    let (y, _v, m) = fake_providers();
    // a Mail.ru whose userinfo endpoint refuses connections: the request fails with reqwest's
    // error, which carries the URL and so the token unless it is stripped
    let closed = crate::support::free_port();
    let broken = m.conf("mailbroken").replace(
        &m.url("/userinfo"),
        &format!("http://127.0.0.1:{closed}/userinfo"),
    );
    let providers = format!("{}\n{}\n{broken}", y.conf("yandex"), m.conf("mailru"));
    let s = AuthStack::start_with(Options {
        auth_extra: &format!("token_cookie = \"{TOKEN_COOKIE}\"\n"),
        social: &social_section("", &providers),
        log_level: "debug",
        ..Options::default()
    });
    let mut secrets: Vec<String> = vec![SECRET.into(), PASSWORD.into()];

    y.set(Persona::person("1000034426", "ivan@yandex.test"));
    secrets.push(sign_in(&s, "yandex").await.expect("yandex"));
    m.set(Persona::person("5551234", "olga@mail.test"));
    secrets.push(sign_in(&s, "mailru").await.expect("mailru"));
    let (url, cookie) = start(&s, "mailbroken", "/").await;
    secrets.push(cookie.clone());
    let back = consent(&s, &url).await;
    secrets.push(query_param(&back, "code").expect("code"));
    let (status, _) = error_of(callback(&s, &back, Some(&cookie)).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    // password sign-in, refresh, a wrong password, a password change
    s.create_user("pat@example.com", &[]);
    let pair = s.login("pat@example.com", PASSWORD).await;
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    let r = s.refresh(&refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next: Value = r.json().await.unwrap();
    secrets.push(refresh);
    secrets.push(next["refresh_token"].as_str().unwrap().to_string());
    let access = next["access_token"].as_str().unwrap().to_string();
    let wrong = "not-the-password-42";
    secrets.push(wrong.into());
    let r = s.login_raw("pat@example.com", wrong, "t/1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let new_password = "another horse battery";
    secrets.push(new_password.into());
    let r = s
        .http
        .patch(s.url("/auth/me"))
        .bearer_auth(&access)
        .json(&serde_json::json!({"current_password": PASSWORD, "password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    secrets.push(access);

    // the logs hold debug lines (the filter really was at debug) and none of the secrets
    assert!(
        s.edge.logged("\"level\":\"DEBUG\"").await,
        "no debug line was logged"
    );
    let logs = s.edge.logs();
    for secret in &secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret in the logs: {secret}\nin: {line}");
        }
    }
    // the fake providers' tokens and codes, whichever were issued
    let issued = regex::Regex::new(r"(at|code)-[0-9a-f]{32}|Bearer [A-Za-z0-9]").unwrap();
    if let Some(found) = issued.find(&logs) {
        panic!(
            "a provider token, code or bearer value in the logs: {}",
            found.as_str()
        );
    }
}
