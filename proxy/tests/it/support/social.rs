//! A local stand-in for Yandex ID, VK ID and Mail.ru, which cannot be reached from here. It
//! reproduces each provider's documented wire format and checks what the edge sends: the
//! authorize redirect (with VK's `device_id`), the code exchange with PKCE (S256 checked, VK's
//! `device_id` and `state` required), the token answer (Mail.ru's without `token_type`), and
//! the userinfo call (Yandex's `Authorization: OAuth <token>`, VK's POST form, Mail.ru's
//! `access_token` query and its errors with status 200).

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::served::Served;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Yandex,
    Vk,
    MailRu,
}

/// Who the user is at the provider, and how the provider behaves; tests change it between flows.
#[derive(Clone, Debug)]
pub struct Persona {
    pub subject: String,
    pub email: Option<String>,
    /// The user presses "deny" on the consent page.
    pub deny: bool,
    /// The token endpoint refuses the code.
    pub refuse_code: bool,
    /// The token endpoint takes this long.
    pub token_delay: Duration,
    /// The token endpoint answers with a redirect (to a token it would like to be trusted).
    pub token_redirect: bool,
    /// The userinfo answer is this many bytes of padding.
    pub userinfo_padding: usize,
}

impl Persona {
    /// This account at the provider, behaving well.
    pub fn person(subject: &str, email: &str) -> Persona {
        Persona {
            subject: subject.into(),
            email: Some(email.into()),
            ..Persona::default()
        }
    }
}

impl Default for Persona {
    fn default() -> Self {
        Persona {
            subject: "1000034426".into(),
            email: Some("ivan@provider.test".into()),
            deny: false,
            refuse_code: false,
            token_delay: Duration::ZERO,
            token_redirect: false,
            userinfo_padding: 0,
        }
    }
}

struct Issued {
    challenge: String,
    redirect_uri: String,
    device_id: String,
    state: String,
}

struct Shared {
    kind: Kind,
    client_id: String,
    client_secret: String,
    persona: Mutex<Persona>,
    codes: Mutex<HashMap<String, Issued>>,
    /// Access token → subject.
    tokens: Mutex<HashMap<String, String>>,
    /// What the edge sent, one line per request, for assertions.
    pub log: Mutex<Vec<String>>,
}

pub struct FakeProvider {
    pub port: u16,
    shared: Arc<Shared>,
    _served: Served,
}

pub const SECRET: &str = "provider-secret";

impl FakeProvider {
    pub fn start(kind: Kind, client_id: &str) -> FakeProvider {
        let shared = Arc::new(Shared {
            kind,
            client_id: client_id.into(),
            client_secret: SECRET.into(),
            persona: Mutex::new(Persona::default()),
            codes: Mutex::default(),
            tokens: Mutex::default(),
            log: Mutex::default(),
        });
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/info", get(yandex_info))
            .route("/oauth2/user_info", post(vk_user_info))
            .route("/userinfo", get(mailru_userinfo))
            .with_state(shared.clone());
        let served = Served::start(app, 0, "provider");
        FakeProvider {
            port: served.port,
            shared,
            _served: served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set(&self, persona: Persona) {
        *self.shared.persona.lock().unwrap() = persona;
    }

    pub fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    /// `[social.provider.<name>]` pointing every endpoint here.
    pub fn conf(&self, name: &str) -> String {
        let (kind, userinfo) = match self.shared.kind {
            Kind::Yandex => ("yandex", "/info?format=json"),
            Kind::Vk => ("vk", "/oauth2/user_info"),
            Kind::MailRu => ("mailru", "/userinfo"),
        };
        format!(
            "[social.provider.{name}]\nkind = \"{kind}\"\nclient_id = \"{id}\"\n\
             client_secret_env = \"TEST_PROVIDER_SECRET\"\n\
             authorize_url = \"{a}\"\ntoken_url = \"{t}\"\nuserinfo_url = \"{u}\"\n",
            id = self.shared.client_id,
            a = self.url("/authorize"),
            t = self.url("/token"),
            u = self.url(userinfo),
        )
    }
}

fn bad(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": what})),
    )
        .into_response()
}

/// The consent page, already answered: straight back to the client.
async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.log.lock().unwrap().push(format!("authorize {q:?}"));
    let need = |k: &str| q.get(k).cloned().unwrap_or_default();
    if need("response_type") != "code"
        || need("client_id") != s.client_id
        || need("code_challenge_method") != "S256"
        || need("code_challenge").is_empty()
        || need("state").is_empty()
    {
        return bad(
            "authorize: response_type, client_id, state and an S256 challenge are required",
        );
    }
    let redirect_uri = need("redirect_uri");
    let persona = s.persona.lock().unwrap().clone();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = url_encode(&need("state"));
    if persona.deny {
        return Redirect::to(&format!(
            "{redirect_uri}{sep}error=access_denied&error_description=User+denied&state={state}"
        ))
        .into_response();
    }
    let code = format!("code-{}", uuid::Uuid::now_v7().simple());
    let device_id = format!("dev-{}", uuid::Uuid::now_v7().simple());
    s.codes.lock().unwrap().insert(
        code.clone(),
        Issued {
            challenge: need("code_challenge"),
            redirect_uri: redirect_uri.clone(),
            device_id: device_id.clone(),
            state: need("state"),
        },
    );
    let extra = if s.kind == Kind::Vk {
        // VK ID's callback: the code, the device it was issued to, and its type
        format!("&device_id={device_id}&type=code_v2&expires_in=600")
    } else {
        String::new()
    };
    Redirect::to(&format!(
        "{redirect_uri}{sep}code={code}&state={state}{extra}"
    ))
    .into_response()
}

