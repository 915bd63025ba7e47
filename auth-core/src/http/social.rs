//! Social sign-in over HTTP: start, callback, link, the linked list and unlink. Browsers get
//! redirects and cookies; apps (`mode=json`) get JSON and send the flow secret back in the
//! `X-OAuth-Flow` header.

use super::error::ErrorBody;
use super::extract::{PathParams, Query};
use crate::error::Error;
use crate::model::{Caller, Client, TokenPair};
use crate::plumbing::cookie;
use crate::repo::social::Linked;
use crate::social::service::CallbackParams;
use crate::social::{Finished, Started};
use crate::Auth;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The header an app sends the flow secret back in (browsers use the flow cookie).
pub const FLOW_HEADER: &str = "x-oauth-flow";

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// A path on this site, or a URL on an allowed origin (`social.return_to_allow`).
    pub return_to: Option<String>,
    /// `redirect` (default, browsers) or `json` (TV and mobile apps).
    #[param(value_type = String, pattern = "^(redirect|json)$")]
    pub mode: Option<String>,
}

impl StartQuery {
    fn json(&self) -> Result<bool, Error> {
        match self.mode.as_deref() {
            None | Some("redirect") => Ok(false),
            Some("json") => Ok(true),
            Some(_) => Err(Error::Invalid {
                field: "mode",
                message: "must be redirect or json",
            }),
        }
    }
}

/// A started sign-in, for apps (`mode=json`) and for link requests.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FlowStarted {
    /// Open this in a browser.
    pub authorization_url: String,
    pub state: String,
    /// Apps: send back as `X-OAuth-Flow` with the callback; absent for browsers (cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Seconds the sign-in may take.
    pub expires_in: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LinkedNow {
    pub linked: String,
}

