//! Registration, login, the caller's profile and login history.

use super::error::ErrorBody;
use super::extract::{JsonBody, MailLang, Query};
use crate::error::Error;
use crate::model::{Caller, Client, Credentials, HistoryPage, TokenPair, UpdateMe, UserView};
use crate::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use std::sync::Arc;

/// Create an account with an email and a password. With mail configured, the email starts
/// unconfirmed and a confirmation link is mailed (in the `Accept-Language`: ru or en).
#[utoipa::path(post, path = "/auth/register", tag = "accounts", request_body = Credentials,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 422, description = "Invalid email or password policy", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.register")]
pub async fn register(
    State(auth): State<Arc<Auth>>,
    MailLang(lang): MailLang,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<UserView>), Error> {
    let user = auth.register(&req, lang, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Sign in with email and password; opens a session.
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "Too many attempts for this account or IP; see Retry-After", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.login")]
pub async fn login(
    State(auth): State<Arc<Auth>>,
    client: Client,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<Json<TokenPair>, Error> {
    Ok(Json(auth.login(&req, &client, Utc::now()).await?))
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "Missing, invalid or revoked access token", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.me")]
pub async fn me(State(auth): State<Arc<Auth>>, caller: Caller) -> Result<Json<UserView>, Error> {
    Ok(Json(auth.me(&caller).await?))
}

/// Change email and/or password. A password change ends every session. With mail
/// configured, a new email takes effect when the link mailed to it is followed (202; the old
/// address gets a notice).
#[utoipa::path(patch, path = "/auth/me", tag = "accounts", security(("bearer" = [])), request_body = UpdateMe,
    responses(
        (status = 200, body = UserView),
        (status = 202, description = "Email change waits for the new address's confirmation", body = UserView),
        (status = 401, description = "Wrong current password or invalid token", body = ErrorBody),
        (status = 409, description = "The new email is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.update_me")]
pub async fn update_me(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    JsonBody(req): JsonBody<UpdateMe>,
) -> Result<(StatusCode, Json<UserView>), Error> {
    let (user, pending) = auth.update_me(&caller, &req, Utc::now()).await?;
    let status = if pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(user)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The caller's sign-in attempts, newest first.
#[utoipa::path(get, path = "/auth/me/history", tag = "accounts", security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, body = HistoryPage),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Bad cursor or limit", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.history")]
pub async fn history(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, Error> {
    let page = auth
        .history(&caller, q.cursor.as_deref(), q.limit, Utc::now())
        .await?;
    Ok(Json(page))
}
