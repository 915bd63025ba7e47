//! The HTTP face of the core: an axum router of thin handlers under `/auth`.

mod accounts;
pub mod db_guard;
mod device;
mod device_pages;
pub mod error;
pub mod extract;
mod lifecycle;
mod openapi;
mod openapi_edge;
pub mod request_id;
mod roles;
mod sessions;
mod social;
mod tokens;

use crate::error::Error;
use crate::Auth;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use std::sync::Arc;

pub use openapi::openapi_json;

pub fn router(auth: Arc<Auth>) -> Router {
    let mut routes = Router::new();
    // the phone's verification page, at the path of `[auth.device] verification_uri`
    if let Some(d) = auth.config.device.as_ref() {
        routes = routes.route(
            &d.activate_path,
            get(device::phone).post(device::phone_post),
        );
    }
    routes
        .route("/auth/register", post(accounts::register))
        .route("/auth/login", post(accounts::login))
        .route("/auth/refresh", post(tokens::refresh))
        .route("/auth/logout", post(tokens::logout))
        .route("/auth/logout-all", post(tokens::logout_all))
        .route("/auth/me", get(accounts::me).patch(accounts::update_me))
        .route("/auth/me/history", get(accounts::history))
        .route("/auth/email/confirm", post(lifecycle::confirm_email))
        .route("/auth/email/resend", post(lifecycle::resend))
        .route("/auth/password/forgot", post(lifecycle::forgot))
        .route("/auth/password/reset", post(lifecycle::reset))
        .route("/auth/sessions", get(sessions::list))
        .route("/auth/sessions/{id}", delete(sessions::end))
        .route("/auth/roles", get(roles::list).post(roles::create))
        .route("/auth/roles/{name}", delete(roles::delete))
        .route(
            "/auth/users/{id}/roles/{name}",
            put(roles::grant).delete(roles::revoke),
        )
        .route("/auth/oauth/{provider}/start", get(social::start))
        .route("/auth/oauth/{provider}/callback", get(social::callback))
        .route("/auth/oauth/{provider}/link", post(social::link))
        .route("/auth/social", get(social::list))
        .route("/auth/social/{provider}", delete(social::unlink))
        .route("/auth/device", get(device::tv_start))
        .route("/auth/device/wait", get(device::tv_wait))
        .route("/auth/device/code", post(device::code))
        .route("/auth/device/token", post(device::token))
        .route("/auth/device/qr", get(device::qr))
        .route("/auth/.well-known/jwks.json", get(tokens::jwks))
        .route("/auth/openapi.json", get(openapi::serve))
        .route("/auth/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            db_guard::guard,
        ))
        .layer(axum::middleware::from_fn(request_id::scope))
        .with_state(auth)
}

async fn not_found() -> Error {
    Error::NotFound("endpoint")
}

async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({
            "error": "method not allowed",
            "code": "method_not_allowed",
            "request_id": request_id::current(),
        })),
    )
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// `up` or `down`.
    pub database: &'static str,
}

/// The core and its database: 503 while the database is unreachable (see `/_edge/ready`).
#[utoipa::path(get, path = "/auth/health", tag = "health",
    responses((status = 200, body = Health), (status = 503, description = "Database down", body = Health)))]
pub async fn health(State(auth): State<Arc<Auth>>) -> (StatusCode, Json<Health>) {
    let up = db_guard::probe(&auth).await;
    let (status, health) = if up {
        (
            StatusCode::OK,
            Health {
                status: "ok",
                database: "up",
            },
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                status: "degraded",
                database: "down",
            },
        )
    };
    (status, Json(health))
}
