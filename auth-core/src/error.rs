//! The auth core's one error type. Its mapping to HTTP lives in `http/error.rs`.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON, or not the JSON expected.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed JSON of the wrong shape (missing or unknown field, wrong type).
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A field has a value we refuse: `field` names it for the client.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    /// Wrong email or password; the same for an unknown email, on purpose.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A refresh token that is unknown, expired, revoked or reused.
    #[error("{0}")]
    InvalidRefresh(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    /// A social sign-in whose state is missing, unknown, used, expired, for another provider,
    /// or started in another browser.
    #[error("{0}")]
    OAuthFlow(&'static str),
    /// The provider sent the user back with `error=` (the user declined, or the provider
    /// refused): its error code, as it sent it.
    #[error("the provider did not sign the user in: {0}")]
    ProviderDenied(String),
    /// A provider answered wrongly, slowly or not at all: the detail is logged, not sent.
    #[error("sign-in with {provider} failed at the provider")]
    Provider { provider: String, detail: String },
    /// A provider's email matches an existing account: never linked automatically.
    #[error("{0}")]
    AccountExists(&'static str),
    #[error("too many attempts")]
    Throttled { retry_after: Duration },
    /// A mailed link's token that is unknown, spent, expired, malformed or of another kind:
    /// one answer for all, so nobody learns which tokens ever existed.
    #[error("the link is invalid, used or expired: ask for a new one")]
    LinkToken,
    /// An RFC 8628 answer of the device flow's endpoints (`error` is the RFC's code).
    #[error("{}", .0.description())]
    DeviceGrant(DeviceError),
    /// A dependency is down or saturated: try again shortly.
    #[error("{0} unavailable")]
    Unavailable(Dependency),
    /// A bug or an unexpected database answer: logged in full, sent as a bare 500.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message for an operator (CLI, start-up log): internal details included, which an
    /// HTTP client never sees.
    pub fn detail(&self) -> String {
        match self {
            Error::Internal(detail) => detail.clone(),
            Error::Provider { provider, detail } => format!("{provider}: {detail}"),
            other => other.to_string(),
        }
    }
}

/// The device flow's errors, named as RFC 8628 §3.5 and RFC 6749 §5.2 name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    AuthorizationPending,
    /// Polled faster than the interval; the code's interval is now `interval` seconds.
    SlowDown {
        interval: u64,
    },
    AccessDenied,
    ExpiredToken,
    /// Unknown, spent or malformed device code, or another client's.
    InvalidGrant,
    InvalidClient,
    UnsupportedGrantType,
    InvalidRequest(&'static str),
}

impl DeviceError {
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::AuthorizationPending => "authorization_pending",
            DeviceError::SlowDown { .. } => "slow_down",
            DeviceError::AccessDenied => "access_denied",
            DeviceError::ExpiredToken => "expired_token",
            DeviceError::InvalidGrant => "invalid_grant",
            DeviceError::InvalidClient => "invalid_client",
            DeviceError::UnsupportedGrantType => "unsupported_grant_type",
            DeviceError::InvalidRequest(_) => "invalid_request",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            DeviceError::AuthorizationPending => "the viewer has not approved the code yet",
            DeviceError::SlowDown { .. } => "polling too fast: wait the interval between polls",
            DeviceError::AccessDenied => "the viewer denied the request",
            DeviceError::ExpiredToken => "the code expired: ask for a new one",
            DeviceError::InvalidGrant => "unknown, spent or malformed device code",
            DeviceError::InvalidClient => "unknown client_id",
            DeviceError::UnsupportedGrantType => {
                "grant_type must be urn:ietf:params:oauth:grant-type:device_code"
            }
            DeviceError::InvalidRequest(why) => why,
        }
    }
}

/// What an `Unavailable` error waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// PostgreSQL: its failures open the database circuit breaker.
    Database,
    /// Redis, where social sign-ins in progress live.
    SignInStore,
    /// The bounded pool of argon2 workers is saturated.
    PasswordHashing,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dependency::Database => "database",
            Dependency::SignInStore => "sign-in store",
            Dependency::PasswordHashing => "password hashing",
        })
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Error::Unavailable(Dependency::Database)
            }
            sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                tracing::warn!(error = %e, "database connection failed");
                Error::Unavailable(Dependency::Database)
            }
            // text PostgreSQL cannot store (a NUL): a field the caller sent, never a crash
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22021") | Some("22P05")) =>
            {
                Error::BadRequest("text with a character the database cannot store (NUL)".into())
            }
            other => Error::Internal(format!("database: {other}")),
        }
    }
}

/// Turns a unique violation on `table` into `Conflict(message)`; anything else stays an error
/// of its kind. Matched by prefix: on a partitioned table PostgreSQL names the partition's
/// index (`user_emails_p3_pkey`), not the parent's.
pub fn on_unique(e: sqlx::Error, table: &str, message: &'static str) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() && db.constraint().is_some_and(|c| c.starts_with(table)) {
            return Error::Conflict(message);
        }
    }
    Error::from(e)
}
