//! `account_tokens`: the single-use tokens mailed links carry, stored as SHA-256 hashes.

use crate::error::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    ResetPassword,
    ChangeEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ConfirmEmail => "confirm_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }
}

pub struct NewToken<'a> {
    pub hash: &'a [u8],
    pub user_id: Uuid,
    pub purpose: Purpose,
    pub email: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all, name = "db.account_tokens.insert", err(level = "warn"))]
pub async fn insert(db: impl PgExecutor<'_>, t: &NewToken<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.hash)
    .bind(t.user_id)
    .bind(t.purpose.as_str())
    .bind(t.email)
    .bind(t.now)
    .bind(t.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A newer link replaces the older ones of the same purpose: only the last mail works.
pub async fn spend_open(
    db: impl PgExecutor<'_>,
    user: Uuid,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE account_tokens SET spent_at = $3 \
         WHERE user_id = $1 AND purpose = $2 AND spent_at IS NULL",
    )
    .bind(user)
    .bind(purpose.as_str())
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Every open link of the account, whatever its kind: after a password reset or change, a
/// link mailed before it (an email change an intruder asked for) must not work.
pub async fn spend_every_open(
    db: impl PgExecutor<'_>,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE account_tokens SET spent_at = $2 WHERE user_id = $1 AND spent_at IS NULL")
        .bind(user)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow, Debug)]
pub struct Spent {
    pub user_id: Uuid,
    pub email: String,
    pub purpose: String,
}

/// Whose live token of one of `purposes` this is, without locking it: the caller locks the
/// account first and spends the token after, the order every writer of both follows (an
/// account row, then its tokens), so two of them never wait on each other in a circle.
#[tracing::instrument(skip_all, name = "db.account_tokens.owner", err(level = "warn"))]
pub async fn owner(
    db: impl PgExecutor<'_>,
    hash: &[u8],
    purposes: &[Purpose],
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let names: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM account_tokens \
         WHERE token_hash = $1 AND purpose = ANY($2) AND spent_at IS NULL AND expires_at > $3",
    )
    .bind(hash)
    .bind(names)
    .bind(now)
    .fetch_optional(db)
    .await?)
}

/// Spends a live token of one of `purposes` in the caller's transaction and returns whose it was.
/// Unknown, spent, expired and other-purpose tokens all come back None: one answer for all.
/// The row lock makes two presentations of one token race to a single winner.
#[tracing::instrument(skip_all, name = "db.account_tokens.spend", err(level = "warn"))]
pub async fn spend(
    tx: &mut Transaction<'_, Postgres>,
    hash: &[u8],
    purposes: &[Purpose],
    now: DateTime<Utc>,
) -> Result<Option<Spent>> {
    let names: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
    Ok(sqlx::query_as::<_, Spent>(
        "UPDATE account_tokens SET spent_at = $3 \
         WHERE token_hash = $1 AND purpose = ANY($2) AND spent_at IS NULL AND expires_at > $3 \
         RETURNING user_id, email, purpose",
    )
    .bind(hash)
    .bind(names)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Housekeeping: tokens expired or spent before `before`.
pub async fn delete_old(db: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM account_tokens WHERE expires_at < $1 OR spent_at < $1")
            .bind(before)
            .execute(db)
            .await?
            .rows_affected(),
    )
}
