//! The account's life by mail, through a real SMTP relay (aiosmtpd): sign-up confirmation,
//! password reset, email change, the sessions list; and mail that survives a relay that is
//! down or misbehaving, sent once when two replicas share the outbox.

use crate::support::auth::{claims, error_of, AuthStack, Options, PASSWORD};
use crate::support::smtp::{Mail, SmtpSink};
use crate::support::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MAIL_WAIT: Duration = Duration::from_secs(20);

/// `/library` needs a confirmed email, `/films` any valid token; `mail_extra` adds `[mail]`
/// keys, `extra` more conf.
fn stack(sink: &SmtpSink, films: &Upstream, mail_extra: &str, extra: &str) -> AuthStack {
    let routes = format!(
        "{}[[route]]\nname = \"library\"\npath = \"/library\"\nupstream = \"films\"\n\
         auth = \"required\"\nrequire_verified_email = true\n\
         [[route]]\nname = \"films\"\npath = \"/films\"\nupstream = \"films\"\nauth = \"required\"\n\
         [upstream.films]\nservers = [\"{}\"]\n{extra}",
        sink.conf(mail_extra),
        films.addr()
    );
    AuthStack::start_with(Options {
        routes_extra: &routes,
        ..Default::default()
    })
}

/// Forward auth for a service not behind the edge that also needs a confirmed email.
const MEMBERS_ONLY: &str = "[forward_auth]\nallow = [\"127.0.0.1/32\"]\n\
    [forward_auth.policy.members]\nauth = \"required\"\nrequire_verified_email = true\n";

/// A relay that accepts everything, the films upstream, and the stack in front of them.
fn started() -> (SmtpSink, Upstream, AuthStack) {
    let sink = SmtpSink::start();
    let films = Upstream::start("films");
    let s = stack(&sink, &films, "", MEMBERS_ONLY);
    (sink, films, s)
}

async fn register_in(s: &AuthStack, email: &str, lang: &str) {
    let r = s
        .http
        .post(s.url("/auth/register"))
        .header("accept-language", lang)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email_verified"], false, "{body}");
}

async fn one_mail(sink: &SmtpSink, to: &str) -> Mail {
    let mails = sink.wait_for(to, 1, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1, "one mail to {to}: {mails:?}");
    mails[0].clone()
}

/// The forward-auth decision of the `members` policy for a request with `token`.
async fn members_decision(s: &AuthStack, token: &str) -> reqwest::Response {
    s.http
        .get(s.url("/_edge/auth/members"))
        .bearer_auth(token)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/club/news")
        .send()
        .await
        .unwrap()
}

