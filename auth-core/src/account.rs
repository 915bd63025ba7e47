//! Accounts: registration, password login, the caller's profile and login history.

use crate::core::Auth;
use crate::device;
use crate::email;
use crate::error::{Error, Result};
use crate::lifecycle::Link;
use crate::mail::templates::{Lang, Mail};
use crate::model::{
    Caller, Client, Credentials, FailureReason, HistoryEntry, HistoryPage, LoginMethod, TokenPair,
    UpdateMe, UserView,
};
use crate::password;
use crate::repo::{history, sessions, users};
use crate::{refresh, revocation, throttle};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

pub const HISTORY_DEFAULT_LIMIT: u32 = 20;
pub const HISTORY_MAX_LIMIT: u32 = 100;
/// How long a network the owner signed in from is spared the pacing of an attacked account.
const KNOWN_NETWORK_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

impl Auth {
    #[tracing::instrument(name = "auth.register", skip_all)]
    pub async fn register(
        &self,
        req: &Credentials,
        lang: Lang,
        now: DateTime<Utc>,
    ) -> Result<UserView> {
        let email = email::normalize(&req.email)?;
        password::check_policy(&req.password)?;
        let hash = self.passwords.hash(&req.password).await?;
        let id = Uuid::now_v7();
        let mut tx = self.db.begin().await?;
        let new = users::NewUser {
            id,
            email: &email,
            email_verified: false,
            lang: lang.as_str(),
            now,
        };
        users::insert(&mut tx, &new, Some(&hash)).await?;
        // the confirmation mail commits with the account, or neither does
        let queued = self
            .mail_link(&mut tx, id, &email, lang, Link::ConfirmEmail, now)
            .await?;
        tx.commit().await?;
        if queued {
            self.mail_queued.notify_one();
        }
        tracing::info!(user = %id, "account created");
        Ok(UserView {
            id,
            email: Some(email),
            roles: Vec::new(),
            has_password: true,
            email_verified: false,
            created_at: now,
        })
    }

    /// Creates an account with roles, in one transaction (the admin CLI: the operator vouches
    /// for the address, so it is confirmed).
    #[tracing::instrument(skip_all, name = "account.create_user", err(level = "info"))]
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> Result<UserView> {
        let id = Uuid::now_v7();
        let mut tx = self.db.begin().await?;
        let new = users::NewUser {
            id,
            email,
            email_verified: true,
            lang: Lang::En.as_str(),
            now,
        };
        users::insert(&mut tx, &new, password_hash).await?;
        for role in roles {
            if crate::repo::roles::builtin(&mut *tx, role).await?.is_none() {
                return Err(Error::NotFound("role"));
            }
            users::grant(&mut *tx, id, role).await?;
        }
        tx.commit().await?;
        tracing::info!(user = %id, "account created");
        Ok(UserView {
            id,
            email: Some(email.to_string()),
            roles: roles.to_vec(),
            has_password: password_hash.is_some(),
            email_verified: true,
            created_at: now,
        })
    }

    /// Checks the password and opens a session. An unknown email and a wrong password get the
    /// same error after the same work (a dummy hash is verified), and both are recorded.
    #[tracing::instrument(name = "auth.login", skip_all, err(level = "info"))]
    pub async fn login(
        &self,
        req: &Credentials,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let result = self.password_login(req, client, now).await;
        self.stats.password_logins.record(&result);
        result
    }

