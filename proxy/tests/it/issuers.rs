//! Tokens from external issuers (`[[issuer]]`): a partner IdP whose RSA and EC keys are
//! made in the test and served by a local JWKS server, and a real OpenID provider
//! (oidc-provider) found by discovery. Routes accept only the issuers they list; identities
//! are namespaced; algorithm confusion, other issuers' tokens and rotation are tried.

use crate::support::oidc::{OpenIdProvider, ProviderBrowser, CLIENT_ID};
use crate::support::served::Served;
use crate::support::site::{site_with_routes, Site};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PARTNER: &str = "https://sso.partner.test/realms/cinema";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Keys {
    rsa: (Value, EncodingKey, Vec<u8>),
    ec: (Value, EncodingKey),
}

fn rsa(kid: &str) -> (Value, EncodingKey, Vec<u8>) {
    let key = openssl::rsa::Rsa::generate(2048).unwrap();
    let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig",
        "n": b64(&key.n().to_vec()), "e": b64(&key.e().to_vec()) });
    let der = key.private_key_to_der().unwrap();
    (
        jwk,
        EncodingKey::from_rsa_der(&der),
        key.public_key_to_pem().unwrap(),
    )
}

fn p256(kid: &str) -> (Value, EncodingKey) {
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = EcKey::generate(&group).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let point = key
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .unwrap();
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..65]) });
    let der = openssl::pkey::PKey::from_ec_key(key)
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    (jwk, EncodingKey::from_ec_der(&der))
}

/// The partner's JWKS endpoint: serves whatever `set` holds, counts its reads.
fn jwks_server(set: Arc<Mutex<Value>>, reads: Arc<Mutex<usize>>) -> Served {
    let app = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let (set, reads) = (set.clone(), reads.clone());
            async move {
                *reads.lock().unwrap() += 1;
                axum::Json(set.lock().unwrap().clone())
            }
        }),
    );
    Served::start(app, 0, "partner jwks")
}

fn partner_claims(sub: &str, roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "iss": PARTNER, "aud": ["account", "cinema-api"], "sub": sub,
        "iat": now, "exp": now + 300, "realm_access": { "roles": roles } })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn routes(jwks_port: u16, op_port: u16) -> String {
    format!(
        "[[issuer]]\nname = \"partner\"\nissuer = \"{PARTNER}\"\naudience = [\"cinema-api\"]\n\
         jwks_url = \"http://127.0.0.1:{jwks_port}/certs\"\nalgorithms = [\"RS256\", \"ES256\"]\n\
         roles_claim = \"realm_access.roles\"\n\
         [[issuer]]\nname = \"op\"\nissuer = \"http://127.0.0.1:{op_port}\"\naudience = [\"{CLIENT_ID}\"]\n\
         discovery = true\nalgorithms = [\"RS256\"]\n\
         [[route]]\nname = \"partner-only\"\npath = \"/partner\"\nupstream = \"movies\"\nauth = \"required\"\n\
         issuers = [\"partner\"]\nroles = [\"partner:subscriber\"]\n\
         [[route]]\nname = \"both\"\npath = \"/both\"\nupstream = \"movies\"\nauth = \"required\"\n\
         issuers = [\"self\", \"partner\", \"op\"]\n"
    )
}

async fn get(site: &Site, path: &str, token: &str) -> reqwest::Response {
    site.s
        .http
        .get(site.s.url(path))
        .bearer_auth(token)
        .header("x-auth-issuer", "self")
        .header("x-user-id", "spoofed")
        .send()
        .await
        .unwrap()
}

async fn seen(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["headers"].clone()
}

