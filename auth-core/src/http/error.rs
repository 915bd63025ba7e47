//! The one place where errors become HTTP: status, a stable `code`, and a JSON body carrying
//! the request id. Internal details are logged, never sent.

use super::request_id;
use crate::error::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unprocessable(_) | Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InvalidCredentials | Error::Unauthenticated(_) | Error::InvalidRefresh(_) => {
                StatusCode::UNAUTHORIZED
            }
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::AccountExists(_) => StatusCode::CONFLICT,
            Error::OAuthFlow(_) | Error::ProviderDenied(_) | Error::LinkToken => {
                StatusCode::BAD_REQUEST
            }
            Error::Provider { .. } => StatusCode::BAD_GATEWAY,
            Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            // RFC 6749 §5.2: 401 for a failed client authentication, 400 for the rest
            Error::DeviceGrant(crate::error::DeviceError::InvalidClient) => {
                StatusCode::UNAUTHORIZED
            }
            Error::DeviceGrant(_) => StatusCode::BAD_REQUEST,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Machine-readable reason, stable across releases (documented in docs/integration.md).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "malformed_request",
            Error::Unprocessable(_) | Error::Invalid { .. } => "invalid_request",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::InvalidCredentials => "invalid_credentials",
            Error::Unauthenticated(_) => "invalid_token",
            Error::InvalidRefresh(_) => "invalid_grant",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::AccountExists(_) => "account_exists",
            Error::OAuthFlow(_) => "invalid_state",
            Error::LinkToken => "invalid_link",
            Error::ProviderDenied(_) => "access_denied",
            Error::Provider { .. } => "provider_error",
            Error::Throttled { .. } => "too_many_attempts",
            Error::DeviceGrant(e) => e.code(),
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Error::Internal(detail) => tracing::error!(%detail, "internal error"),
            Error::Provider { provider, detail } => {
                tracing::warn!(provider, %detail, "social sign-in failed at the provider")
            }
            _ => {}
        }
        let body = match &self {
            // the RFC's shape: `error` is the code clients switch on
            Error::DeviceGrant(e) => {
                let mut body = serde_json::json!({
                    "error": e.code(),
                    "error_description": e.description(),
                    "code": e.code(),
                    "request_id": request_id::current(),
                });
                if let crate::error::DeviceError::SlowDown { interval } = e {
                    body["interval"] = serde_json::json!(interval);
                }
                body
            }
            _ => serde_json::json!({
                "error": self.to_string(),
                "code": self.code(),
                "request_id": request_id::current(),
            }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::Throttled { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            Error::Unavailable(what) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                if *what == crate::error::Dependency::Database {
                    response
                        .extensions_mut()
                        .insert(super::db_guard::DatabaseUnreachable);
                }
            }
            // The body was not read to its end: the connection cannot carry another request,
            // and saying so keeps a proxy's connection pool from reusing it (the edge would
            // otherwise send the next request into a socket hyper is closing: a 502).
            Error::PayloadTooLarge(_) | Error::UnsupportedMediaType => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Error::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
            }
            _ => {}
        }
        response
    }
}

/// The body of every error answer (edge and core alike carry `error` and `request_id`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub error: String,
    /// Stable machine-readable reason, e.g. `invalid_credentials`.
    pub code: String,
    /// The `x-request-id` of the request, for support and log search.
    pub request_id: String,
}
