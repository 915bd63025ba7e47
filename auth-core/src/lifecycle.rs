//! An account's life around sign-in, by mail: confirming the email (at sign-up, on a resend,
//! for a change of address) and resetting a forgotten password. Links carry single-use
//! tokens stored hashed (`repo/account_tokens.rs`); mails go through the outbox.

use crate::core::Auth;
use crate::email;
use crate::error::{Error, Result};
use crate::mail::templates::{Lang, Mail};
use crate::model::{
    Accepted, Caller, Client, EmailConfirmed, LoginMethod, PasswordReset, ResetPassword,
};
use crate::repo::account_tokens::{self, Purpose};
use crate::repo::{history, sessions, users};
use crate::{device, password, refresh, revocation, throttle};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Confirmation mails one account may ask for again per hour.
const RESENDS_PER_HOUR: u32 = 3;
/// Reset mails one address receives per hour at the request of one client network: a
/// stranger who asks for the owner uses up their own share, not the owner's.
const RESETS_PER_ADDRESS_AND_NETWORK_PER_HOUR: u32 = 3;
/// Reset mails one address receives per hour, whoever asks (no mail bombing from many
/// networks).
const RESETS_PER_ADDRESS_PER_HOUR: u32 = 10;
/// Email changes one account may ask for per hour, and confirmation mails one new address
/// gets per hour, whoever asks (each change sends two mails).
const EMAIL_CHANGES_PER_HOUR: u32 = 3;
/// Reset requests from one client network per hour.
const FORGOT_PER_NETWORK_PER_HOUR: u32 = 20;
const HOUR: Duration = Duration::from_secs(3600);
/// Longest token a link can carry (ours are 43 characters).
const MAX_TOKEN_CHARS: usize = 128;

/// The answer to every forgot-password request, whether or not the account exists.
pub const FORGOT_ACCEPTED: Accepted = Accepted {
    status: "accepted",
    message: "if an account has this address, a mail with a reset link is on its way",
};

/// What a mailed link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    ConfirmEmail,
    /// `first`: the account has no password yet (a social sign-up sets its first one).
    ResetPassword {
        first: bool,
    },
    ChangeEmail,
}

impl Auth {
    /// Counts an email change of `user` to `new_email` against both hourly limits (fails
    /// closed: no Redis, no mail).
    pub(crate) async fn email_change_allowed(&self, user: Uuid, new_email: &str) -> Result<()> {
        let timeout = self.config.redis_timeout;
        let by_account = format!("auth:mail:change:{user}");
        throttle::hit_strict(
            &self.redis,
            &by_account,
            EMAIL_CHANGES_PER_HOUR,
            HOUR,
            timeout,
        )
        .await?;
        let by_recipient = format!("auth:mail:to:{}", email::key_digest(new_email));
        throttle::hit_strict(
            &self.redis,
            &by_recipient,
            EMAIL_CHANGES_PER_HOUR,
            HOUR,
            timeout,
        )
        .await
    }

    /// Issues a link token and queues its mail to `to`, in the caller's transaction. False
    /// (nothing done) when mail is not configured.
    pub(crate) async fn mail_link(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        user: Uuid,
        to: &str,
        lang: Lang,
        link: Link,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(settings) = &self.config.mail else {
            return Ok(false);
        };
        let (purpose, ttl) = match link {
            Link::ConfirmEmail => (Purpose::ConfirmEmail, settings.confirm_ttl),
            Link::ChangeEmail => (Purpose::ChangeEmail, settings.confirm_ttl),
            Link::ResetPassword { .. } => (Purpose::ResetPassword, settings.reset_ttl),
        };
        // only the newest link of a kind works
        account_tokens::spend_open(&mut **tx, user, purpose, now).await?;
        let (token, hash) = refresh::generate();
        account_tokens::insert(
            &mut **tx,
            &account_tokens::NewToken {
                hash: &hash,
                user_id: user,
                purpose,
                email: to,
                now,
                expires_at: self.later(now, ttl),
            },
        )
        .await?;
        let hours = ttl.as_secs().div_ceil(3600);
        let mail = match link {
            Link::ConfirmEmail => Mail::ConfirmEmail {
                link: &settings.confirm_link(&token),
                hours,
            },
            Link::ChangeEmail => Mail::ConfirmNewEmail {
                link: &settings.confirm_link(&token),
                hours,
            },
            Link::ResetPassword { first } => Mail::ResetPassword {
                link: &settings.reset_link(&token),
                minutes: ttl.as_secs().div_ceil(60),
                first,
            },
        };
        crate::mail::queue(&mut **tx, &mail, lang, to, now).await?;
        Ok(true)
    }

