//! The device flow over HTTP (RFC 8628): the TV app's JSON endpoints (`/auth/device/code`,
//! `/auth/device/token`), the QR code, the TV browser's page, and the phone's verification
//! page (`[auth.device] verification_uri`'s path). Pages: `device_pages.rs`.

use super::device_pages::{self as pages, Lang, PhoneView};
use super::error::ErrorBody;
use super::extract::{Query, RawBody};
use crate::device_grant::{code, Decision};
use crate::error::{DeviceError, Error};
use crate::model::{Caller, Client, Credentials, TokenPair};
use crate::Auth;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The TV browser's device code, in a cookie rather than a URL (URLs reach access logs),
/// sent only to the TV page's own paths (not to every service behind the edge).
const TV_PATH: &str = "/auth/device";

fn tv_cookie(d: &crate::device_grant::settings::DeviceSettings) -> String {
    if d.secure() {
        "__Secure-tv-device-code".into()
    } else {
        "tv-device-code".into()
    }
}

/// A browser session after a sign-in on these pages: the access cookie the edge reads, and
/// the refresh cookie for `/auth/refresh` only, so the session is usable to its end.
fn set_session(
    auth: &Auth,
    d: &crate::device_grant::settings::DeviceSettings,
    r: &mut Response,
    pair: &TokenPair,
) {
    let cookies = [
        d.cookie(
            &d.access_cookie(),
            &pair.access_token,
            pair.expires_in,
            "Lax",
        ),
        d.cookie_at(
            &d.refresh_cookie(),
            &pair.refresh_token,
            "/auth/refresh",
            auth.config.refresh_ttl.as_secs(),
            "Strict",
        ),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// RFC 8628 §3.1 parameters, as a form (the RFC's encoding) or JSON. Unknown parameters are
/// ignored, as the RFC asks.
#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CodeRequest {
    /// A TV app registered in `[auth.device] clients`.
    #[schema(required = true, value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub client_id: Option<String>,
    #[schema(value_type = String, max_length = 256)]
    pub scope: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceAuthorization {
    /// Secret: only the TV holds it; poll `/auth/device/token` with it.
    pub device_code: String,
    /// Show it: `XXXX-XXXX`.
    #[schema(example = "BCDF-GHJK")]
    pub user_code: String,
    pub verification_uri: String,
    /// The same with the code filled in: what the QR code encodes.
    pub verification_uri_complete: String,
    /// Seconds the codes are valid.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

/// RFC 8628 §3.4 parameters.
#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct TokenRequest {
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    #[schema(required = true, value_type = String, pattern = "^urn:ietf:params:oauth:grant-type:device_code$")]
    pub grant_type: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    pub device_code: Option<String>,
    #[schema(required = true, value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub client_id: Option<String>,
}

/// The device flow's error body: RFC 6749 §5.2 `error` plus the request id.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceErrorBody {
    /// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
    /// `invalid_grant`, `invalid_client`, `unsupported_grant_type` or `invalid_request`.
    pub error: String,
    /// Absent when the edge, not the device flow, refused the request.
    #[schema(required = false)]
    pub error_description: String,
    /// The same as `error`.
    pub code: String,
    pub request_id: String,
    /// With `slow_down`: the interval (seconds) this device code must keep from now on.
    pub interval: Option<u64>,
}

fn bad(why: &'static str) -> Error {
    Error::DeviceGrant(DeviceError::InvalidRequest(why))
}

/// A form (`application/x-www-form-urlencoded`, the RFC's) or JSON body; anything malformed
/// is the RFC's `invalid_request`.
fn form_or_json<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, Error> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match kind.as_str() {
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes(body).map_err(|_| bad("the form body cannot be read"))
        }
        "application/json" => serde_json::from_slice(body)
            .map_err(|_| bad("the JSON body is malformed or of the wrong shape")),
        _ => Err(bad(
            "send the parameters as application/x-www-form-urlencoded or application/json",
        )),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Ask for a device code and a user code (RFC 8628 §3.1).
#[utoipa::path(post, path = "/auth/device/code", tag = "device",
    request_body(content = CodeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = DeviceAuthorization),
        (status = 400, description = "invalid_request: missing client_id, malformed body or scope", body = DeviceErrorBody),
        (status = 401, description = "invalid_client: client_id is not a registered TV app", body = DeviceErrorBody),
        (status = 404, description = "The device flow is not configured", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 429, description = "Too many codes asked from this network (Retry-After)", body = ErrorBody),
        (status = 503, description = "Redis is down", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.device_code")]
pub async fn code(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    auth.device_settings()?;
    let req: CodeRequest = form_or_json(&headers, &body)?;
    let client_id = req.client_id.ok_or(bad("client_id is required"))?;
    let s = auth
        .device_start(&client_id, req.scope.as_deref(), &client, Utc::now())
        .await?;
    Ok(no_store(
        Json(DeviceAuthorization {
            device_code: s.device_code,
            user_code: s.user_code,
            verification_uri: s.verification_uri,
            verification_uri_complete: s.verification_uri_complete,
            expires_in: s.expires_in,
            interval: s.interval,
        })
        .into_response(),
    ))
}

/// Poll for the tokens (RFC 8628 §3.4); until the viewer decides, the RFC's errors (§3.5).
#[utoipa::path(post, path = "/auth/device/token", tag = "device",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Approved: the same pair as a password login", body = TokenPair),
        (status = 400, description = "authorization_pending, slow_down (interval + 5 s), access_denied, expired_token, invalid_grant (unknown, spent or malformed code), unsupported_grant_type, invalid_request", body = DeviceErrorBody),
        (status = 401, description = "invalid_client", body = DeviceErrorBody),
        (status = 404, description = "The device flow is not configured", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 503, description = "Redis or the database is down", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.device_token")]
pub async fn token(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    auth.device_settings()?;
    let req: TokenRequest = form_or_json(&headers, &body)?;
    let grant_type = req.grant_type.ok_or(bad("grant_type is required"))?;
    let device_code = req.device_code.ok_or(bad("device_code is required"))?;
    let client_id = req.client_id.ok_or(bad("client_id is required"))?;
    let pair = auth
        .device_poll(&grant_type, &device_code, &client_id, &client, Utc::now())
        .await?;
    Ok(no_store(Json(pair).into_response()))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct QrQuery {
    /// The user code, `XXXX-XXXX` (any case, dash optional).
    #[param(required = true, value_type = String, pattern = "^[BCDFGHJKLMNPQRSTVWXZbcdfghjklmnpqrstvwxz]{4}-?[BCDFGHJKLMNPQRSTVWXZbcdfghjklmnpqrstvwxz]{4}$")]
    pub code: Option<String>,
}

/// The QR code of `verification_uri_complete` for a user code, as SVG.
#[utoipa::path(get, path = "/auth/device/qr", tag = "device", params(QrQuery),
    responses(
        (status = 200, description = "image/svg+xml"),
        (status = 400, description = "invalid_request: not a user code (the device flow's body), or a refusal of the edge", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn qr(
    State(auth): State<Arc<Auth>>,
    Query(q): Query<QrQuery>,
) -> Result<Response, Error> {
    let d = auth.device_settings()?;
    // any well-formed code is drawn: whether it exists is not told here (no oracle)
    let user_code = q
        .code
        .as_deref()
        .and_then(code::normalize)
        .ok_or(bad("code must be a user code of the form XXXX-XXXX"))?;
    let svg = pages::qr_svg(&format!(
        "{}?user_code={}",
        d.verification_uri,
        code::display(&user_code)
    ))?;
    let mut r = ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    Ok(no_store(r))
}

#[derive(Deserialize, Default)]
pub struct TvQuery {
    pub client_id: Option<String>,
    pub user_code: Option<String>,
}

/// The TV browser's page: asks for a code and shows it, its QR code and where to enter it,
/// then reloads itself every `interval` (no JavaScript) until the viewer decides.
pub async fn tv_start(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<TvQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let Some(client_id) = q.client_id else {
        return pages::tv_message(lang, StatusCode::BAD_REQUEST, pages::Msg::NoClient, None);
    };
    let started = match auth
        .device_start(&client_id, None, &client, Utc::now())
        .await
    {
        Ok(s) => s,
        Err(e) => return pages::tv_error(lang, &e, None),
    };
    let Ok(d) = auth.device_settings() else {
        return Error::NotFound("endpoint").into_response();
    };
    let mut r = pages::tv_code(lang, &started, &client_id);
    let cookie = d.cookie_at(
        &tv_cookie(d),
        &started.device_code,
        TV_PATH,
        started.expires_in,
        "Lax",
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The TV page's reload: one poll with the code from the cookie.
pub async fn tv_wait(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<TvQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let client_id = q.client_id.unwrap_or_default();
    let again = Some(client_id.as_str());
    let Ok(d) = auth.device_settings() else {
        return Error::NotFound("endpoint").into_response();
    };
    let Some(device_code) = crate::plumbing::cookie::get(&headers, &tv_cookie(d)) else {
        return pages::tv_message(lang, StatusCode::BAD_REQUEST, pages::Msg::Expired, again);
    };
    let poll = auth
        .device_poll(
            crate::device_grant::GRANT_TYPE,
            device_code,
            &client_id,
            &client,
            Utc::now(),
        )
        .await;
    match poll {
        Ok(pair) => {
            // signed in: the TV browser gets the session cookie and goes to the site
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            set_session(&auth, d, &mut r, &pair);
            if let Ok(v) = HeaderValue::from_str(&d.cookie_at(&tv_cookie(d), "", TV_PATH, 0, "Lax"))
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            no_store(r)
        }
        Err(Error::DeviceGrant(DeviceError::AuthorizationPending)) => {
            let user_code = q
                .user_code
                .as_deref()
                .and_then(code::normalize)
                .map(|c| code::display(&c));
            pages::tv_waiting(
                lang,
                d,
                user_code.as_deref(),
                &client_id,
                d.interval.as_secs(),
            )
        }
        Err(Error::DeviceGrant(DeviceError::SlowDown { interval })) => {
            // reloaded early (by hand, a second tab): reload at the interval the code has now
            let user_code = q
                .user_code
                .as_deref()
                .and_then(code::normalize)
                .map(|c| code::display(&c));
            pages::tv_waiting(lang, d, user_code.as_deref(), &client_id, interval)
        }
        Err(Error::DeviceGrant(DeviceError::AccessDenied)) => {
            pages::tv_message(lang, StatusCode::FORBIDDEN, pages::Msg::Denied, again)
        }
        Err(Error::DeviceGrant(DeviceError::ExpiredToken | DeviceError::InvalidGrant)) => {
            pages::tv_message(lang, StatusCode::BAD_REQUEST, pages::Msg::Expired, again)
        }
        Err(e) => pages::tv_error(lang, &e, again),
    }
}

#[derive(Deserialize, Default)]
pub struct PhoneQuery {
    pub user_code: Option<String>,
}

/// The signed-in viewer, from a bearer token or the session cookie of social or device sign-in.
async fn viewer(auth: &Auth, headers: &HeaderMap) -> Option<Caller> {
    let mut names = Vec::new();
    if let Some(s) = auth.social.as_ref() {
        names.push(s.settings.access_cookie());
    }
    if let Some(d) = auth.config.device.as_ref() {
        names.push(d.access_cookie());
    }
    let token = crate::plumbing::bearer::token(headers).or_else(|| {
        names
            .iter()
            .find_map(|n| crate::plumbing::cookie::get(headers, n))
    })?;
    auth.authenticate(token, Utc::now()).await.ok()
}

/// The CSRF token of this browser: the cookie's, or a new one (then set by the page).
fn csrf_of(headers: &HeaderMap, name: &str) -> (String, bool) {
    match crate::plumbing::cookie::get(headers, name)
        .filter(|v| crate::social::flow::plausible_state(v))
    {
        Some(v) => (v.to_string(), false),
        None => (crate::social::flow::random_token(), true),
    }
}

/// The verification page on the phone: enter or confirm the code, sign in if needed, then
/// approve or deny.
pub async fn phone(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<PhoneQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let Ok(d) = auth.device_settings() else {
        return Error::NotFound("endpoint").into_response();
    };
    let (csrf, fresh) = csrf_of(&headers, d.csrf_cookie());
    let typed = q.user_code.unwrap_or_default();
    let signed_in = viewer(&auth, &headers).await;
    let view = match (&signed_in, typed.is_empty()) {
        (None, _) => PhoneView::SignIn {
            user_code: typed.clone(),
            providers: social_links(&auth, &d.activate_path, &typed),
            error: None,
        },
        (Some(_), true) => PhoneView::EnterCode { error: None },
        (Some(caller), false) => match auth.device_find(&typed, &client, caller).await {
            Ok(asking) => PhoneView::Confirm(Box::new(asking)),
            Err(e) => PhoneView::Problem(e),
        },
    };
    let mut r = pages::phone(lang, d, &csrf, view);
    if fresh {
        let c = d.cookie(d.csrf_cookie(), &csrf, 3600, "Strict");
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize, Default)]
pub struct PhoneForm {
    pub csrf: Option<String>,
    pub action: Option<String>,
    pub user_code: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// The verification page's forms: sign in, approve, deny.
pub async fn phone_post(
    State(auth): State<Arc<Auth>>,
    client: Client,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let lang = Lang::of(&headers);
    let Ok(d) = auth.device_settings() else {
        return Error::NotFound("endpoint").into_response();
    };
    let form: PhoneForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    // double submit: the form's token must be this browser's cookie (SameSite=Strict), which
    // another site can neither read nor set
    let cookie = crate::plumbing::cookie::get(&headers, d.csrf_cookie()).unwrap_or("");
    let sent = form.csrf.as_deref().unwrap_or("");
    if cookie.is_empty() || !constant_time_eq(cookie.as_bytes(), sent.as_bytes()) {
        return pages::phone(
            lang,
            d,
            cookie,
            PhoneView::Problem(Error::Forbidden("the form expired: open the page again")),
        );
    }
    let typed = form.user_code.clone().unwrap_or_default();
    let back = format!(
        "{}?user_code={}",
        d.activate_path,
        code::normalize(&typed)
            .map(|c| code::display(&c))
            .unwrap_or_default()
    );
    match form.action.as_deref() {
        Some("login") => {
            let creds = Credentials {
                email: form.email.unwrap_or_default(),
                password: form.password.unwrap_or_default(),
            };
            match auth.device_page_login(&creds, &client, Utc::now()).await {
                Ok(pair) => {
                    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
                    set_session(&auth, d, &mut r, &pair);
                    no_store(r)
                }
                Err(e) => pages::phone(
                    lang,
                    d,
                    cookie,
                    PhoneView::SignIn {
                        user_code: typed.clone(),
                        providers: social_links(&auth, &d.activate_path, &typed),
                        error: Some(e),
                    },
                ),
            }
        }
        Some(action @ ("approve" | "deny")) => {
            let Some(caller) = viewer(&auth, &headers).await else {
                return pages::phone(
                    lang,
                    d,
                    cookie,
                    PhoneView::SignIn {
                        user_code: typed.clone(),
                        providers: social_links(&auth, &d.activate_path, &typed),
                        error: None,
                    },
                );
            };
            let decision = if action == "approve" {
                Decision::Approve
            } else {
                Decision::Deny
            };
            let outcome = match auth.device_find(&typed, &client, &caller).await {
                Ok(asking) => auth
                    .device_decide(&caller, &asking, decision, Utc::now())
                    .await
                    .map(|()| asking),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(asking) => pages::phone(
                    lang,
                    d,
                    cookie,
                    PhoneView::Done {
                        decision,
                        asking: Box::new(asking),
                    },
                ),
                Err(e) => pages::phone(lang, d, cookie, PhoneView::Problem(e)),
            }
        }
        _ => pages::phone(
            lang,
            d,
            cookie,
            PhoneView::Problem(Error::BadRequest("unknown action".into())),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sign-in links to every configured provider, each bringing the viewer back to this page.
fn social_links(auth: &Auth, activate_path: &str, typed: &str) -> Vec<(String, String)> {
    let Some(social) = auth.social.as_ref() else {
        return Vec::new();
    };
    let back = match code::normalize(typed) {
        Some(c) => format!("{activate_path}?user_code={}", code::display(&c)),
        None => activate_path.to_string(),
    };
    let q = format!("return_to={}", pages::urlencode(&back));
    social
        .providers
        .iter()
        .map(|p| {
            let name = p.name();
            (name.to_string(), format!("/auth/oauth/{name}/start?{q}"))
        })
        .collect()
}