#[tokio::test]
async fn routes_accept_the_issuers_they_list_and_nothing_else() {
    let keys = Keys {
        rsa: rsa("r1"),
        ec: p256("e1"),
    };
    let set = Arc::new(Mutex::new(json!({ "keys": [keys.rsa.0, keys.ec.0] })));
    let reads = Arc::new(Mutex::new(0));
    let jwks = jwks_server(set.clone(), reads.clone());
    let op_port = crate::support::free_port();
    let op = OpenIdProvider::start(op_port, &["http://127.0.0.1:9/cb".into()], "op-secret");
    let site = site_with_routes(&routes(jwks.port, op_port));
    site.s.create_user("viewer@example.com", &["subscriber"]);
    let own = site.token_of("viewer@example.com").await;
    // the key watcher reads every issuer's keys as the edge starts
    let ready = || async {
        let r = ready_report(&site).await;
        r["checks"]["issuers"]["partner"]["status"] == "up"
            && r["checks"]["issuers"]["op"]["status"] == "up"
    };
    let mut up = false;
    for _ in 0..50 {
        if ready().await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the issuers' keys were not read at start");
    assert_eq!(*reads.lock().unwrap(), 1);

    // the partner's RS256 and ES256 tokens on a route that lists it: identity namespaced
    for token in [
        sign(
            Algorithm::RS256,
            "r1",
            &keys.rsa.1,
            &partner_claims("42", &["subscriber"]),
        ),
        sign(
            Algorithm::ES256,
            "e1",
            &keys.ec.1,
            &partner_claims("42", &["subscriber"]),
        ),
    ] {
        let h = seen(get(&site, "/partner/x", &token).await).await;
        assert_eq!(h["x-user-id"], "partner:42", "{h}");
        assert_eq!(h["x-auth-issuer"], "partner");
        assert_eq!(
            h["x-user-roles"], "partner:subscriber",
            "roles namespaced like the subject"
        );
        let h = seen(get(&site, "/both/x", &token).await).await;
        assert_eq!(h["x-user-id"], "partner:42");
    }
    // roles come from the mapped claim: a partner user without the role is refused
    let plain = sign(
        Algorithm::RS256,
        "r1",
        &keys.rsa.1,
        &partner_claims("43", &["offline_access"]),
    );
    assert_eq!(
        get(&site, "/partner/x", &plain).await.status(),
        StatusCode::FORBIDDEN
    );
    // the core's token is not the partner's; the partner's is not the core's (even once
    // verified and cached for another route)
    assert_eq!(
        get(&site, "/partner/x", &own).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let partner = sign(
        Algorithm::RS256,
        "r1",
        &keys.rsa.1,
        &partner_claims("42", &["subscriber"]),
    );
    assert_eq!(
        get(&site, "/req/x", &partner).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let h = seen(get(&site, "/both/x", &own).await).await;
    assert!(
        h.get("x-auth-issuer").is_none(),
        "the core's own tokens carry no issuer: {h}"
    );
    assert_ne!(h["x-user-id"], "spoofed");
    // algorithm confusion: HS256 keyed with the partner's public RSA key
    let hmac = EncodingKey::from_secret(&keys.rsa.2);
    let forged = sign(
        Algorithm::HS256,
        "r1",
        &hmac,
        &partner_claims("42", &["subscriber"]),
    );
    assert_eq!(
        get(&site, "/partner/x", &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // "none", a foreign audience, a forged issuer
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"r1"}"#),
        b64(partner_claims("42", &["subscriber"]).to_string().as_bytes())
    );
    assert_eq!(
        get(&site, "/partner/x", &none).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut c = partner_claims("42", &["subscriber"]);
    c["aud"] = json!("another-service");
    let other_aud = sign(Algorithm::RS256, "r1", &keys.rsa.1, &c);
    assert_eq!(
        get(&site, "/partner/x", &other_aud).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // rotation at the partner: a token with a new kid reads the JWKS again, once
    let rotated = rsa("r2");
    set.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(rotated.0.clone());
    let before = *reads.lock().unwrap();
    let token = sign(
        Algorithm::RS256,
        "r2",
        &rotated.1,
        &partner_claims("44", &["subscriber"]),
    );
    let status = get(&site, "/partner/x", &token).await.status();
    assert_eq!(status, StatusCode::OK);
    // garbage kids do not turn into a flood of reads
    for i in 0..20 {
        let junk = sign(
            Algorithm::RS256,
            &format!("junk{i}"),
            &rotated.1,
            &partner_claims("1", &[]),
        );
        assert_eq!(
            get(&site, "/partner/x", &junk).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let after = *reads.lock().unwrap() - before;
    assert!(
        (1..=3).contains(&after),
        "{after} JWKS reads for one rotation and 20 junk kids"
    );

    // the real OpenID provider: its RS256 id_token, keys found through discovery
    let id_token = op_id_token(&op, "alice").await;
    let h = seen(get(&site, "/both/x", &id_token).await).await;
    assert_eq!(h["x-user-id"], "op:alice", "{h}");
    assert_eq!(h["x-auth-issuer"], "op");
    assert_eq!(
        get(&site, "/partner/x", &id_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // /_edge/ready reports each issuer's keys
    let ready = ready_report(&site).await;
    assert_eq!(
        ready["checks"]["issuers"]["partner"]["status"], "up",
        "{ready}"
    );
    assert_eq!(ready["checks"]["issuers"]["op"]["status"], "up", "{ready}");
}

async fn ready_report(site: &Site) -> Value {
    let r = site.s.http.get(site.s.url("/_edge/ready")).send().await;
    r.unwrap().json().await.unwrap()
}

/// Signs in at the provider (code flow with PKCE, as a client would) and returns the id_token.
async fn op_id_token(op: &OpenIdProvider, login: &str) -> String {
    use sha2::Digest;
    let verifier = "a-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/cb";
    let auth = format!(
        "{}?client_id={CLIENT_ID}&response_type=code&scope=openid&redirect_uri={}&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256",
        op.url("/auth"),
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let mut browser = ProviderBrowser::new(op);
    let back = browser.sign_in(&auth, login).await;
    let code = form_urlencoded::parse(back.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let r = reqwest::Client::new()
        .post(op.url("/token"))
        .basic_auth(CLIENT_ID, Some("op-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["id_token"].as_str().expect("an id_token").to_string()
}

#[tokio::test]
async fn an_unknown_issuer_name_or_an_unreadable_one_is_refused_on_reload() {
    let set = Arc::new(Mutex::new(json!({ "keys": [rsa("r1").0] })));
    let jwks = jwks_server(set, Arc::new(Mutex::new(0)));
    let site = site_with_routes(&format!(
        "[[issuer]]\nname = \"partner\"\nissuer = \"{PARTNER}\"\naudience = [\"cinema-api\"]\n\
         jwks_url = \"http://127.0.0.1:{}/certs\"\nalgorithms = [\"RS256\"]\n",
        jwks.port
    ));
    let routes = site.s.edge.conf_dir().join("routes.toml");
    let text = std::fs::read_to_string(&routes).unwrap();
    // a route naming an issuer nobody defined: refused by name
    site.s.edge.write_routes(&format!(
        "{text}[[route]]\nname = \"x\"\npath = \"/x\"\nupstream = \"movies\"\nauth = \"required\"\nissuers = [\"keycloak\"]\n"
    ));
    assert!(
        crate::support::eventually(Duration::from_secs(10), || site
            .s
            .edge
            .logs()
            .contains("unknown issuer \\\"keycloak\\\""))
        .await,
        "{}",
        site.s.edge.logs()
    );
    // a new issuer whose keys cannot be read: the reload is refused, the old routes serve
    site.s.edge.write_routes(&format!(
        "{text}[[issuer]]\nname = \"down\"\nissuer = \"https://down.test\"\naudience = [\"a\"]\n\
         jwks_url = \"http://127.0.0.1:{}/certs\"\nalgorithms = [\"ES256\"]\n",
        crate::support::free_port()
    ));
    assert!(
        crate::support::eventually(Duration::from_secs(10), || site
            .s
            .edge
            .logs()
            .contains("[[issuer]] down: its keys cannot be read"))
        .await,
        "{}",
        site.s.edge.logs()
    );
    let r = site.s.http.get(site.s.url("/pub/x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