    /// Follows a confirmation link: of the sign-up address, or of a new address (which then
    /// becomes the account's).
    #[tracing::instrument(name = "auth.confirm_email", skip_all)]
    pub async fn confirm_email(&self, token: &str, now: DateTime<Utc>) -> Result<EmailConfirmed> {
        let hash = link_hash(token)?;
        let purposes = [Purpose::ConfirmEmail, Purpose::ChangeEmail];
        let mut tx = self.db.begin().await?;
        let (user, spent) = lock_and_spend(&mut tx, &hash, &purposes, now).await?;
        if spent.purpose == Purpose::ChangeEmail.as_str() {
            let old = user.email.clone().unwrap_or_default();
            if old != spent.email {
                users::change_email(&mut tx, user.id, &old, &spent.email, true, now).await?;
            }
            // a link to the old address must not confirm it any more
            account_tokens::spend_open(&mut *tx, user.id, Purpose::ConfirmEmail, now).await?;
            tracing::info!(user = %user.id, "email changed");
        } else if user.email.as_deref() != Some(spent.email.as_str()) {
            // the account moved to another address since this link was mailed: void, and
            // it stays spent
            tx.commit().await?;
            return Err(Error::LinkToken);
        } else {
            users::mark_verified(&mut *tx, user.id, &spent.email).await?;
        }
        tx.commit().await?;
        Ok(EmailConfirmed {
            email: spent.email,
            email_verified: true,
        })
    }

