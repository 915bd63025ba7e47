//! Email confirmation and password reset: the endpoints a mailed link's page calls.

use super::error::ErrorBody;
use super::extract::JsonBody;
use crate::error::Error;
use crate::model::{
    Accepted, Caller, Client, EmailConfirmed, ForgotPassword, LinkToken, PasswordReset,
    ResetPassword,
};
use crate::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use std::sync::Arc;

/// Follow a confirmation link: of the sign-up address, or of a new address (the account
/// moves to it). Access tokens carry `email_verified` from their next refresh.
#[utoipa::path(post, path = "/auth/email/confirm", tag = "lifecycle", request_body = LinkToken,
    responses(
        (status = 200, description = "Address confirmed", body = EmailConfirmed),
        (status = 400, description = "Unknown, used, expired or malformed token (one answer for all)", body = ErrorBody),
        (status = 409, description = "The new address was taken meanwhile", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.confirm_email")]
pub async fn confirm_email(
    State(auth): State<Arc<Auth>>,
    JsonBody(req): JsonBody<LinkToken>,
) -> Result<Json<EmailConfirmed>, Error> {
    Ok(Json(auth.confirm_email(&req.token, Utc::now()).await?))
}

/// Mail the sign-up confirmation again (3 an hour per account; only the newest link works).
#[utoipa::path(post, path = "/auth/email/resend", tag = "lifecycle", security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way", body = Accepted),
        (status = 409, description = "Already confirmed, or the account has no email", body = ErrorBody),
        (status = 429, description = "Asked too often; see Retry-After", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.resend_confirmation")]
pub async fn resend(
    State(auth): State<Arc<Auth>>,
    caller: Caller,
) -> Result<(StatusCode, Json<Accepted>), Error> {
    auth.resend_confirmation(&caller, Utc::now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            message: "a new confirmation link is on its way",
        }),
    ))
}

/// Ask for a password reset link. Always 202 with the same body, at the same speed, whether
/// or not an account has this address; the mail goes only to a real account.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "lifecycle", request_body = ForgotPassword,
    responses(
        (status = 202, description = "Taken (whether or not the account exists)", body = Accepted),
        (status = 422, description = "Not an email address", body = ErrorBody),
        (status = 429, description = "Too many requests from this network; see Retry-After", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.forgot_password")]
pub async fn forgot(
    State(auth): State<Arc<Auth>>,
    client: Client,
    JsonBody(req): JsonBody<ForgotPassword>,
) -> Result<(StatusCode, Json<Accepted>), Error> {
    let accepted = auth
        .forgot_password(&req.email, &client, Utc::now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Set a new password with a reset link's token (single use, 30 minutes). Ends every
/// session of the account; a social-only account gets its first password this way.
#[utoipa::path(post, path = "/auth/password/reset", tag = "lifecycle", request_body = ResetPassword,
    responses(
        (status = 200, description = "Password set; every session ended", body = PasswordReset),
        (status = 400, description = "Unknown, used, expired or malformed token (one answer for all)", body = ErrorBody),
        (status = 422, description = "The new password breaks the policy (the token is not spent)", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, name = "http.reset_password")]
pub async fn reset(
    State(auth): State<Arc<Auth>>,
    client: Client,
    JsonBody(req): JsonBody<ResetPassword>,
) -> Result<Json<PasswordReset>, Error> {
    Ok(Json(auth.reset_password(&req, &client, Utc::now()).await?))
}
