//! The JSON shapes of the API, shared by the domain and the HTTP layer, and described in the
//! OpenAPI document. Requests holding a password print it as `***`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "viewer@example.com", format = "email", max_length = 254)]
    pub email: String,
    /// 8–128 characters, not a common password.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Change the email, the password, or both. The current password is always required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    #[schema(max_length = 512)]
    pub current_password: String,
    #[schema(format = "email", max_length = 254)]
    pub email: Option<String>,
    /// A new password revokes every session, this one included.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

impl fmt::Debug for UpdateMe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateMe")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct TokenPair {
    /// EdDSA JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; single use: `/auth/refresh` returns the next one.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct UserView {
    pub id: Uuid,
    /// Null for an account created through a provider that shared no confirmed email.
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// False for accounts created through a social provider without a password.
    pub has_password: bool,
    /// The owner proved the address (a confirmation or reset link, or a provider vouched).
    /// Access tokens carry it as the `email_verified` claim from their next issue.
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

/// The token of a mailed link (`?token=` of the link).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    #[schema(max_length = 128)]
    pub token: String,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    #[schema(example = "viewer@example.com", format = "email", max_length = 254)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The token of the reset link.
    #[schema(max_length = 128)]
    pub token: String,
    /// 8–128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// The request is taken; what follows happens by mail.
#[derive(Serialize, ToSchema, Debug)]
pub struct Accepted {
    #[schema(example = "accepted")]
    pub status: &'static str,
    pub message: &'static str,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct EmailConfirmed {
    /// The account's address, now confirmed (for a change: the new one).
    pub email: String,
    pub email_verified: bool,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct PasswordReset {
    /// Sessions ended by the reset (every one the account had).
    pub sessions_ended: usize,
}

/// One signed-in device of the caller.
#[derive(Serialize, ToSchema, Debug)]
pub struct SessionView {
    pub id: Uuid,
    /// `web`, `mobile` or `smart_tv`.
    pub device: String,
    /// `Chrome`, `Firefox`, `Safari`, … or `unknown`.
    pub browser: &'static str,
    /// The client's network (/24 or /64 by default), not its full address.
    pub network: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The last refresh (or the sign-in).
    pub last_used_at: DateTime<Utc>,
    /// The session of the token making this request.
    pub current: bool,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

/// One sign-in attempt, as its account's owner sees it.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Entry)]
pub struct HistoryEntry {
    pub occurred_at: DateTime<Utc>,
    pub success: bool,
    /// `password` or the provider's name.
    pub method: String,
    /// `web`, `mobile` or `smart_tv`.
    pub device: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How a sign-in was attempted: login history's `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod<'a> {
    Password,
    Social {
        provider: &'a str,
    },
    /// A TV signed in by a code approved on another device (RFC 8628).
    Device,
    /// A new password set through a mailed link (every session ended).
    PasswordReset,
}

impl LoginMethod<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            LoginMethod::Password => "password",
            LoginMethod::Social { provider } => provider,
            LoginMethod::Device => "device",
            LoginMethod::PasswordReset => "password_reset",
        }
    }
}

/// Why a sign-in failed: login history's `failure_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// Not an address an account could have.
    InvalidEmail,
    /// Refused by the login throttle or its pacing, before any password check.
    Throttled,
    WrongPassword,
    UnknownEmail,
    /// A provider's email matches an account it is not linked to.
    EmailBelongsToAnotherAccount,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::InvalidEmail => "invalid_email",
            FailureReason::Throttled => "throttled",
            FailureReason::WrongPassword => "wrong_password",
            FailureReason::UnknownEmail => "unknown_email",
            FailureReason::EmailBelongsToAnotherAccount => "email_belongs_to_another_account",
        }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Lower-case letters, digits, `-` and `_`; 2–32 characters, starting with a letter.
    #[schema(example = "moderator", pattern = "^[a-z][a-z0-9_-]{1,31}$")]
    pub name: String,
    #[serde(default)]
    /// At most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub description: String,
}

/// Where a request comes from, for login history and sessions.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The verified caller of an authenticated endpoint.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}