/// Start signing in with a provider: 302 to it (browsers), or JSON (`mode=json`).
#[utoipa::path(get, path = "/auth/oauth/{provider}/start", tag = "social", params(("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "A provider of `[social]`: yandex, vk, google, mailru or a configured OIDC name"), StartQuery),
    responses(
        (status = 302, description = "To the provider; sets the flow cookie"),
        (status = 200, description = "mode=json", body = FlowStarted),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 422, description = "return_to not allowed", body = ErrorBody),
        (status = 502, description = "The provider's discovery document could not be read", body = ErrorBody),
        (status = 503, description = "The sign-in store (Redis) is down", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.oauth_start")]
pub async fn start(
    State(auth): State<Arc<Auth>>,
    PathParams(provider): PathParams<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, Error> {
    let json = q.json()?;
    let started = auth
        .oauth_start(&provider, q.return_to.as_deref(), json, None)
        .await?;
    Ok(started_response(&auth, started, true))
}

/// Start linking a provider to the signed-in account (needs a recent sign-in and, with
/// `[mail]`, a confirmed email).
#[utoipa::path(post, path = "/auth/oauth/{provider}/link", tag = "social", security(("bearer" = [])),
    params(("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "A provider of `[social]`: yandex, vk, google, mailru or a configured OIDC name"), StartQuery),
    responses(
        (status = 200, description = "Open authorization_url; browsers also get the flow cookie", body = FlowStarted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The sign-in is not recent enough, or the account's email is not confirmed yet", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.oauth_link")]
pub async fn link(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams(provider): PathParams<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, Error> {
    let json = q.json()?;
    let started = auth
        .oauth_link(&caller, &provider, q.return_to.as_deref(), json, Utc::now())
        .await?;
    // a link starts from the site's own page (fetch), which then navigates: always JSON
    Ok(started_response(&auth, started, false))
}

/// The provider sends the user back here.
#[utoipa::path(get, path = "/auth/oauth/{provider}/callback", tag = "social",
    params(("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "A provider of `[social]`: yandex, vk, google, mailru or a configured OIDC name"), CallbackParams),
    responses(
        (status = 302, description = "Signed in or linked (browsers): to return_to, with the access-token cookie"),
        (status = 200, description = "Signed in (apps)", body = TokenPair),
        (status = 400, description = "State missing, unknown, used, expired, from another browser or provider; or the provider's error=", body = ErrorBody),
        (status = 409, description = "The provider's email belongs to an existing account (sign in and link), or the identity is linked elsewhere", body = ErrorBody),
        (status = 502, description = "The provider failed (code exchange, userinfo, id_token)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.oauth_callback")]
pub async fn callback(
    State(auth): State<Arc<Auth>>,
    PathParams(provider): PathParams<String>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, Error> {
    let social = auth.social.as_ref();
    let cookie = social.and_then(|s| cookie::get(&headers, s.flow_cookie()));
    let header = headers.get(FLOW_HEADER).and_then(|v| v.to_str().ok());
    let finished = auth
        .oauth_callback(&provider, &q, cookie, header, &client, Utc::now())
        .await?;
    Ok(match finished {
        Finished::SignedIn {
            pair, json: true, ..
        } => Json(pair).into_response(),
        Finished::Linked {
            provider,
            json: true,
            ..
        } => Json(LinkedNow { linked: provider }).into_response(),
        Finished::SignedIn {
            pair, return_to, ..
        } => {
            let mut r = redirect(&return_to);
            set_session_cookies(&auth, &mut r, &pair);
            clear_flow_cookie(social, &mut r);
            r
        }
        Finished::Linked { return_to, .. } => {
            let mut r = redirect(&return_to);
            clear_flow_cookie(social, &mut r);
            r
        }
    })
}

/// The providers linked to the signed-in account.
#[utoipa::path(get, path = "/auth/social", tag = "social", security(("bearer" = [])),
    responses((status = 200, body = Vec<Linked>), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.social_accounts")]
pub async fn list(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
) -> Result<Json<Vec<Linked>>, Error> {
    Ok(Json(auth.social_accounts(&caller).await?))
}

/// Unlink a provider; refused when it is the last way to sign in.
#[utoipa::path(delete, path = "/auth/social/{provider}", tag = "social", security(("bearer" = [])),
    params(("provider" = String, Path, pattern = "^[a-z0-9_-]{1,32}$", description = "A provider of `[social]`: yandex, vk, google, mailru or a configured OIDC name")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "Not linked", body = ErrorBody),
        (status = 409, description = "The last way to sign in (no password, no other provider)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.unlink")]
pub async fn unlink(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams(provider): PathParams<String>,
) -> Result<StatusCode, Error> {
    auth.unlink_social(&caller, &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn started_response(auth: &Auth, s: Started, redirect_browser: bool) -> Response {
    if s.json {
        return Json(FlowStarted {
            authorization_url: s.authorization_url,
            state: s.state,
            flow: Some(s.binding),
            expires_in: s.expires_in,
        })
        .into_response();
    }
    let mut r = if redirect_browser {
        redirect(&s.authorization_url)
    } else {
        Json(FlowStarted {
            authorization_url: s.authorization_url,
            state: s.state,
            flow: None,
            expires_in: s.expires_in,
        })
        .into_response()
    };
    if let Some(social) = auth.social.as_ref() {
        set_cookies(&mut r, [social.flow_set_cookie(&s.binding, s.expires_in)]);
    }
    r
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => Error::Internal("redirect location is not a header value".into()).into_response(),
    }
}

fn clear_flow_cookie(social: Option<&crate::social::Social>, r: &mut Response) {
    if let Some(s) = social {
        set_cookies(r, [s.flow_set_cookie("", 0)]);
    }
}

fn set_cookies<const N: usize>(r: &mut Response, cookies: [String; N]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A browser session in cookies (see `social/cookies.rs`), when social login is on. The
/// HTTP layer writes responses; the domain (`Auth`) only says which cookies.
pub(crate) fn set_session_cookies(auth: &Auth, r: &mut Response, pair: &TokenPair) {
    if let Some(social) = auth.social.as_ref() {
        set_cookies(r, social.session_set_cookies(pair, auth.config.refresh_ttl));
    }
}