    async fn password_login(
        &self,
        req: &Credentials,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let device = device::classify(client.user_agent.as_deref().unwrap_or(""));
        let mut attempt =
            history::Attempt::new(LoginMethod::Password, device.as_str(), client, now);
        // not an address we could have registered: the same answer as a wrong password
        let Ok(email) = email::normalize(&req.email) else {
            attempt.failure_reason = Some(FailureReason::InvalidEmail);
            history::record(&self.db, &attempt).await?;
            return Err(Error::InvalidCredentials);
        };
        let account_key = account_throttle_key(&email);
        let keys = self.throttle_keys(&account_key, client);
        if let Some(retry_after) = self.throttled(&keys).await {
            attempt.failure_reason = Some(FailureReason::Throttled);
            history::record(&self.db, &attempt).await?;
            return Err(Error::Throttled { retry_after });
        }
        if let Err(e) = self.slow_down(&account_key, &keys).await {
            attempt.failure_reason = Some(FailureReason::Throttled);
            history::record(&self.db, &attempt).await?;
            return Err(e);
        }
        let credential = users::credential(&self.db, &email).await?;
        let hash = credential.as_ref().and_then(|c| c.password_hash.as_deref());
        let checked_hash = hash.map(str::to_owned);
        // no stored password can be this long (the policy caps it): refuse without hashing,
        // alike for known and unknown emails
        let ok = req.password.len() <= password::MAX_CHARS * 4
            && self.passwords.verify(&req.password, hash).await?;
        attempt.user_id = credential.as_ref().map(|c| c.user_id);
        let Some(credential) = credential.filter(|_| ok) else {
            attempt.failure_reason = Some(if attempt.user_id.is_some() {
                FailureReason::WrongPassword
            } else {
                FailureReason::UnknownEmail
            });
            history::record(&self.db, &attempt).await?;
            self.count_failure(&account_key).await;
            return Err(Error::InvalidCredentials);
        };
        let checked = Checked {
            password: Some((&email, checked_hash.as_deref())),
            session: None,
        };
        let pair = self
            .open_session(
                credential.user_id,
                device.as_str(),
                client,
                now,
                Some(&checked),
            )
            .await?;
        attempt.success = true;
        history::record(&self.db, &attempt).await?;
        // this network's count starts again and it is known from now on; the account-wide
        // failures stay (clearing them would hand an attacker a fresh start)
        let timeout = self.config.redis_timeout;
        throttle::clear(&self.redis, &keys.account_network, timeout).await;
        throttle::remember(&self.redis, &keys.known, KNOWN_NETWORK_TTL, timeout).await;
        Ok(pair)
    }

    fn throttle_keys(&self, account_key: &str, client: &Client) -> ThrottleKeys {
        let network = self.config.client_networks.of_text(client.ip.as_deref());
        let net = network.as_deref().unwrap_or(UNKNOWN_NETWORK);
        ThrottleKeys {
            account_network: format!("{account_key}:net:{net}"),
            known: known_network_key(account_key, net),
            network: network.map(|n| format!("auth:login:net:{n}")),
        }
    }

    /// Counts the attempt per (account, network) and per network; the longer wait wins.
    async fn throttled(&self, keys: &ThrottleKeys) -> Option<std::time::Duration> {
        let t = &self.config.throttle;
        let timeout = self.config.redis_timeout;
        let by_account = throttle::hit(
            &self.redis,
            &keys.account_network,
            t.per_account,
            t.window,
            timeout,
        )
        .await;
        let by_network = match &keys.network {
            Some(key) => throttle::hit(&self.redis, key, t.per_ip, t.window, timeout).await,
            None => None,
        };
        by_account.max(by_network)
    }