async fn token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    s.log.lock().unwrap().push(format!(
        "token auth={} {form:?}",
        headers.get(header::AUTHORIZATION).is_some()
    ));
    let persona = s.persona.lock().unwrap().clone();
    tokio::time::sleep(persona.token_delay).await;
    if persona.token_redirect {
        return Redirect::temporary("http://127.0.0.1:9/token").into_response();
    }
    let need = |k: &str| form.get(k).cloned().unwrap_or_default();
    // client authentication: HTTP Basic, or client_id + client_secret in the body
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let client_ok = match basic {
        Some(pair) => pair == format!("{}:{}", s.client_id, s.client_secret),
        None => need("client_id") == s.client_id && need("client_secret") == s.client_secret,
    };
    if !client_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if need("grant_type") != "authorization_code" {
        return bad("grant_type");
    }
    let Some(issued) = s.codes.lock().unwrap().remove(&need("code")) else {
        return bad("unknown or used code");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(need("code_verifier").as_bytes()));
    if persona.refuse_code || challenge != issued.challenge {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "code_verifier mismatch"})),
        )
            .into_response();
    }
    if need("redirect_uri") != issued.redirect_uri {
        return bad("redirect_uri differs from the authorize request");
    }
    if s.kind == Kind::Vk
        && (need("device_id") != issued.device_id || need("state") != issued.state)
    {
        return bad("VK ID: device_id and state of the callback are required");
    }
    let access = format!("at-{}", uuid::Uuid::now_v7().simple());
    s.tokens
        .lock()
        .unwrap()
        .insert(access.clone(), persona.subject.clone());
    let body = match s.kind {
        Kind::Yandex => json!({"token_type": "bearer", "access_token": access,
            "expires_in": 31536000, "refresh_token": "rt"}),
        Kind::Vk => {
            json!({"access_token": access, "refresh_token": "rt", "id_token": "vk.id.token",
            "token_type": "Bearer", "expires_in": 3600,
            "user_id": persona.subject.parse::<u64>().map(Value::from).unwrap_or(Value::from(persona.subject.clone())),
            "state": issued.state, "scope": "vkid.personal_info email"})
        }
        // Mail.ru: no token_type
        Kind::MailRu => json!({"access_token": access, "refresh_token": "rt", "expires_in": 3600}),
    };
    Json(body).into_response()
}

fn subject_of(s: &Shared, token: &str) -> Option<String> {
    s.tokens.lock().unwrap().get(token).cloned()
}

fn persona_view(s: &Shared) -> Persona {
    s.persona.lock().unwrap().clone()
}

async fn yandex_info(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    s.log.lock().unwrap().push(format!(
        "info authorization={}",
        auth.split(' ').next().unwrap_or("")
    ));
    // Yandex's scheme is "OAuth <token>"; "Bearer" is not what it documents
    let Some(sub) = auth.strip_prefix("OAuth ").and_then(|t| subject_of(&s, t)) else {
        return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
    };
    let p = persona_view(&s);
    Json(json!({"id": sub, "login": "ivan", "client_id": s.client_id,
        "default_email": p.email, "emails": [p.email], "real_name": "Ivan Petrov",
        "display_name": "ivan", "psuid": "1.x", "padding": "x".repeat(p.userinfo_padding)}))
    .into_response()
}

async fn vk_user_info(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    s.log.lock().unwrap().push(format!(
        "user_info {ct} {:?}",
        form.keys().collect::<Vec<_>>()
    ));
    if !ct.starts_with("application/x-www-form-urlencoded")
        || form.get("client_id") != Some(&s.client_id)
    {
        return bad("user_info: a form with client_id and access_token");
    }
    let Some(sub) = form.get("access_token").and_then(|t| subject_of(&s, t)) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    };
    let p = persona_view(&s);
    Json(
        json!({"user": {"user_id": sub, "first_name": "Ivan", "last_name": "Petrov",
        "email": p.email, "avatar": "https://vk.test/a.jpg", "sex": 2, "verified": false}}),
    )
    .into_response()
}

async fn mailru_userinfo(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.log
        .lock()
        .unwrap()
        .push(format!("userinfo {:?}", q.keys().collect::<Vec<_>>()));
    let Some(sub) = q.get("access_token").and_then(|t| subject_of(&s, t)) else {
        // Mail.ru answers errors with 200 and an error body
        return Json(json!({"error": "invalid_token", "error_description": "token not found"}))
            .into_response();
    };
    let p = persona_view(&s);
    Json(
        json!({"id": sub, "email": p.email, "name": "Ivan Petrov", "first_name": "Ivan",
        "last_name": "Petrov", "gender": "m", "locale": "ru_RU"}),
    )
    .into_response()
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
