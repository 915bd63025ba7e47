//! The embedded auth core through the real edge: accounts, tokens, sessions, roles, history,
//! throttling and bad input, against real PostgreSQL and Redis.

use crate::support::auth::{claims, error_of, AuthStack, Options, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn register_login_and_me() {
    let s = AuthStack::start();
    let r = s.register("  Ann@Example.COM ", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["roles"], json!([]));

    // the same email in another case is the same account
    let (status, body) = error_of(s.register("ANN@example.com", PASSWORD).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");

    let tv = "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36";
    let r = s.login_raw("ann@example.com", PASSWORD, tv).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let pair: Value = r.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let (header, c) = claims(pair["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(c["sub"], user["id"]);
    assert_eq!(c["iss"], "https://cinema.test");
    assert_eq!(c["aud"], "cinema");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(c["sid"].is_string());

    // the kid is published
    let jwks: Value = s
        .http
        .get(s.url("/auth/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks["keys"][0].get("d").is_none(), "private key published");

    let me: Value = s
        .get("/auth/me", pair["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["has_password"], true);

    // the refresh token is stored only as a hash
    let stored = s.sql(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to('x', 'UTF8'))",
    );
    assert_eq!(stored, "0");
    let rt = pair["refresh_token"].as_str().unwrap();
    let by_hash = s.sql(&format!(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to('{rt}', 'UTF8'))"
    ));
    assert_eq!(by_hash, "1");
    let plain = s.sql(&format!(
        "SELECT count(*) FROM refresh_tokens WHERE encode(token_hash, 'escape') LIKE '%{rt}%'"
    ));
    assert_eq!(plain, "0");

    // the login is in the history with its device and address
    let row = s.sql(
        "SELECT success, method, device, host(ip), user_agent FROM login_history WHERE success",
    );
    assert_eq!(row, format!("t|password|smart_tv|127.0.0.1|{tv}"));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let s = AuthStack::start();
    s.register("ann@example.com", PASSWORD).await;
    let (s1, mut b1) = error_of(s.login_raw("ann@example.com", "wrong password!", "t").await).await;
    let (s2, mut b2) = error_of(s.login_raw("nobody@example.com", PASSWORD, "t").await).await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s1, s2);
    b1["request_id"] = Value::Null;
    b2["request_id"] = Value::Null;
    assert_eq!(b1, b2);
    assert_eq!(b1["code"], "invalid_credentials");
    // an address that cannot exist gets the same answer
    let (s3, mut b3) = error_of(s.login_raw("not an email", PASSWORD, "t").await).await;
    assert_eq!(s3, StatusCode::UNAUTHORIZED);
    b3["request_id"] = Value::Null;
    assert_eq!(b3, b1);
    // every attempt is recorded; only the known account's is tied to a user
    let rows = s.sql(
        "SELECT user_id IS NOT NULL, failure_reason FROM login_history WHERE NOT success ORDER BY occurred_at",
    );
    assert_eq!(rows, "t|wrong_password\nf|unknown_email\nf|invalid_email");
}

#[tokio::test]
async fn refresh_rotates_detects_reuse_and_tolerates_concurrency() {
    let s = AuthStack::start_with(Options {
        auth_extra: "refresh_reuse_grace = \"1s\"",
        ..Options::default()
    });
    s.register("ann@example.com", PASSWORD).await;
    let first = s.login("ann@example.com", PASSWORD).await;
    let rt1 = first["refresh_token"].as_str().unwrap();

    // two refreshes of the same token at once (two tabs): both succeed
    let (a, b) = tokio::join!(s.refresh(rt1), s.refresh(rt1));
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    let second: Value = a.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    let (_, c1) = claims(first["access_token"].as_str().unwrap());
    let (_, c2) = claims(second["access_token"].as_str().unwrap());
    assert_eq!(c1["sid"], c2["sid"], "rotation keeps the session");

    // after the grace window the spent token is a replay: the whole session is revoked
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = error_of(s.refresh(rt1).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_grant");
    assert!(body["error"].as_str().unwrap().contains("reused"), "{body}");
    // the live successor dies with it, and so does the access token's session
    assert_eq!(s.refresh(rt2).await.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .get("/auth/me", second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // and edges learn it through the deny list, for as long as a token of the session
    // verifies: access_ttl (15m) + leeway (30 s) + a margin (60 s)
    let sid = c1["sid"].as_str().unwrap();
    let ttl: i64 = s
        .redis
        .cli(&["PTTL", &format!("edge:revoked:{sid}")])
        .parse()
        .unwrap();
    assert!(ttl > 980_000 && ttl <= 990_000, "deny-list ttl {ttl}");

    // garbage refresh tokens
    for bad in ["", "x", &"A".repeat(300)] {
        let (status, _) = error_of(s.refresh(bad).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
    }
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_ends_every_one() {
    let s = AuthStack::start();
    s.register("ann@example.com", PASSWORD).await;
    let tv = s.login("ann@example.com", PASSWORD).await;
    let phone = s.login("ann@example.com", PASSWORD).await;
    let laptop = s.login("ann@example.com", PASSWORD).await;
    let at = |p: &Value| p["access_token"].as_str().unwrap().to_string();

    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(at(&tv))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/auth/me", &at(&tv)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh(tv["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/auth/me", &at(&phone)).await.status(),
        StatusCode::OK
    );

    let r = s
        .http
        .post(s.url("/auth/logout-all"))
        .bearer_auth(at(&phone))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 2);
    for p in [&phone, &laptop] {
        assert_eq!(
            s.get("/auth/me", &at(p)).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.refresh(p["refresh_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let (_, c) = claims(&at(p));
        let key = format!("edge:revoked:{}", c["sid"].as_str().unwrap());
        assert_eq!(s.redis.cli(&["EXISTS", &key]), "1");
    }
    // no token: 401 with the Bearer challenge
    let r = s.http.post(s.url("/auth/logout")).send().await.unwrap();
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(error_of(r).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changing_email_and_password() {
    let s = AuthStack::start();
    s.register("ann@example.com", PASSWORD).await;
    s.register("bob@example.com", PASSWORD).await;
    let pair = s.login("ann@example.com", PASSWORD).await;
    let other = s.login("ann@example.com", PASSWORD).await;
    let at = pair["access_token"].as_str().unwrap();
    let patch = |body: Value| {
        s.http
            .patch(s.url("/auth/me"))
            .bearer_auth(at)
            .json(&body)
            .send()
    };

    let (st, _) = error_of(
        patch(json!({"current_password": "not it at all", "email": "a2@example.com"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = error_of(
        patch(json!({"current_password": PASSWORD, "email": "Bob@Example.com"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, b) = error_of(
        patch(json!({"current_password": PASSWORD, "password": "password123"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"].as_str().unwrap().contains("common"), "{b}");
    let (st, _) = error_of(patch(json!({"current_password": PASSWORD})).await.unwrap()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // without [mail] no mail flows: the mail endpoints are not offered, an email is never
    // confirmed, and a new email applies at once (below)
    let r = s
        .post(
            "/auth/password/forgot",
            json!({ "email": "ann@example.com" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .post(s.url("/auth/email/resend"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let me: Value = s.get("/auth/me", at).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);

    // a new email: the old one is free again, the new one signs in
    let r = patch(json!({"current_password": PASSWORD, "email": "Ann.New@Example.com"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["email"],
        "ann.new@example.com"
    );
    s.login("ann.new@example.com", PASSWORD).await;
    assert_eq!(
        s.login_raw("ann@example.com", PASSWORD, "t").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.register("ann@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );

    // a new password ends every session, this one included
    let r = patch(json!({"current_password": PASSWORD, "password": "a much better passphrase"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get("/auth/me", at).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh(other["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.login("ann.new@example.com", "a much better passphrase")
        .await;
    assert_eq!(
        s.login_raw("ann.new@example.com", PASSWORD, "t")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn history_pages_newest_first() {
    let s = AuthStack::start();
    s.register("ann@example.com", PASSWORD).await;
    for i in 0..4 {
        let pw = if i % 2 == 0 {
            PASSWORD
        } else {
            "wrong password!"
        };
        s.login_raw("ann@example.com", pw, &format!("agent-{i}"))
            .await;
    }
    let pair = s.login("ann@example.com", PASSWORD).await;
    let at = pair["access_token"].as_str().unwrap();
    let mut agents = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/auth/me/history?limit=2&cursor={c}"),
            None => "/auth/me/history?limit=2".to_string(),
        };
        let page: Value = s.get(&q, at).await.json().await.unwrap();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            agents.push(item["user_agent"].as_str().unwrap().to_string());
            assert_eq!(item["method"], "password");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        agents,
        [
            "test-client/1.0",
            "agent-3",
            "agent-2",
            "agent-1",
            "agent-0"
        ]
    );

    for bad in ["limit=0", "limit=101", "cursor=bm9wZQ", "limit=abc"] {
        let (st, _) = error_of(s.get(&format!("/auth/me/history?{bad}"), at).await).await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::BAD_REQUEST,
            "{bad}: {st}"
        );
    }
}

#[tokio::test]
async fn login_throttling_counts_before_the_password_is_checked() {
    let s = AuthStack::start_with(Options {
        auth_extra: "throttle = { per_account = 3, per_ip = 5, window = \"1m\" }",
        ..Options::default()
    });
    s.register("ann@example.com", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            s.login_raw("ann@example.com", "wrong password!", "t")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // the fourth attempt is refused even with the right password
    let r = s.login_raw("ann@example.com", PASSWORD, "t").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (st, b) = error_of(r).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(b["code"], "too_many_attempts");
    // other accounts from the same address go on until the per-IP budget is spent
    s.register("bob@example.com", PASSWORD).await;
    s.login("bob@example.com", PASSWORD).await;
    assert_eq!(
        s.login_raw("carol@example.com", PASSWORD, "t")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let throttled = s.sql("SELECT count(*) FROM login_history WHERE failure_reason = 'throttled'");
    assert_eq!(throttled, "2");
}

#[tokio::test]
async fn roles_are_admin_only() {
    let s = AuthStack::start();
    s.create_user("admin@example.com", &["admin"]);
    let viewer_id = s.create_user("viewer@example.com", &["subscriber"]);
    let admin = s.login("admin@example.com", PASSWORD).await;
    let viewer = s.login("viewer@example.com", PASSWORD).await;
    let a = admin["access_token"].as_str().unwrap();
    let v = viewer["access_token"].as_str().unwrap();
    let (_, c) = claims(v);
    assert_eq!(c["roles"], json!(["subscriber"]));

    let (st, _) = error_of(s.get("/auth/roles", v).await).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let create = |token: &str, body: Value| {
        s.http
            .post(s.url("/auth/roles"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(
        create(v, json!({"name": "moderator"}))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let r = create(
        a,
        json!({"name": "moderator", "description": "Moderates reviews"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        error_of(create(a, json!({"name": "moderator"})).await.unwrap())
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        error_of(create(a, json!({"name": "Bad Name"})).await.unwrap())
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let list: Value = s.get("/auth/roles", a).await.json().await.unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "moderator", "subscriber"]);

    let grant = |method: reqwest::Method, user: &str, role: &str, token: &str| {
        s.http
            .request(method, s.url(&format!("/auth/users/{user}/roles/{role}")))
            .bearer_auth(token)
            .send()
    };
    use reqwest::Method;
    assert_eq!(
        grant(Method::PUT, &viewer_id, "moderator", v)
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        grant(Method::PUT, &viewer_id, "moderator", a)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        grant(Method::PUT, &viewer_id, "nope", a)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        grant(Method::PUT, "not-a-uuid", "moderator", a)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        grant(
            Method::PUT,
            "01890000-0000-7000-8000-000000000000",
            "moderator",
            a
        )
        .await
        .unwrap()
        .status(),
        StatusCode::NOT_FOUND
    );
    // the grant reaches the viewer's token at the next refresh
    let next: Value = s
        .refresh(viewer["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let (_, c) = claims(next["access_token"].as_str().unwrap());
    assert_eq!(c["roles"], json!(["moderator", "subscriber"]));

    assert_eq!(
        grant(Method::DELETE, &viewer_id, "moderator", a)
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let del = |name: &str| {
        s.http
            .delete(s.url(&format!("/auth/roles/{name}")))
            .bearer_auth(a)
            .send()
    };
    assert_eq!(
        error_of(del("admin").await.unwrap()).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        del("moderator").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        error_of(del("moderator").await.unwrap()).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_writes_nothing() {
    let s = AuthStack::start();
    let raw = |ct: &'static str, body: Vec<u8>| {
        s.http
            .post(s.url("/auth/register"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let json_ct = "application/json";
    let big_password = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let long_password = format!(
        r#"{{"email":"a@example.com","password":"{}"}}"#,
        "xy".repeat(100)
    );
    let cases: Vec<(&str, &'static str, Vec<u8>, StatusCode)> = vec![
        (
            "malformed JSON",
            json_ct,
            b"{\"email\":".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON at all",
            json_ct,
            b"email=a&password=b".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong content type",
            "text/plain",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            b"email=a".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "body over 64 KiB",
            json_ct,
            vec![b' '; 70 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "1 MB password",
            json_ct,
            big_password.into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "200-char password",
            json_ct,
            long_password.into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty fields",
            json_ct,
            br#"{"email":"","password":""}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "missing field",
            json_ct,
            br#"{"email":"a@example.com"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown field",
            json_ct,
            br#"{"email":"a@example.com","password":"abcdefgh1","admin":true}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "wrong types",
            json_ct,
            br#"{"email":1,"password":[]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "invalid UTF-8",
            json_ct,
            b"{\"email\":\"\xff\xfe@example.com\",\"password\":\"abcdefgh1\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad email",
            json_ct,
            br#"{"email":"not an email","password":"abcdefgh1"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, ct, body, want) in cases {
        let (status, b) = error_of(raw(ct, body).await.unwrap()).await;
        assert_eq!(status, want, "{what}: {b}");
    }
    // a malformed login is 4xx too, and a malformed bearer token is 401
    let r = s
        .http
        .post(s.url("/auth/login"))
        .header("content-type", json_ct)
        .body("[")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::BAD_REQUEST);
    for token in [
        "",
        "abc",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"A".repeat(10_000),
    ] {
        let r = s
            .http
            .get(s.url("/auth/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.0, StatusCode::UNAUTHORIZED, "{token:.20}");
    }
    let r = s.http.delete(s.url("/auth/login")).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        error_of(s.http.get(s.url("/auth/nope")).send().await.unwrap())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // nothing was written
    assert_eq!(
        s.sql("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM credentials)"),
        "0"
    );
}

#[tokio::test]
async fn sql_looking_and_unicode_input_is_stored_literally() {
    let s = AuthStack::start();
    // as typed, and as stored: a Unicode domain in its ASCII (xn--) form, one spelling of
    // one mailbox
    let emails = [
        ("x'or'1'='1@example.com", "x'or'1'='1@example.com"),
        (
            "robert'||'drop_table_users--@example.com",
            "robert'||'drop_table_users--@example.com",
        ),
        (
            "пользователь@пример.рф",
            "пользователь@xn--e1afmkfd.xn--p1ai",
        ),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
    ];
    // brackets, parentheses and ';' are not in an address (RFC 5322 atext): refused, not stored
    let r = s
        .register(
            "robert');drop_table_users;--@example.com",
            "a long enough one",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let password = "пароль'; DROP TABLE users; --";
    let agent = "Mozilla/5.0 ('; DELETE FROM login_history; --) Тест 🎬";
    for (email, stored) in emails {
        let r = s.register(email, password).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{email}");
        let r = s.login_raw(email, password, agent).await;
        assert_eq!(r.status(), StatusCode::OK, "{email}");
        let pair: Value = r.json().await.unwrap();
        let at = pair["access_token"].as_str().unwrap();
        let me: Value = s.get("/auth/me", at).await.json().await.unwrap();
        assert_eq!(me["email"], stored);
        let history: Value = s.get("/auth/me/history", at).await.json().await.unwrap();
        assert_eq!(history["items"][0]["user_agent"], agent);
    }
    assert_eq!(
        s.sql("SELECT count(*) FROM users"),
        emails.len().to_string()
    );
    // the other spelling of a registered Unicode domain is the same address
    let r = s
        .register("Пользователь@xn--e1afmkfd.xn--p1ai", password)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn openapi_is_served_and_matches_the_committed_contract() {
    let s = AuthStack::start();
    let served = s
        .http
        .get(s.url("/auth/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    assert_eq!(served, committed);
}

#[tokio::test]
async fn rotated_keys_are_published_and_old_tokens_keep_working() {
    let s = AuthStack::start();
    s.register("ann@example.com", PASSWORD).await;
    let old = s.login("ann@example.com", PASSWORD).await;
    let (old_header, _) = claims(old["access_token"].as_str().unwrap());

    let out = s.cmd(&["keys", "rotate"], None);
    assert!(out.status.success());
    let kids = || async {
        let jwks: Value = s
            .http
            .get(s.url("/auth/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut published = Vec::new();
    for _ in 0..50 {
        published = kids().await;
        if published.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(published.len(), 2, "rotation not picked up: {published:?}");
    assert_eq!(published[0], old_header["kid"]);
    let new = s.login("ann@example.com", PASSWORD).await;
    let (new_header, _) = claims(new["access_token"].as_str().unwrap());
    assert_eq!(new_header["kid"].as_str().unwrap(), published[1]);
    assert_eq!(
        s.get("/auth/me", old["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // key files are private
    for entry in std::fs::read_dir(s.keys_dir()).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test]
async fn admin_cli_creates_users_and_manages_roles() {
    let s = AuthStack::start();
    let out = s.cmd(
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--password-stdin",
            "--role",
            "admin",
        ],
        Some(PASSWORD),
    );
    assert!(out.status.success(), "{}", crate::support::auth::text(&out));
    let out = s.cmd(
        &[
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--password-stdin",
        ],
        Some("12345678"),
    );
    assert!(!out.status.success());
    assert!(crate::support::auth::text(&out).contains("too common"));
    let out = s.cmd(
        &[
            "user",
            "create",
            "--email",
            "x@example.com",
            "--password-stdin",
            "--role",
            "ghost",
        ],
        Some(PASSWORD),
    );
    assert!(!out.status.success());
    assert_eq!(
        s.sql("SELECT count(*) FROM users"),
        "1",
        "a failed create left a row"
    );
    let out = s.cmd(
        &[
            "user",
            "roles",
            "--email",
            "OPS@example.com",
            "--add",
            "subscriber",
            "--remove",
            "admin",
        ],
        None,
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("roles: subscriber\n"));
    // the password given on stdin works
    s.login("ops@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_database_outage_is_a_fast_503_not_a_500() {
    let s = AuthStack::start_with(Options {
        auth_extra: "db_timeout = \"300ms\"",
        ..Options::default()
    });
    s.register("ann@example.com", PASSWORD).await;
    let pair = s.login("ann@example.com", PASSWORD).await;
    let health = s.http.get(s.url("/auth/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    s.pg.stop();
    let started = std::time::Instant::now();
    let r = s.login_raw("ann@example.com", PASSWORD, "t").await;
    assert_eq!(r.headers()["retry-after"], "1");
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = error_of(
        s.get("/auth/me", pair["access_token"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let health = s.http.get(s.url("/auth/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json::<Value>().await.unwrap()["database"], "down");
    // the JWKS needs no database
    let jwks = s
        .http
        .get(s.url("/auth/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
}
