//! The edge's one error type for answers it gives itself; `status` is the single place where
//! an error becomes an HTTP status.

use pingora::{Error, ErrorSource, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("no route for this host and path")]
    NoRoute,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A request target the edge will not decide on (see `canonical_path`).
    #[error("invalid path: {0}")]
    InvalidPath(#[from] crate::proxy::canonical_path::PathError),
    /// `;` parameters on a route that did not opt in (`matrix_params`).
    #[error("invalid path: ';' parameters are not accepted on this route")]
    MatrixParams,
    #[error("no healthy upstream server")]
    NoHealthyUpstream,
    #[error("upstream unreachable")]
    UpstreamUnreachable,
    #[error("upstream timed out")]
    UpstreamTimeout,
    #[error("upstream sent an invalid response")]
    UpstreamProtocol,
    #[error("rate limit exceeded")]
    RateLimited { retry_after: u64 },
    #[error("rate limiter unavailable")]
    LimiterUnavailable,
    /// No token on a route that requires one.
    #[error("an access token is required")]
    TokenMissing,
    /// A token that is malformed, forged, expired, revoked or signed with an unknown key.
    #[error("invalid or expired access token")]
    TokenInvalid,
    #[error("a required role is missing")]
    Forbidden,
    /// A route with `require_verified_email` and a token whose email is not confirmed.
    #[error("confirm your email first (then refresh the access token)")]
    EmailNotVerified,
    #[error("internal error")]
    Internal,
    /// A bot-filter rule with `action = "deny"`.
    #[error("request refused")]
    BotDenied,
    /// The client's network holds `[server] max_connections_per_client` connections already.
    #[error("too many open connections from this client")]
    TooManyConnections,
    /// The body is larger than the route's `max_body`.
    #[error("request body too large")]
    BodyTooLarge,
    /// The request line and headers are larger than `[http] max_header_block`.
    #[error("request header fields too large")]
    HeaderTooLarge,
    /// The bot filter cannot store or check an answer (Redis down): fail closed.
    #[error("challenge service unavailable")]
    ChallengeUnavailable,
}