    /// Mails the sign-up confirmation again (a few times an hour per account).
    #[tracing::instrument(name = "auth.resend_confirmation", skip_all)]
    pub async fn resend_confirmation(&self, caller: &Caller, now: DateTime<Utc>) -> Result<()> {
        if self.config.mail.is_none() {
            return Err(Error::NotFound("endpoint"));
        }
        let mut tx = self.db.begin().await?;
        let user = users::lock(&mut tx, caller.user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let Some(email) = user.email.clone() else {
            return Err(Error::Conflict("the account has no email"));
        };
        if user.email_verified {
            return Err(Error::Conflict("the email is already confirmed"));
        }
        let key = format!("auth:mail:resend:{}", user.id);
        // limits that send mail fail closed: with Redis down, no mail rather than unlimited
        throttle::hit_strict(
            &self.redis,
            &key,
            RESENDS_PER_HOUR,
            HOUR,
            self.config.redis_timeout,
        )
        .await?;
        let lang = Lang::parse(&user.lang);
        self.mail_link(&mut tx, user.id, &email, lang, Link::ConfirmEmail, now)
            .await?;
        tx.commit().await?;
        self.mail_queued.notify_one();
        Ok(())
    }

    /// Takes a forgot-password request. The answer is the same, after the same work on the
    /// request path, whether or not the account exists: the lookup and the mail happen
    /// after the answer. Only the per-network limit can refuse, and it says nothing about
    /// the address.
    #[tracing::instrument(name = "auth.forgot_password", skip_all)]
    pub async fn forgot_password(
        self: &Arc<Self>,
        raw_email: &str,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<Accepted> {
        if self.config.mail.is_none() {
            return Err(Error::NotFound("endpoint"));
        }
        let email = email::normalize(raw_email)?;
        let network = self
            .config
            .client_networks
            .of_text(client.ip.as_deref())
            .unwrap_or_else(|| crate::account::UNKNOWN_NETWORK.into());
        throttle::hit_strict(
            &self.redis,
            &format!("auth:forgot:net:{network}"),
            FORGOT_PER_NETWORK_PER_HOUR,
            HOUR,
            self.config.redis_timeout,
        )
        .await?;
        let auth = self.clone();
        tokio::spawn(async move {
            if let Err(e) = auth.mail_reset(&email, &network, now).await {
                tracing::warn!(error = %e.detail(), "password reset mail not queued");
            }
        });
        Ok(FORGOT_ACCEPTED)
    }

    /// The part of a forgot-password request nobody waits for.
    async fn mail_reset(&self, email: &str, network: &str, now: DateTime<Utc>) -> Result<()> {
        let key = format!("auth:forgot:addr:{}", email::key_digest(email));
        let timeout = self.config.redis_timeout;
        let skipped = |e: Error| {
            tracing::info!(reason = %e, "password reset mail skipped: this address got enough this hour, or the limit cannot be checked");
        };
        let from_network = format!("{key}:net:{network}");
        let limit = RESETS_PER_ADDRESS_AND_NETWORK_PER_HOUR;
        if let Err(e) = throttle::hit_strict(&self.redis, &from_network, limit, HOUR, timeout).await
        {
            skipped(e);
            return Ok(());
        }
        let Some(credential) = users::credential(&self.db, email).await? else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        let Some(user) = users::lock(&mut tx, credential.user_id).await? else {
            return Ok(());
        };
        // the owner of a confirmed address asking from a network they signed in from draws
        // on a share of its own, which strangers asking from elsewhere cannot use up (a
        // squatter's unconfirmed account gets none: its "known" networks are the squatter's)
        let known = user.email_verified
            && network != crate::account::UNKNOWN_NETWORK
            && throttle::exists(
                &self.redis,
                &crate::account::known_network_of(email, network),
                timeout,
            )
            .await;
        let share = if known { format!("{key}:known") } else { key };
        let cap = RESETS_PER_ADDRESS_PER_HOUR;
        if let Err(e) = throttle::hit_strict(&self.redis, &share, cap, HOUR, timeout).await {
            skipped(e);
            return Ok(());
        }
        let link = Link::ResetPassword {
            first: credential.password_hash.is_none(),
        };
        self.mail_link(&mut tx, user.id, email, Lang::parse(&user.lang), link, now)
            .await?;
        tx.commit().await?;
        self.mail_queued.notify_one();
        Ok(())
    }

    /// Follows a reset link: the new password is set, every session of the account ends
    /// (refresh tokens with them, live access tokens on the deny list), the address counts
    /// as confirmed (the link reached it), and login history records it.
    #[tracing::instrument(name = "auth.reset_password", skip_all)]
    pub async fn reset_password(
        &self,
        req: &ResetPassword,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<PasswordReset> {
        let hash = link_hash(&req.token)?;
        password::check_policy(&req.new_password)?;
        let new_hash = self.passwords.hash(&req.new_password).await?;
        let mut tx = self.db.begin().await?;
        let (user, spent) = lock_and_spend(&mut tx, &hash, &[Purpose::ResetPassword], now).await?;
        if user.email.as_deref() != Some(spent.email.as_str()) {
            // the account moved since: this link is void, and stays spent
            tx.commit().await?;
            return Err(Error::LinkToken);
        }
        users::set_password(&mut *tx, user.id, &spent.email, &new_hash).await?;
        account_tokens::spend_every_open(&mut *tx, user.id, now).await?;
        users::mark_verified(&mut *tx, user.id, &spent.email).await?;
        let ended = sessions::revoke_all(&mut *tx, user.id, now, "password_reset").await?;
        let device = device::classify(client.user_agent.as_deref().unwrap_or(""));
        let mut attempt =
            history::Attempt::new(LoginMethod::PasswordReset, device.as_str(), client, now);
        attempt.user_id = Some(user.id);
        attempt.success = true;
        history::record(&mut *tx, &attempt).await?;
        tx.commit().await?;
        revocation::deny(
            &self.redis,
            &ended,
            self.config.access_ttl,
            self.config.redis_timeout,
        )
        .await;
        tracing::info!(user = %user.id, sessions_ended = ended.len(), "password reset");
        Ok(PasswordReset {
            sessions_ended: ended.len(),
        })
    }
}

/// Locks the account a link token belongs to, then spends the token: a link races a
/// password change, an email change or another link of the same account to one order, and
/// two presentations of one token to a single winner.
async fn lock_and_spend(
    tx: &mut Transaction<'_, Postgres>,
    hash: &[u8],
    purposes: &[Purpose],
    now: DateTime<Utc>,
) -> Result<(users::User, account_tokens::Spent)> {
    let owner = account_tokens::owner(&mut **tx, hash, purposes, now)
        .await?
        .ok_or(Error::LinkToken)?;
    let user = users::lock(tx, owner).await?.ok_or(Error::LinkToken)?;
    let spent = account_tokens::spend(tx, hash, purposes, now)
        .await?
        .filter(|s| s.user_id == user.id)
        .ok_or(Error::LinkToken)?;
    Ok((user, spent))
}

/// The stored form of a presented link token; a malformed one gets the answer of an
/// unknown one.
fn link_hash(token: &str) -> Result<Vec<u8>> {
    let plausible = !token.is_empty()
        && token.len() <= MAX_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(Error::LinkToken);
    }
    Ok(refresh::hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_get_the_unknown_answer() {
        for bad in ["", "a b", "ü", &"a".repeat(129), "abc%00", "abc/def"] {
            assert!(matches!(link_hash(bad), Err(Error::LinkToken)), "{bad:?}");
        }
        let (token, stored) = refresh::generate();
        assert_eq!(link_hash(&token).unwrap(), stored);
    }
}
