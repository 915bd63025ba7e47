//! Token endpoints: refresh, logout, logout-all and the public keys.

use super::error::ErrorBody;
use super::extract::JsonBody;
use crate::error::Error;
use crate::keys::Jwks;
use crate::model::{Caller, RefreshRequest, TokenPair};
use crate::Auth;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use std::sync::Arc;

/// Exchange a refresh token for a new pair. The presented token is spent; presenting it
/// again after the grace window revokes the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "tokens", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.refresh")]
pub async fn refresh(
    State(auth): State<Arc<Auth>>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, Error> {
    Ok(Json(auth.refresh(&req.refresh_token, Utc::now()).await?))
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
