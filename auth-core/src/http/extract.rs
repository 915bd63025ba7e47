//! Extractors that turn bad input into `Error`s (so every rejection is our JSON), and the
//! authenticated caller.

use crate::error::Error;
use crate::model::{Caller, Client};
use crate::Auth;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Largest request body the core reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body: `application/json`, at most `BODY_LIMIT` bytes, valid UTF-8 JSON of shape `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge(BODY_LIMIT)
                } else {
                    Error::BadRequest("cannot read the request body".into())
                }
            })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => Error::Unprocessable(e.to_string()),
                _ => Error::BadRequest(format!("malformed JSON: {e}")),
            }
        })
    }
}

/// A body of any type, at most `BODY_LIMIT` bytes; past it our 413, which closes the
/// connection (the unread rest cannot precede another request on it).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge(BODY_LIMIT)
                } else {
                    Error::BadRequest("cannot read the request body".into())
                }
            })
    }
}

/// A query string of shape `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(Query)
            .map_err(|e| Error::BadRequest(format!("query string: {e}")))
    }
}

impl FromRequestParts<Arc<Auth>> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, auth: &Arc<Auth>) -> Result<Self, Error> {
        let bearer = crate::plumbing::bearer::token(&parts.headers);
        // a browser signed in through a provider holds the token in the cookie the edge reads
        let token = bearer
            .or_else(|| {
                let name = auth.social.as_ref()?.settings.access_cookie();
                crate::plumbing::cookie::get(&parts.headers, &name)
            })
            .ok_or(Error::Unauthenticated("a bearer access token is required"))?;
        auth.authenticate(token, chrono::Utc::now()).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    /// The edge sets `x-real-ip` from the socket (or a trusted proxy's `X-Forwarded-For`) and
    /// overwrites whatever a client sent; the core listens on loopback only.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // header bytes are kept as the client sent them (UTF-8 in practice, e.g. a TV's
        // localised User-Agent), capped in length
        let text = |name| {
            parts.headers.get(name).map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(512)
                    .collect::<String>()
            })
        };
        let ip = text("x-real-ip").filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        Ok(Client {
            ip,
            user_agent: text("user-agent"),
        })
    }
}

/// Path parameters of shape `T` (a bad percent-encoding is our 400, not axum's text).
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| Error::BadRequest(e.body_text()))
    }
}

/// The language of the mails an account gets, from the sign-up request's
/// `Accept-Language` (Russian or English).
pub struct MailLang(pub crate::mail::templates::Lang);

impl<S: Send + Sync> FromRequestParts<S> for MailLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let v = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(MailLang(
            crate::mail::templates::Lang::from_accept_language(v),
        ))
    }
}
