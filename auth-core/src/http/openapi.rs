//! The OpenAPI 3 document, generated from the handlers' annotations. `docs/openapi.json` is
//! a committed copy; a test fails when it differs from what this generates.

use super::openapi_edge::EdgeAnswers;
use super::{
    accounts, device, error::ErrorBody, lifecycle, roles, sessions, social, tokens, Health,
};
use crate::keys::{Jwk, Jwks};
use crate::model::{
    Accepted, Credentials, EmailConfirmed, ForgotPassword, HistoryEntry, HistoryPage, LinkToken,
    NewRole, PasswordReset, RefreshRequest, ResetPassword, SessionList, SessionView, TokenPair,
    UpdateMe, UserView,
};
use crate::repo::roles::Role;
use crate::repo::social::Linked;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cinema auth core",
        description = "Accounts, sessions and roles of the online cinema, served behind the edge at /auth.",
    ),
    paths(
        accounts::register, accounts::login, accounts::me, accounts::update_me, accounts::history,
        lifecycle::confirm_email, lifecycle::resend, lifecycle::forgot, lifecycle::reset,
        tokens::refresh, tokens::logout, tokens::logout_all, tokens::jwks,
        sessions::list, sessions::end,
        roles::list, roles::create, roles::delete, roles::grant, roles::revoke,
        social::start, social::callback, social::link, social::list, social::unlink,
        device::code, device::token, device::qr,
        super::health,
    ),
    components(schemas(
        Credentials, RefreshRequest, UpdateMe, TokenPair, UserView, HistoryPage, HistoryEntry, NewRole,
        Role, Jwks, Jwk, ErrorBody, Health, tokens::LoggedOut, social::FlowStarted,
        social::LinkedNow, Linked, device::CodeRequest, device::DeviceAuthorization,
        device::TokenRequest, device::DeviceErrorBody, LinkToken, ForgotPassword, ResetPassword,
        Accepted, EmailConfirmed, PasswordReset, SessionView, SessionList,
    )),
    modifiers(&BearerAuth, &EdgeAnswers),
    tags(
        (name = "accounts", description = "Registration, sign-in, profile, history"),
        (name = "lifecycle", description = "Email confirmation and password reset by mailed links"),
        (name = "tokens", description = "Refresh, logout, public keys"),
        (name = "sessions", description = "The caller's signed-in devices"),
        (name = "roles", description = "Roles and grants (admin only)"),
        (name = "social", description = "Sign-in with Yandex ID, VK ID, Google, Mail.ru and OIDC providers; link and unlink"),
        (name = "device", description = "Sign-in on a TV with a code approved on a phone (RFC 8628 device authorization grant)"),
        (name = "health", description = "Health of the core"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some("JWT".into());
            components.add_security_scheme("bearer", SecurityScheme::Http(http));
        }
    }
}

/// The document as pretty JSON with a final newline (the committed file's format).
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

static DOCUMENT: LazyLock<String> = LazyLock::new(openapi_json);

pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