impl EdgeError {
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::NoRoute => 404,
            EdgeError::BadRequest(_) | EdgeError::InvalidPath(_) | EdgeError::MatrixParams => 400,
            EdgeError::UpstreamUnreachable | EdgeError::UpstreamProtocol => 502,
            // nothing to try now, try again soon (Retry-After): Envoy answers the same
            EdgeError::NoHealthyUpstream => 503,
            EdgeError::UpstreamTimeout => 504,
            EdgeError::RateLimited { .. } | EdgeError::TooManyConnections => 429,
            EdgeError::LimiterUnavailable | EdgeError::ChallengeUnavailable => 503,
            EdgeError::BotDenied => 403,
            EdgeError::BodyTooLarge => 413,
            EdgeError::HeaderTooLarge => 431,
            EdgeError::TokenMissing | EdgeError::TokenInvalid => 401,
            EdgeError::Forbidden | EdgeError::EmailNotVerified => 403,
            EdgeError::Internal => 500,
        }
    }

    /// The gRPC status a gRPC client gets instead of `status` (grpc/doc/statuscodes.md and
    /// its HTTP mapping; limits are RESOURCE_EXHAUSTED so clients back off, not retry).
    pub fn grpc_status(&self) -> u8 {
        const INVALID_ARGUMENT: u8 = 3;
        const PERMISSION_DENIED: u8 = 7;
        const RESOURCE_EXHAUSTED: u8 = 8;
        const UNIMPLEMENTED: u8 = 12;
        const INTERNAL: u8 = 13;
        const UNAVAILABLE: u8 = 14;
        const UNAUTHENTICATED: u8 = 16;
        const DEADLINE_EXCEEDED: u8 = 4;
        match self {
            EdgeError::NoRoute => UNIMPLEMENTED,
            EdgeError::BadRequest(_) | EdgeError::InvalidPath(_) | EdgeError::MatrixParams => {
                INVALID_ARGUMENT
            }
            EdgeError::TokenMissing | EdgeError::TokenInvalid => UNAUTHENTICATED,
            EdgeError::Forbidden | EdgeError::EmailNotVerified | EdgeError::BotDenied => {
                PERMISSION_DENIED
            }
            EdgeError::RateLimited { .. }
            | EdgeError::TooManyConnections
            | EdgeError::BodyTooLarge
            | EdgeError::HeaderTooLarge => RESOURCE_EXHAUSTED,
            EdgeError::UpstreamTimeout => DEADLINE_EXCEEDED,
            EdgeError::NoHealthyUpstream
            | EdgeError::UpstreamUnreachable
            | EdgeError::UpstreamProtocol
            | EdgeError::LimiterUnavailable
            | EdgeError::ChallengeUnavailable => UNAVAILABLE,
            EdgeError::Internal => INTERNAL,
        }
    }

    /// The stable machine-readable code of the JSON body (`code`), which clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::NoRoute => "not_found",
            EdgeError::BadRequest(_) => "bad_request",
            EdgeError::InvalidPath(_) | EdgeError::MatrixParams => "invalid_path",
            EdgeError::NoHealthyUpstream => "no_healthy_upstream",
            EdgeError::UpstreamUnreachable => "upstream_unreachable",
            EdgeError::UpstreamTimeout => "upstream_timeout",
            EdgeError::UpstreamProtocol => "upstream_error",
            EdgeError::RateLimited { .. } => "rate_limited",
            EdgeError::TooManyConnections => "too_many_connections",
            EdgeError::LimiterUnavailable => "limiter_unavailable",
            EdgeError::TokenMissing => "token_missing",
            EdgeError::TokenInvalid => "invalid_token",
            EdgeError::Forbidden => "forbidden",
            EdgeError::EmailNotVerified => "email_not_verified",
            EdgeError::Internal => "internal",
            EdgeError::BotDenied => "bot_denied",
            EdgeError::ChallengeUnavailable => "challenge_unavailable",
            EdgeError::BodyTooLarge => "body_too_large",
            EdgeError::HeaderTooLarge => "header_too_large",
        }
    }

    /// The metrics label of an upstream failure.
    pub fn upstream_kind(&self) -> Option<crate::observe::request_metrics::UpstreamError> {
        use crate::observe::request_metrics::UpstreamError as K;
        match self {
            EdgeError::UpstreamUnreachable => Some(K::Unreachable),
            EdgeError::UpstreamTimeout => Some(K::Timeout),
            EdgeError::UpstreamProtocol => Some(K::Protocol),
            EdgeError::NoHealthyUpstream => Some(K::NoHealthy),
            _ => None,
        }
    }

    /// The RFC 6750 challenge of a 401.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            EdgeError::TokenMissing => Some("Bearer"),
            EdgeError::TokenInvalid => Some(r#"Bearer error="invalid_token""#),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            EdgeError::RateLimited { retry_after } => Some((*retry_after).max(1)),
            EdgeError::NoHealthyUpstream
            | EdgeError::TooManyConnections
            | EdgeError::LimiterUnavailable
            | EdgeError::ChallengeUnavailable => Some(1),
            _ => None,
        }
    }

    /// Classifies a Pingora failure. `None` means the client is gone and no answer can be sent.
    pub fn from_proxy_error(e: &Error) -> Option<EdgeError> {
        use ErrorType::*;
        if let HTTPStatus(code) = e.etype() {
            return Some(match code {
                400..=499 => EdgeError::BadRequest("rejected"),
                504 => EdgeError::UpstreamTimeout,
                _ => EdgeError::UpstreamProtocol,
            });
        }
        match e.esource() {
            ErrorSource::Upstream => Some(match e.etype() {
                ConnectTimedout | ReadTimedout | WriteTimedout => EdgeError::UpstreamTimeout,
                ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
                | SocketError | BindError => EdgeError::UpstreamUnreachable,
                _ => EdgeError::UpstreamProtocol,
            }),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed | ReadTimedout | WriteTimedout => None,
                _ => Some(EdgeError::BadRequest("malformed request")),
            },
            ErrorSource::Internal | ErrorSource::Unset => match e.etype() {
                ConnectTimedout => Some(EdgeError::UpstreamTimeout),
                ConnectRefused | ConnectNoRoute | ConnectError => {
                    Some(EdgeError::UpstreamUnreachable)
                }
                _ => Some(EdgeError::Internal),
            },
        }
    }
}
