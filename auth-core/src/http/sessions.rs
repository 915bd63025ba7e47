//! The caller's signed-in devices: list them, end one.

use super::error::ErrorBody;
use super::extract::PathParams;
use crate::error::Error;
use crate::model::{Caller, SessionList};
use crate::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use std::sync::Arc;

/// The caller's live sessions (TV, phone, laptop…), newest first; `current` marks this one.
#[utoipa::path(get, path = "/auth/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionList)))]
#[tracing::instrument(skip_all, name = "http.sessions")]
pub async fn list(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
) -> Result<Json<SessionList>, Error> {
    Ok(Json(auth.sessions(&caller, Utc::now()).await?))
}

/// End one of the caller's sessions: its refresh token stops working and its access tokens
/// are refused at the edge within a second.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "A session id from GET /auth/sessions")),
    responses(
        (status = 204, description = "Session ended"),
        (status = 404, description = "No live session of the caller has this id", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.end_session")]
pub async fn end(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, Error> {
    // another user's id and a malformed one get the answer of an unknown one
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::NotFound("session"))?;
    auth.end_session(&caller, id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