/// Asks for a reset of `email`; once `mails` mails to it have arrived, the token of the
/// newest reset mail.
async fn reset_link(s: &AuthStack, sink: &SmtpSink, email: &str, mails: usize) -> String {
    let r = s
        .post("/auth/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    sink.wait_for(email, mails, MAIL_WAIT)
        .await
        .into_iter()
        .rev()
        .find(|m| m.text.contains("/account/reset?token="))
        .expect("a reset mail")
        .token()
}

/// `/auth/me` as seen right after signing in with `password`.
async fn me_after_login(s: &AuthStack, email: &str, password: &str) -> Value {
    let fresh = s.login(email, password).await;
    let r = s
        .get("/auth/me", fresh["access_token"].as_str().unwrap())
        .await;
    r.json().await.unwrap()
}

/// The error body without its request id: two answers compared for sameness.
fn sans_id(mut v: Value) -> Value {
    v.as_object_mut().map(|o| o.remove("request_id"));
    v
}

async fn bearer(
    s: &AuthStack,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::Response {
    s.http
        .request(method, s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_up_mails_a_confirmation_in_the_accounts_language_and_its_link_works_once() {
    let (sink, films, s) = started();
    register_in(&s, "anna@example.com", "ru-RU,ru;q=0.9,en;q=0.5").await;
    register_in(&s, "ben@example.com", "en-GB,en;q=0.9").await;
    // mailbox syntax is not an address: stored as one string, it would be delivered to another
    for tricky in [
        "1<anna@example.com>",
        "ceo<evil@example.com",
        "x@example.com>",
        "\"q\"@example.com",
    ] {
        let r = s
            .post(
                "/auth/register",
                json!({ "email": tricky, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{tricky}");
    }
    // a full-width look-alike is the same address: taken, not a second account
    let r = s
        .post(
            "/auth/register",
            json!({ "email": "ａｎｎａ@ｅｘａｍｐｌｅ.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let ru = one_mail(&sink, "anna@example.com").await;
    assert!(ru.subject.contains("Подтвердите"), "{}", ru.subject);
    assert!(
        ru.text.contains("http://127.0.0.1/account/confirm?token="),
        "{}",
        ru.text
    );
    assert!(
        ru.html
            .contains("href=\"http://127.0.0.1/account/confirm?token="),
        "{}",
        ru.html
    );
    assert!(ru.html.contains("lang=\"ru\""));
    let en = one_mail(&sink, "ben@example.com").await;
    assert_eq!(en.subject, "Confirm your email for Cinema");
    assert_ne!(ru.token(), en.token());
    // the token is not stored in clear, and the sent mail's bodies are wiped
    let token = ru.token();
    assert_eq!(token.len(), 43);
    assert_eq!(s.sql(&format!("SELECT count(*) FROM account_tokens WHERE encode(token_hash, 'escape') LIKE '%{token}%'")), "0");
    assert_eq!(
        s.sql("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND body_text IS NULL"),
        "2"
    );

    // unconfirmed: the claim says so, and the edge holds the route that needs it
    let pair = s.login("anna@example.com", PASSWORD).await;
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(claims(access).1["email_verified"], false);
    let (status, e) = error_of(s.get("/library/top", access).await).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_not_verified"))
    );
    assert_eq!(s.get("/films/top", access).await.status(), StatusCode::OK);
    // the same rule for a service behind another proxy (forward auth)
    let (status, e) = error_of(members_decision(&s, access).await).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_not_verified"))
    );
    assert_eq!(
        films.hits(),
        1,
        "the refused request never reached the upstream"
    );

    // malformed, unknown and near-miss tokens: one answer, the link's own token is untouched
    let unknown = sans_id(
        error_of(
            s.post("/auth/email/confirm", json!({ "token": "A".repeat(43) }))
                .await,
        )
        .await
        .1,
    );
    assert_eq!(unknown["code"], "invalid_link");
    for bad in [
        "",
        "not a token",
        "../../etc",
        &token[..42],
        &format!("{token}x"),
        &en.token().to_lowercase(),
    ] {
        let (status, e) =
            error_of(s.post("/auth/email/confirm", json!({ "token": bad })).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(sans_id(e), unknown, "{bad:?}");
    }
    let r = s
        .post("/auth/email/confirm", json!({ "token": token }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().await.unwrap();
    assert_eq!(
        done,
        json!({ "email": "anna@example.com", "email_verified": true })
    );
    // spent: the answer of a token that never existed
    let (status, again) = error_of(
        s.post("/auth/email/confirm", json!({ "token": token }))
            .await,
    )
    .await;
    assert_eq!(
        (status, sans_id(again)),
        (StatusCode::BAD_REQUEST, unknown.clone())
    );
    // a reset link cannot confirm (another purpose), and a confirmation cannot reset
    let (status, e) = error_of(
        s.post(
            "/auth/password/reset",
            json!({ "token": en.token(), "new_password": "another fine password" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, sans_id(e)), (StatusCode::BAD_REQUEST, unknown));

    let me: Value = s.get("/auth/me", access).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    // the claim follows from the next refresh, and the edge lets the route through
    let next: Value = s
        .refresh(pair["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let access = next["access_token"].as_str().unwrap();
    assert_eq!(claims(access).1["email_verified"], true);
    assert_eq!(s.get("/library/top", access).await.status(), StatusCode::OK);
    let r = members_decision(&s, access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-user-id"), "{:?}", r.headers());
}

#[tokio::test]
async fn a_resend_replaces_the_link_and_is_limited() {
    let (sink, _films, s) = started();
    register_in(&s, "carl@example.com", "en").await;
    let first = one_mail(&sink, "carl@example.com").await;
    let access = s.login("carl@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = bearer(&s, reqwest::Method::POST, "/auth/email/resend", &access).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mails = sink.wait_for("carl@example.com", 2, MAIL_WAIT).await;
    assert_eq!(mails.len(), 2);
    let second = mails[1].token();
    assert_ne!(first.token(), second);
    // only the newest link works
    assert_eq!(
        s.post("/auth/email/confirm", json!({ "token": first.token() }))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    for _ in 0..2 {
        let r = bearer(&s, reqwest::Method::POST, "/auth/email/resend", &access).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = bearer(&s, reqwest::Method::POST, "/auth/email/resend", &access).await;
    assert!(r.headers().contains_key("retry-after"));
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let newest = sink.wait_for("carl@example.com", 4, MAIL_WAIT).await;
    assert_eq!(newest.len(), 4);
    let r = s
        .post("/auth/email/confirm", json!({ "token": newest[3].token() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // confirmed: nothing to resend
    let (status, e) =
        error_of(bearer(&s, reqwest::Method::POST, "/auth/email/resend", &access).await).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    // no token, no resend
    let r = s
        .http
        .post(s.url("/auth/email/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mail_queued_while_the_relay_is_down_is_delivered_later_and_once_by_two_replicas() {
    let mut sink = SmtpSink::down();
    let films = Upstream::start("films");
    let s = stack(&sink, &films, "", "");
    let replica = s.replica();
    let started = Instant::now();
    for i in 0..12 {
        let edge_url = if i % 2 == 0 {
            s.url("/auth/register")
        } else {
            replica.url("/auth/register")
        };
        let r = s
            .http
            .post(edge_url)
            .json(&json!({ "email": format!("viewer{i}@example.com"), "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "sign-up {i} succeeds with the relay down"
        );
    }
    println!("12 sign-ups with the relay down: {:?}", started.elapsed());
    // both replicas tried and said why, once per attempt
    let tried = crate::support::eventually(Duration::from_secs(15), || {
        s.edge.logs().contains("mail not delivered; will retry")
            && replica.logs().contains("mail not delivered; will retry")
    })
    .await;
    assert!(tried, "both replicas logged the failed attempts");
    assert!(
        s.edge.logs().contains("Connection refused")
            || s.edge.logs().contains("connection refused"),
        "the log names the cause"
    );
    assert_eq!(
        s.sql("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL"),
        "12"
    );
    // the relay is back: every mail arrives, each once, though both replicas were retrying
    sink.run("ok");
    let all =
        crate::support::eventually(Duration::from_secs(30), || sink.mails().len() >= 12).await;
    assert!(all, "every queued mail delivered: {}", sink.mails().len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // one Message-ID per outbox row, in the sender's domain
    let mut ids: Vec<String> = sink.mails().into_iter().map(|m| m.message_id).collect();
    assert!(
        ids.iter()
            .all(|id| id.starts_with('<') && id.ends_with("@cinema.test>")),
        "{ids:?}"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    let mut to: Vec<String> = sink.mails().into_iter().map(|m| m.to).collect();
    assert_eq!(to.len(), 12, "no mail twice: {to:?}");
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 12);
    assert_eq!(s.sql("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND body_text IS NULL AND body_html IS NULL"), "12");
    let senders = format!("{}{}", s.edge.logs(), replica.logs());
    println!(
        "sent by edge: {}, by replica: {}",
        s.edge.logs().matches("mail sent").count(),
        replica.logs().matches("mail sent").count()
    );
    assert_eq!(senders.matches("mail sent").count(), 12);
}

#[tokio::test]
async fn a_misbehaving_relay_keeps_the_mail_queued_and_the_request_succeeds() {
    let mut sink = SmtpSink::start_mode("tempfail");
    let films = Upstream::start("films");
    let s = stack(&sink, &films, "max_attempts = 3", "");
    for (i, (mode, cause)) in [
        ("tempfail", "451"),
        ("drop", "incomplete response"),
        ("hang", "timed out"),
        ("permfail", "554"),
    ]
    .into_iter()
    .enumerate()
    {
        sink.run(mode);
        let email = format!("{mode}@example.com");
        let started = Instant::now();
        register_in(&s, &email, "en").await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{mode}: the sign-up does not wait for the relay"
        );
        let row = format!("SELECT coalesce(last_error, '') FROM mail_outbox WHERE recipient = '{email}' AND attempts >= 1 AND sent_at IS NULL");
        let failed =
            crate::support::eventually(Duration::from_secs(20), || !s.sql(&row).is_empty()).await;
        assert!(failed, "{mode}: one failed attempt recorded");
        let error = s.sql(&row).to_lowercase();
        assert!(error.contains(cause), "{mode}: the cause is named: {error}");
        assert!(
            s.edge.logs().to_lowercase().contains(cause),
            "{mode}: one log line names it"
        );
        // back to normal before the third attempt: delivered
        sink.run("ok");
        assert_eq!(
            sink.wait_for(&email, 1, MAIL_WAIT).await.len(),
            1,
            "{mode}: delivered after the relay recovered"
        );
        assert_eq!(sink.mails().len(), i + 1);
    }
    // a relay that refuses for good: max_attempts, then failed (kept for the operator)
    sink.run("permfail");
    register_in(&s, "gone@example.com", "en").await;
    let given_up = crate::support::eventually(Duration::from_secs(30), || {
        s.sql("SELECT count(*) FROM mail_outbox WHERE recipient = 'gone@example.com' AND failed_at IS NOT NULL AND attempts = 3 AND body_text IS NULL") == "1"
    })
    .await;
    assert!(
        given_up,
        "given up after max_attempts: {}",
        s.sql("SELECT attempts, last_error FROM mail_outbox WHERE recipient = 'gone@example.com'")
    );
    assert!(s.edge.logs().contains("mail failed for good"));
    // the operator sees it: 4 delivered, one given up, a failed attempt per misbehaviour at least
    assert_eq!(s.edge.metric("edge_mail_sent_total").await, 4);
    assert_eq!(s.edge.metric("edge_mail_failed_total").await, 1);
    assert!(s.edge.metric("edge_mail_retries_total").await >= 4 + 2);
}

/// Polls `/films/x` with `access` until the edge refuses it (its deny-list answers are reused
/// for up to 5 s); the refusal's code, None if it never came within 7 s.
async fn refused_within(s: &AuthStack, access: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        let r = s.get("/films/x", access).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            return error_of(r).await.1["code"].as_str().map(String::from);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// `n` sessions of `email`, signed in with different agents; their token pairs.
async fn sign_in(s: &AuthStack, email: &str, password: &str, agents: &[&str]) -> Vec<Value> {
    let mut pairs = Vec::new();
    for agent in agents {
        let r = s.login_raw(email, password, agent).await;
        assert_eq!(r.status(), StatusCode::OK, "login {email} as {agent}");
        pairs.push(r.json().await.unwrap());
    }
    pairs
}

const TV: &str = "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 SamsungBrowser/4.0 TV Safari/537.36";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
    let (sink, _films, s) = started();
    register_in(&s, "dora@example.com", "ru").await;
    let pairs = sign_in(&s, "dora@example.com", PASSWORD, &[TV, CHROME]).await;
    for p in &pairs {
        assert_eq!(
            s.get("/films/x", p["access_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::OK
        );
    }
    let accepted = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json::<Value>().await.unwrap()
    };
    // an intruder with the old password asked to move the account to their address
    let intruder = s
        .http
        .patch(s.url("/auth/me"))
        .bearer_auth(pairs[1]["access_token"].as_str().unwrap())
        .json(&json!({ "current_password": PASSWORD, "email": "intruder@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(intruder.status(), StatusCode::ACCEPTED);
    let intruder_link = one_mail(&sink, "intruder@example.com").await.token();
    let known = accepted(
        s.post(
            "/auth/password/forgot",
            json!({ "email": "Dora@Example.com " }),
        )
        .await,
    )
    .await;
    let unknown = accepted(
        s.post(
            "/auth/password/forgot",
            json!({ "email": "nobody@example.com" }),
        )
        .await,
    )
    .await;
    assert_eq!(known, unknown);
    let mail = sink
        .wait_for("dora@example.com", 3, MAIL_WAIT)
        .await
        .pop()
        .unwrap();
    assert!(mail.subject.contains("Сброс пароля"), "{}", mail.subject);
    assert!(mail.text.contains("http://127.0.0.1/account/reset?token="));
    let token = mail.token();
    // a weak password is refused and does not spend the link
    let (status, e) = error_of(
        s.post(
            "/auth/password/reset",
            json!({ "token": token, "new_password": "short" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
    );
    let new_password = "a brand new passphrase";
    let r = s
        .post(
            "/auth/password/reset",
            json!({ "token": token, "new_password": new_password }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "sessions_ended": 2 })
    );
    // the reset voided every link mailed before it: the intruder's change cannot complete
    let (status, e) = error_of(
        s.post("/auth/email/confirm", json!({ "token": intruder_link }))
            .await,
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_link"))
    );
    // every session is over: refresh tokens dead at once, access tokens refused at the edge
    // once its deny-list cache (5 s) lets go of the earlier "live" answer
    for p in &pairs {
        let refresh = p["refresh_token"].as_str().unwrap();
        assert_eq!(s.refresh(refresh).await.status(), StatusCode::UNAUTHORIZED);
        let access = p["access_token"].as_str().unwrap();
        assert_eq!(
            refused_within(&s, access).await.as_deref(),
            Some("invalid_token")
        );
    }
    // the old password is gone, the new one works; the link proved the address
    assert_eq!(
        s.login_raw("dora@example.com", PASSWORD, "t")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh = s.login("dora@example.com", new_password).await;
    let access = fresh["access_token"].as_str().unwrap();
    assert_eq!(claims(access).1["email_verified"], true);
    // spent: the answer of an unknown token
    let (status, spent) = error_of(
        s.post(
            "/auth/password/reset",
            json!({ "token": token, "new_password": new_password }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, spent["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_link"))
    );
    // login history records the reset
    let history: Value = s
        .get("/auth/me/history", access)
        .await
        .json()
        .await
        .unwrap();
    let methods: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["method"].as_str())
        .collect();
    assert!(methods.contains(&"password_reset"), "{methods:?}");
    // an expired link: the same answer as a spent one
    let late = reset_link(&s, &sink, "dora@example.com", 4).await;
    s.sql(
        "UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE spent_at IS NULL",
    );
    let (status, expired) = error_of(
        s.post(
            "/auth/password/reset",
            json!({ "token": late, "new_password": "yet another passphrase" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, sans_id(expired)),
        (StatusCode::BAD_REQUEST, sans_id(spent))
    );
    assert_eq!(
        s.login_raw("dora@example.com", new_password, "t")
            .await
            .status(),
        StatusCode::OK
    );
}

/// An intruder holding the old password and a session races the owner's reset: a login and an
/// email change sent at the same moment as the reset, over several accounts with the start
/// shifted by a few milliseconds. Whatever order they land in, nothing the intruder started
/// outlives the reset: a login that got through has a dead refresh token, an email change
/// that got through has a dead link, and the account keeps its address.
#[tokio::test]
async fn a_login_or_email_change_racing_a_reset_does_not_outlive_it() {
    let (sink, _films, s) = started();
    let mut outcomes = Vec::new();
    for i in 0..8u64 {
        let owner = format!("race{i}@example.com");
        let moved = format!("moved{i}@example.com");
        register_in(&s, &owner, "en").await;
        let intruder = s.login(&owner, PASSWORD).await;
        let intruder_access = intruder["access_token"].as_str().unwrap();
        let token = reset_link(&s, &sink, &owner, 2).await;
        let new_password = "the owner's new passphrase";
        let reset = async {
            tokio::time::sleep(Duration::from_millis(3 * (i % 4))).await;
            s.post(
                "/auth/password/reset",
                json!({ "token": token, "new_password": new_password }),
            )
            .await
            .status()
        };
        let login = s.login_raw(&owner, PASSWORD, CHROME);
        let change = s
            .http
            .patch(s.url("/auth/me"))
            .bearer_auth(intruder_access)
            .json(&json!({ "current_password": PASSWORD, "email": moved }))
            .send();
        let (reset, login, change) = tokio::join!(reset, login, change);
        assert_eq!(reset, StatusCode::OK, "the reset itself");
        let change = change.unwrap().status();
        outcomes.push((login.status(), change));
        if login.status() == StatusCode::OK {
            let pair: Value = login.json().await.unwrap();
            let r = s.refresh(pair["refresh_token"].as_str().unwrap()).await;
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "account {i}: a login with the old password outlived the reset"
            );
        } else {
            assert_eq!(login.status(), StatusCode::UNAUTHORIZED, "account {i}");
        }
        if change == StatusCode::ACCEPTED {
            let link = one_mail(&sink, &moved).await.token();
            let r = s
                .post("/auth/email/confirm", json!({ "token": link }))
                .await;
            assert_eq!(
                r.status(),
                StatusCode::BAD_REQUEST,
                "account {i}: an email change asked with the old password outlived the reset"
            );
        } else {
            assert_eq!(change, StatusCode::UNAUTHORIZED, "account {i}");
        }
        let me = me_after_login(&s, &owner, new_password).await;
        assert_eq!(me["email"], owner.as_str());
    }
    println!("(login, email change) against a reset: {outcomes:?}");
}

#[tokio::test]
async fn forgot_answers_alike_for_known_and_unknown_addresses() {
    let sink = SmtpSink::start();
    let films = Upstream::start("films");
    let trust = "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheader = \"x-forwarded-for\"\n";
    let s = stack(&sink, &films, "", trust);
    register_in(&s, "erin@example.com", "en").await;
    let erins_confirmation = one_mail(&sink, "erin@example.com").await.token();
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut bodies = Vec::new();
    // 50 of each, interleaved, each pair from its own network (the per-network limit is not
    // what is measured here)
    for i in 0..50u32 {
        for (email, times) in [
            ("erin@example.com", &mut known),
            (&*format!("ghost{i}@example.com"), &mut unknown),
        ] {
            let started = Instant::now();
            let r = s
                .http
                .post(s.url("/auth/password/forgot"))
                .header("x-forwarded-for", format!("10.{}.{}.1", i / 200, i % 200))
                .json(&json!({ "email": email }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            times.push(started.elapsed());
            assert_eq!(status, StatusCode::ACCEPTED, "{email}");
            bodies.push(body);
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one body for all");
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let diff = k.abs_diff(u);
    println!("forgot: median known {k:?}, unknown {u:?}, difference {diff:?}");
    assert!(
        diff < Duration::from_millis(2).max(u / 4),
        "known {k:?} vs unknown {u:?}: the answer's timing tells them apart"
    );
    // mail went only to the real address, and at most 10 an hour
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = sink.mails();
    assert!(
        mails.iter().all(|m| m.to == "erin@example.com"),
        "no mail to unknown addresses"
    );
    assert_eq!(mails.len(), 1 + 10, "sign-up mail and 10 reset mails");
    // the address's hour is used up by requests from elsewhere; its owner, asking from a
    // network they signed in from, still gets the mail, and a stranger's new network not
    let erin_from = |ip: &'static str| {
        s.http
            .post(s.url("/auth/password/forgot"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": "erin@example.com" }))
            .send()
    };
    let r = s
        .http
        .post(s.url("/auth/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({ "email": "erin@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // unconfirmed, a signed-in network proves nothing (a squatter signs in from theirs)
    assert_eq!(
        erin_from("198.51.100.8").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    // the request is handled after its answer: let it finish before the address changes
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.mails().len(),
        1 + 10,
        "no mail for the unconfirmed address"
    );
    let r = s
        .post(
            "/auth/email/confirm",
            json!({ "token": erins_confirmation }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        erin_from("198.51.100.9").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        erin_from("198.51.100.8").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.wait_for("erin@example.com", 12, MAIL_WAIT).await.len(),
        12,
        "one more mail: the confirmed owner's from a known network only"
    );
    // a stranger asking again and again for someone's address uses up their own network's
    // share (3 an hour), not the owner's: the owner's own request still gets its mail
    register_in(&s, "fred@example.com", "en").await;
    one_mail(&sink, "fred@example.com").await;
    let forgot_from = |ip: &'static str| {
        s.http
            .post(s.url("/auth/password/forgot"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": "fred@example.com" }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            forgot_from("203.0.113.5").await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        sink.wait_for("fred@example.com", 4, MAIL_WAIT).await.len(),
        4
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.wait_for("fred@example.com", 4, MAIL_WAIT).await.len(),
        4,
        "3 reset mails for the stranger's 5 requests"
    );
    assert_eq!(
        forgot_from("198.51.100.7").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        sink.wait_for("fred@example.com", 5, MAIL_WAIT).await.len(),
        5,
        "the owner's request was mailed"
    );
    // the per-network limit: 20 an hour, then 429 whatever the address
    for _ in 0..20 {
        let r = s
            .http
            .post(s.url("/auth/password/forgot"))
            .header("x-forwarded-for", "192.0.2.7")
            .json(&json!({ "email": "x@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = s
        .http
        .post(s.url("/auth/password/forgot"))
        .header("x-forwarded-for", "192.0.2.7")
        .json(&json!({ "email": "erin@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_email_change_mails_both_addresses_and_applies_when_confirmed() {
    let (sink, _films, s) = started();
    register_in(&s, "fay@example.com", "en").await;
    register_in(&s, "taken@example.com", "en").await;
    let access = s.login("fay@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = |email: &str| {
        s.http
            .patch(s.url("/auth/me"))
            .bearer_auth(&access)
            .json(&json!({ "current_password": PASSWORD, "email": email }))
            .send()
    };
    let (status, e) = error_of(patch("taken@example.com").await.unwrap()).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let r = patch("fay.new@example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        me["email"], "fay@example.com",
        "nothing changes before the confirmation"
    );
    let confirm = one_mail(&sink, "fay.new@example.com").await;
    assert_eq!(confirm.subject, "Confirm your new email for Cinema");
    let notices = sink.wait_for("fay@example.com", 2, MAIL_WAIT).await;
    let notice = notices
        .iter()
        .find(|m| m.subject.contains("being changed"))
        .expect("a notice to the old address");
    assert!(
        notice.text.contains("fay.new@example.com"),
        "{}",
        notice.text
    );
    assert!(
        !notice.text.contains("token="),
        "the notice carries no link to act on"
    );
    assert_eq!(
        s.login_raw("fay@example.com", PASSWORD, "t").await.status(),
        StatusCode::OK
    );
    let r = s
        .post("/auth/email/confirm", json!({ "token": confirm.token() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "email": "fay.new@example.com", "email_verified": true })
    );
    assert_eq!(
        s.login_raw("fay@example.com", PASSWORD, "t").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let me = me_after_login(&s, "fay.new@example.com", PASSWORD).await;
    assert_eq!(
        (me["email"].as_str(), me["email_verified"].as_bool()),
        (Some("fay.new@example.com"), Some(true))
    );
    // the old sign-up link (to the old address) confirms nothing now
    let signup = notices
        .iter()
        .find(|m| m.subject.starts_with("Confirm your email"))
        .expect("sign-up mail");
    assert_eq!(
        s.post("/auth/email/confirm", json!({ "token": signup.token() }))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    // 3 changes an hour per account (the refused one to a taken address counted): each
    // sends two mails, so no account can mail any address without end
    assert_eq!(
        patch("fay.third@example.com").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let r = patch("fay.fourth@example.com").await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let (status, e) = error_of(r).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    assert!(sink
        .mails()
        .iter()
        .all(|m| m.to != "fay.fourth@example.com"));
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_ends_one() {
    let (_sink, _films, s) = started();
    register_in(&s, "gus@example.com", "en").await;
    register_in(&s, "hal@example.com", "en").await;
    let pairs = sign_in(&s, "gus@example.com", PASSWORD, &[TV, CHROME]).await;
    let other = sign_in(&s, "hal@example.com", PASSWORD, &[CHROME]).await;
    let (tv, laptop) = (
        pairs[0]["access_token"].as_str().unwrap(),
        pairs[1]["access_token"].as_str().unwrap(),
    );
    let list: Value = s.get("/auth/sessions", tv).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let by_device = |d: &str| {
        items
            .iter()
            .find(|i| i["device"] == d)
            .unwrap_or_else(|| panic!("{d} in {list}"))
    };
    let (tv_row, web_row) = (by_device("smart_tv"), by_device("web"));
    assert_eq!(tv_row["current"], true);
    assert_eq!(web_row["current"], false);
    assert_eq!(web_row["browser"], "Chrome");
    let network = web_row["network"].as_str().unwrap_or_default();
    assert!(
        network.starts_with("127.0.0.") && network.contains('/'),
        "{web_row}"
    );
    assert!(web_row["created_at"].is_string() && web_row["last_used_at"].is_string());
    let web_id = web_row["id"].as_str().unwrap();
    assert_eq!(
        web_row["last_used_at"], web_row["created_at"],
        "not refreshed yet"
    );
    // a refresh of the TV's session moves its last use, not its creation
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = s.refresh(pairs[0]["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after: Value = s.get("/auth/sessions", tv).await.json().await.unwrap();
    let tv_after = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["device"] == "smart_tv")
        .unwrap();
    assert_eq!(tv_after["created_at"], tv_row["created_at"]);
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let (before, later) = (at(&tv_row["last_used_at"]), at(&tv_after["last_used_at"]));
    assert!(later > before, "{before} -> {later}");
    // someone else's session and garbage: the answer of a session that does not exist
    let hal_session = claims(other[0]["access_token"].as_str().unwrap()).1["sid"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [
        hal_session.as_str(),
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let (status, e) = error_of(
            bearer(
                &s,
                reqwest::Method::DELETE,
                &format!("/auth/sessions/{id}"),
                tv,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{id}"
        );
    }
    assert_eq!(
        s.get("/films/x", other[0]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // the TV ends the laptop's session: its access token is refused at the edge at once
    assert_eq!(s.get("/films/x", laptop).await.status(), StatusCode::OK);
    let r = bearer(
        &s,
        reqwest::Method::DELETE,
        &format!("/auth/sessions/{web_id}"),
        tv,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // refused at the edge within the deny list's 5 s cache
    assert_eq!(
        refused_within(&s, laptop).await.as_deref(),
        Some("invalid_token")
    );
    assert_eq!(
        s.refresh(pairs[1]["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bearer(
            &s,
            reqwest::Method::DELETE,
            &format!("/auth/sessions/{web_id}"),
            tv
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = s.get("/auth/sessions", tv).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.get("/films/x", tv).await.status(), StatusCode::OK);
}

/// An account made by a provider has no password; the reset mail sets its first one, and the
/// provider's word made its email confirmed from the start.
#[tokio::test]
async fn a_social_only_account_sets_its_first_password_through_the_reset_mail() {
    use crate::social::{app_callback, fake_providers, three_providers, TOKEN_COOKIE};
    let sink = SmtpSink::start();
    let (y, v, m) = fake_providers();
    crate::social::secret_env();
    let providers = three_providers(&y, &v, &m, "");
    let s = AuthStack::start_with(Options {
        auth_extra: &format!("token_cookie = \"{TOKEN_COOKIE}\"\n"),
        social: &providers,
        routes_extra: &sink.conf(""),
        ..Options::default()
    });
    let started: Value = s
        .http
        .get(s.url("/auth/oauth/vk/start?mode=json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = app_callback(&s, &started).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(
        claims(access).1["email_verified"],
        true,
        "the provider vouched"
    );
    let me: Value = s.get("/auth/me", access).await.json().await.unwrap();
    let email = me["email"].as_str().unwrap().to_string();
    assert_eq!(
        (me["has_password"].as_bool(), me["email_verified"].as_bool()),
        (Some(false), Some(true))
    );
    assert!(
        sink.mails().is_empty(),
        "no confirmation mail for a vouched address"
    );
    // no password to sign in with yet
    assert_eq!(
        s.login_raw(&email, PASSWORD, "t").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .post("/auth/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mail = one_mail(&sink, &email).await;
    assert_eq!(mail.subject, "Set a password for Cinema");
    let r = s
        .post(
            "/auth/password/reset",
            json!({ "token": mail.token(), "new_password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let me = me_after_login(&s, &email, PASSWORD).await;
    assert_eq!(me["has_password"], true);

    // whoever signs up with an address they do not own cannot attach their own provider
    // account, which the owner's reset would leave behind; once confirmed, linking works
    register_in(&s, "gus@example.com", "en").await;
    let confirm = one_mail(&sink, "gus@example.com").await;
    let squatter = s.login("gus@example.com", PASSWORD).await;
    let access = squatter["access_token"].as_str().unwrap();
    let link = || bearer(&s, reqwest::Method::POST, "/auth/oauth/yandex/link", access);
    let (status, e) = error_of(link().await).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert!(
        e["error"].as_str().unwrap().contains("confirm your email"),
        "{e}"
    );
    let r = s
        .post("/auth/email/confirm", json!({ "token": confirm.token() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(link().await.status(), StatusCode::OK);

    // a link flow started from a session that a reset then ends cannot be finished: the
    // intruder's provider account is not attached after the owner took the account back
    y.set(crate::support::social::Persona::person(
        "777",
        "gus.y@yandex.test",
    ));
    let start_link = |access: String| {
        let s = &s;
        async move {
            let r = bearer(
                s,
                reqwest::Method::POST,
                "/auth/oauth/yandex/link?mode=json",
                &access,
            )
            .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let intruders = start_link(access.to_string()).await;
    let reset = reset_link(&s, &sink, "gus@example.com", 2).await;
    let r = s
        .post(
            "/auth/password/reset",
            json!({ "token": reset, "new_password": "gus's new passphrase" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app_callback(&s, &intruders).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{:?}", r.text().await);
    let gus_links = || {
        s.sql("SELECT count(*) FROM social_accounts s JOIN users u ON u.id = s.user_id WHERE u.email = 'gus@example.com'")
    };
    assert_eq!(gus_links(), "0");
    // the owner's own link, from a session opened after the reset, goes through
    let owner = s.login("gus@example.com", "gus's new passphrase").await;
    let owners = start_link(owner["access_token"].as_str().unwrap().to_string()).await;
    let r = app_callback(&s, &owners).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    assert_eq!(gus_links(), "1");
}

/// The cause recorded for the unsent mail to `to`, once an attempt failed (lower case).
async fn mail_failure(s: &AuthStack, to: &str) -> String {
    let cause = || {
        s.sql(&format!(
            "SELECT coalesce(last_error, '') FROM mail_outbox WHERE recipient = '{to}' AND sent_at IS NULL AND attempts >= 1"
        ))
    };
    let failed = crate::support::eventually(Duration::from_secs(15), || !cause().is_empty()).await;
    assert!(failed, "no failed attempt for {to}");
    cause().to_lowercase()
}

/// `security = "starttls"` and `"tls"` against a relay whose certificate chains to a private
/// CA (`[mail] ca`): delivered; a relay that does not offer STARTTLS gets nothing in clear,
/// and without the CA the relay's certificate is refused. Both failures keep the mail queued
/// with the cause.
#[tokio::test]
async fn mail_goes_over_starttls_and_tls_with_a_private_ca_and_never_in_clear() {
    let certs = tempfile::tempdir().unwrap();
    crate::support::topology::make_certificates(certs.path());
    let file = |name: &str| certs.path().join(name).display().to_string();
    let tls_args = |flag: &str| vec![flag.to_string(), file("server.pem"), file("server.key")];
    let ca = format!("ca = \"{}\"", file("ca.pem"));
    let start = |sink: &SmtpSink, security: &str, extra: &str| {
        AuthStack::start_with(Options {
            routes_extra: &sink.conf_with(security, extra),
            ..Default::default()
        })
    };
    let tls_relay = |flag: &str| {
        let mut sink = SmtpSink::down();
        sink.tls = tls_args(flag);
        sink.run("ok");
        sink
    };

    // STARTTLS required: a relay that does not offer it gets nothing, then one that does
    let mut sink = SmtpSink::start();
    let s = start(&sink, "starttls", &ca);
    register_in(&s, "ivy@example.com", "en").await;
    let error = mail_failure(&s, "ivy@example.com").await;
    assert!(
        error.contains("tls"),
        "the attempt in clear was refused: {error}"
    );
    assert!(sink.mails().is_empty(), "nothing was sent in clear");
    sink.tls = tls_args("--starttls");
    sink.run("ok");
    assert_eq!(
        sink.wait_for("ivy@example.com", 1, MAIL_WAIT).await.len(),
        1
    );
    drop(s);

    // TLS from the first byte
    let sink = tls_relay("--tls");
    let s = start(&sink, "tls", &ca);
    register_in(&s, "jay@example.com", "en").await;
    assert_eq!(
        sink.wait_for("jay@example.com", 1, MAIL_WAIT).await.len(),
        1
    );
    drop(s);

    // the public roots only: the private CA's certificate is refused
    let sink = tls_relay("--starttls");
    let s = start(&sink, "starttls", "");
    register_in(&s, "kit@example.com", "en").await;
    let error = mail_failure(&s, "kit@example.com").await;
    assert!(
        error.contains("certificate") || error.contains("issuer"),
        "{error}"
    );
    assert!(sink.mails().is_empty());
}

/// Housekeeping (at each start, then every few hours) deletes link tokens spent or expired
/// over a day ago and sent or failed mails over 30 days old, and keeps everything younger.
#[tokio::test]
async fn housekeeping_deletes_old_tokens_and_mails_only() {
    let (sink, _films, s) = started();
    register_in(&s, "old@example.com", "en").await;
    one_mail(&sink, "old@example.com").await;
    s.sql(
        "INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at, spent_at) \
         SELECT decode(md5(g::text), 'hex'), id, 'reset_password', email, now() - interval '3 days', \
                now() - interval '2 days', CASE WHEN g % 2 = 0 THEN now() - interval '2 days' END \
         FROM users, generate_series(1, 4) g",
    );
    s.sql(
        "INSERT INTO mail_outbox (id, created_at, template, lang, recipient, subject, next_attempt_at, sent_at, failed_at) \
         VALUES (gen_random_uuid(), now() - interval '40 days', 'confirm_email', 'en', 'a@example.com', 's', now(), now() - interval '40 days', NULL), \
                (gen_random_uuid(), now() - interval '40 days', 'confirm_email', 'en', 'b@example.com', 's', now(), NULL, now() - interval '31 days'), \
                (gen_random_uuid(), now() - interval '40 days', 'confirm_email', 'en', 'c@example.com', 's', now() + interval '1 hour', NULL, NULL)",
    );
    assert_eq!(s.sql("SELECT count(*) FROM account_tokens"), "5");
    assert_eq!(s.sql("SELECT count(*) FROM mail_outbox"), "4");
    // a replica starting runs the housekeeping at once
    let replica = s.replica();
    let cleaned = crate::support::eventually(Duration::from_secs(15), || {
        s.sql("SELECT count(*) FROM account_tokens") == "1"
    })
    .await;
    assert!(cleaned, "{}", replica.logs());
    // the sign-up's live token stays; the recent sent mail and the waiting one stay
    assert_eq!(s.sql("SELECT purpose FROM account_tokens"), "confirm_email");
    assert_eq!(
        s.sql("SELECT recipient FROM mail_outbox ORDER BY recipient"),
        "c@example.com\nold@example.com"
    );
}