    /// Paces attempts on an account under attack (failures from anywhere past
    /// `per_account`): one schedule per account, so attempts sent in parallel queue up, and
    /// past `slowdown_max` of queue they are refused. A network the owner signed in from is
    /// not paced: an attack never locks the owner out, nor slows them down at home.
    async fn slow_down(&self, account_key: &str, keys: &ThrottleKeys) -> Result<()> {
        let t = &self.config.throttle;
        let timeout = self.config.redis_timeout;
        let failures = throttle::count(&self.redis, account_key, timeout).await;
        let spacing = throttle::slowdown(failures, t.per_account, t.slowdown_step, t.slowdown_max);
        if spacing.is_zero() || throttle::exists(&self.redis, &keys.known, timeout).await {
            return Ok(());
        }
        let pace_key = format!("{account_key}:pace");
        match throttle::pace(&self.redis, &pace_key, spacing, t.slowdown_max, timeout).await {
            Ok(wait) => {
                if !wait.is_zero() {
                    tracing::debug!(failures, wait = ?wait, "login throttle: account under attack, attempt paced");
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Err(retry_after) => Err(Error::Throttled { retry_after }),
        }
    }

    async fn count_failure(&self, account_key: &str) {
        let t = &self.config.throttle;
        // the verdict is not used: this counter only slows attempts down
        let _ = throttle::hit(
            &self.redis,
            account_key,
            u32::MAX,
            t.window,
            self.config.redis_timeout,
        )
        .await;
    }

    /// A new session with its first refresh token and an access token. With `checked`, the
    /// password that let the caller in must still be the account's when the session is
    /// written (a reset committed meanwhile wins).
    #[tracing::instrument(skip_all, name = "account.open_session", err(level = "info"))]
    pub(crate) async fn open_session(
        &self,
        user: Uuid,
        device: &str,
        client: &Client,
        now: DateTime<Utc>,
        checked: Option<&Checked<'_>>,
    ) -> Result<TokenPair> {
        let session = Uuid::now_v7();
        let expires_at = self.later(now, self.config.refresh_ttl);
        let (token, hash) = refresh::generate();
        let mut tx = self.db.begin().await?;
        let mut authenticated_at = None;
        if let Some(checked) = checked {
            still_holds(&mut tx, user, checked, now).await?;
            // vouched for by another session alone (a TV approved from a phone): its holder
            // proved who they are when that session's did, not now
            if let (None, Some(voucher)) = (checked.password, checked.session) {
                authenticated_at = sessions::opened_at(&mut *tx, voucher).await?;
            }
        }
        sessions::create(
            &mut *tx,
            &sessions::NewSession {
                id: session,
                user_id: user,
                now,
                expires_at,
                device,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip.clone(),
                authenticated_at,
            },
        )
        .await?;
        sessions::add_refresh(&mut *tx, session, &hash, now, expires_at).await?;
        let facts = users::token_facts(&mut *tx, user).await?;
        tx.commit().await?;
        self.token_pair(user, session, facts, token, now)
    }

    #[tracing::instrument(skip_all, name = "account.me", err(level = "info"))]
    pub async fn me(&self, caller: &Caller) -> Result<UserView> {
        self.profile(caller.user_id).await
    }

    /// The account as the API shows it: profile, roles, whether a password is set.
    #[tracing::instrument(skip_all, name = "account.profile", err(level = "info"))]
    pub(crate) async fn profile(&self, id: Uuid) -> Result<UserView> {
        let user = users::by_id(&self.db, id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let credential = match &user.email {
            Some(email) => users::credential(&self.db, email).await?,
            None => None,
        };
        let roles = users::roles(&self.db, user.id).await?;
        Ok(UserView {
            id: user.id,
            email: user.email,
            roles,
            has_password: credential.is_some_and(|c| c.password_hash.is_some()),
            email_verified: user.email_verified,
            created_at: user.created_at,
        })
    }

    /// Changes email and/or password after checking the current password. A new password
    /// ends every session of the account. With mail configured, a new email takes effect
    /// only when the link mailed to it is followed (the old address gets a notice); the
    /// answer says so with `true`.
    #[tracing::instrument(name = "auth.update_me", skip_all)]
    pub async fn update_me(
        &self,
        caller: &Caller,
        req: &UpdateMe,
        now: DateTime<Utc>,
    ) -> Result<(UserView, bool)> {
        if req.email.is_none() && req.password.is_none() {
            return Err(Error::Invalid {
                field: "email",
                message: "give a new email, a new password, or both",
            });
        }
        let new_email = req.email.as_deref().map(email::normalize).transpose()?;
        if let Some(p) = &req.password {
            password::check_policy(p)?;
        }
        let user = users::by_id(&self.db, caller.user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        // an account without an email has no password either: nothing to check it against
        let Some(user_email) = user.email.clone() else {
            return Err(Error::InvalidCredentials);
        };
        // guesses of the current password count per session (a stolen access token cannot
        // guess for long) and toward the account's slow-down, never toward a lockout that
        // failed logins elsewhere could cause
        let account_key = account_throttle_key(&user_email);
        let t = &self.config.throttle;
        if let Some(retry_after) = throttle::hit(
            &self.redis,
            &format!("{account_key}:sid:{}", caller.session_id),
            t.per_account,
            t.window,
            self.config.redis_timeout,
        )
        .await
        {
            return Err(Error::Throttled { retry_after });
        }
        let credential = users::credential(&self.db, &user_email).await?;
        let current = credential.as_ref().and_then(|c| c.password_hash.as_deref());
        if !self
            .passwords
            .verify(&req.current_password, current)
            .await?
        {
            self.count_failure(&account_key).await;
            return Err(Error::InvalidCredentials);
        }
        let new_hash = match &req.password {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        let changes_email = new_email.as_deref().filter(|e| *e != user_email.as_str());
        if let (Some(new), Some(_)) = (changes_email, &self.config.mail) {
            self.email_change_allowed(user.id, new).await?;
        }
        let mut tx = self.db.begin().await?;
        let checked = Checked {
            password: Some((&user_email, current)),
            session: Some(caller.session_id),
        };
        still_holds(&mut tx, user.id, &checked, now).await?;
        if new_hash.is_some() {
            // a new password voids every link mailed before it (an email change an intruder
            // asked for among them); a change asked for in this same request is issued below
            crate::repo::account_tokens::spend_every_open(&mut *tx, user.id, now).await?;
        }
        let mut email = user_email.as_str();
        let mut pending = false;
        if let Some(new) = changes_email {
            if self.config.mail.is_some() {
                // taken now: say so now (it is checked again when the link is followed)
                if users::credential(&mut *tx, new).await?.is_some() {
                    return Err(Error::Conflict("email is already registered"));
                }
                let lang = Lang::parse(&user.lang);
                self.mail_link(&mut tx, user.id, new, lang, Link::ChangeEmail, now)
                    .await?;
                let notice = Mail::EmailChangeNotice { new_email: new };
                crate::mail::queue(&mut *tx, &notice, lang, &user_email, now).await?;
                pending = true;
            } else {
                users::change_email(&mut tx, user.id, &user_email, new, false, now).await?;
                email = new;
            }
        }
        let mut ended = Vec::new();
        if let Some(hash) = &new_hash {
            users::set_password(&mut *tx, user.id, email, hash).await?;
            ended = sessions::revoke_all(&mut *tx, user.id, now, "password_changed").await?;
        }
        tx.commit().await?;
        if pending {
            self.mail_queued.notify_one();
        }
        revocation::deny(
            &self.redis,
            &ended,
            self.config.access_ttl,
            self.config.redis_timeout,
        )
        .await;
        Ok((self.me(caller).await?, pending))
    }

    #[tracing::instrument(name = "auth.history", skip_all)]
    pub async fn history(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<HistoryPage> {
        let limit = limit.unwrap_or(HISTORY_DEFAULT_LIMIT);
        if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
            return Err(Error::Invalid {
                field: "limit",
                message: "must be between 1 and 100",
            });
        }
        let before = match cursor {
            Some(c) => decode_cursor(c)?,
            None => (now, Uuid::max()),
        };
        let mut rows = history::page(&self.db, caller.user_id, before, i64::from(limit)).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|e| encode_cursor(e.occurred_at, e.id))
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|r| HistoryEntry {
                occurred_at: r.occurred_at,
                success: r.success,
                method: r.method,
                device: r.device,
                ip: r.ip,
                user_agent: r.user_agent,
            })
            .collect();
        Ok(HistoryPage { items, next_cursor })
    }
}

/// Throttle counters of one login attempt.
struct ThrottleKeys {
    /// Attempts on this account from this client network.
    account_network: String,
    /// Set when the account signed in from this network: it is not paced.
    known: String,
    /// Attempts from this client network (None when the edge gave no address).
    network: Option<String>,
}

/// The account's throttle key: a hash, so emails do not sit in Redis in clear.
fn account_throttle_key(email: &str) -> String {
    format!("auth:login:acct:{}", email::key_digest(email))
}

/// What the throttles call a client whose network is not known (no usable address).
pub(crate) const UNKNOWN_NETWORK: &str = "unknown";

/// The mark of a network the account's owner signed in from (set on a successful login).
pub(crate) fn known_network_key(account_key: &str, network: &str) -> String {
    format!("{account_key}:known:{network}")
}

/// `known_network_key` of an address.
pub(crate) fn known_network_of(email: &str, network: &str) -> String {
    known_network_key(&account_throttle_key(email), network)
}

/// Opaque cursor: base64url of `<micros>.<uuid>` of the last entry returned.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", at.timestamp_micros()))
}

pub fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let bad = || Error::Invalid {
        field: "cursor",
        message: "is not a cursor this API returned",
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = Utc.timestamp_micros(micros).single().ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// What a request was let in by, checked before its writes: the account's address and
/// password hash as read then, and the session that vouched for it, if one did.
pub(crate) struct Checked<'a> {
    pub password: Option<(&'a str, Option<&'a str>)>,
    pub session: Option<Uuid>,
}

/// Locks the account and checks that what let the request in still holds. Every change of
/// credentials (a reset, a password or email change) locks the same row first, so a
/// request checked before one commits either writes before it (and is undone by it: the
/// reset ends the session, spends the links) or fails here; it never writes after it.
pub(crate) async fn still_holds(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: Uuid,
    checked: &Checked<'_>,
    now: DateTime<Utc>,
) -> Result<users::User> {
    let user = users::lock(tx, user_id)
        .await?
        .ok_or(Error::InvalidCredentials)?;
    if let Some((email, hash)) = checked.password {
        let credential = users::credential(&mut **tx, email).await?;
        let same_password =
            credential.is_some_and(|c| c.user_id == user_id && c.password_hash.as_deref() == hash);
        if user.email.as_deref() != Some(email) || !same_password {
            return Err(Error::InvalidCredentials);
        }
    }
    if let Some(session) = checked.session {
        if !sessions::is_live(&mut **tx, session, now).await? {
            return Err(Error::Unauthenticated("session has ended"));
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let at = Utc.timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        for bad in ["", "!!", "YWJj", &URL_SAFE_NO_PAD.encode("12.not-a-uuid")] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn throttle_key_hides_the_email() {
        let k = account_throttle_key("ann@example.com");
        assert!(k.starts_with("auth:login:acct:"));
        assert!(!k.contains("ann"));
        assert_eq!(k.len(), "auth:login:acct:".len() + 32);
    }
}
