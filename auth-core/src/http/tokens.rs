//! Token endpoints: refresh, logout, logout-all and the public keys.

use super::error::ErrorBody;
use super::extract::JsonBody;
use crate::error::Error;
use crate::keys::Jwks;
use crate::model::{Caller, RefreshRequest, TokenPair};
use crate::plumbing::cookie;
use crate::Auth;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use std::sync::Arc;

/// Exchange a refresh token for a new pair. The presented token is spent; presenting it
/// again after the grace window revokes the session. A browser signed in through a provider
/// sends no body: its refresh token is in the HttpOnly refresh cookie, and the answer sets
/// both cookies anew.
#[utoipa::path(post, path = "/auth/refresh", tag = "tokens", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.refresh")]
pub async fn refresh(State(auth): State<Arc<Auth>>, req: Request) -> Result<Response, Error> {
    let no_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() == b"0");
    let from_cookie = auth
        .social
        .as_ref()
        .and_then(|s| cookie::get(req.headers(), &s.refresh_cookie()))
        .filter(|_| no_body)
        .map(str::to_string);
    if let Some(token) = from_cookie {
        let pair = auth.refresh(&token, Utc::now()).await?;
        let mut r = Json(&pair).into_response();
        super::social::set_session_cookies(&auth, &mut r, &pair);
        return Ok(r);
    }
    let JsonBody(body) = JsonBody::<RefreshRequest>::from_request(req, &()).await?;
    Ok(Json(auth.refresh(&body.refresh_token, Utc::now()).await?).into_response())
}

/// End this session.
#[utoipa::path(post, path = "/auth/logout", tag = "tokens", security(("bearer" = [])),
    responses((status = 204, description = "Session ended"), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.logout")]
pub async fn logout(State(auth): State<Arc<Auth>>, caller: Caller) -> Result<StatusCode, Error> {
    auth.logout(&caller, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoggedOut {
    pub sessions_ended: usize,
}

/// End every session of the caller, on every device.
#[utoipa::path(post, path = "/auth/logout-all", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = LoggedOut), (status = 401, body = ErrorBody)))]
#[tracing::instrument(skip_all, name = "http.logout_all")]
pub async fn logout_all(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
) -> Result<Json<LoggedOut>, Error> {
    let sessions_ended = auth.logout_all(&caller, Utc::now()).await?;
    Ok(Json(LoggedOut { sessions_ended }))
}

/// Public keys that verify access tokens (RFC 7517); the edge and other services cache them.
#[utoipa::path(get, path = "/auth/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, body = Jwks)))]
#[tracing::instrument(skip_all, name = "http.jwks")]
pub async fn jwks(State(auth): State<Arc<Auth>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(auth.jwks()),
    )
}
