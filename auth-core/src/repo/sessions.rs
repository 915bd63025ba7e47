//! `sessions` and `refresh_tokens`.

use crate::error::Result;
use crate::refresh::Stored;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub device: &'a str,
    pub user_agent: Option<&'a str>,
    pub ip: Option<String>,
    /// When its holder last proved who they are, if earlier than `now` (a TV session
    /// approved from a phone: the phone session's).
    pub authenticated_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, name = "db.sessions.create", err(level = "warn"))]
pub async fn create(db: impl PgExecutor<'_>, s: &NewSession<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, device, user_agent, ip, authenticated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS inet), $8)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.device)
    .bind(s.user_agent)
    .bind(s.ip.as_deref())
    .bind(s.authenticated_at)
    .execute(db)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, name = "db.sessions.add_refresh", err(level = "warn"))]
pub async fn add_refresh(
    db: impl PgExecutor<'_>,
    session: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(session)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    spent_at: Option<DateTime<Utc>>,
    revoked: bool,
}

pub struct Presented {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub stored: Stored,
}

/// Reads a presented refresh token and locks its row until the transaction ends, so two
/// concurrent refreshes of one token are judged one after the other.
#[tracing::instrument(skip_all, name = "db.sessions.lock_refresh", err(level = "warn"))]
pub async fn lock_refresh(
    tx: &mut Transaction<'_, Postgres>,
    hash: &[u8],
) -> Result<Option<Presented>> {
    let row = sqlx::query_as::<_, RefreshRow>(
        "SELECT t.session_id, s.user_id, t.expires_at, t.spent_at, \
                (s.revoked_at IS NOT NULL OR s.expires_at <= now()) AS revoked \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1 FOR UPDATE OF t",
    )
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| Presented {
        session_id: r.session_id,
        user_id: r.user_id,
        stored: Stored {
            expires_at: r.expires_at,
            spent_at: r.spent_at,
            session_revoked: r.revoked,
        },
    }))
}

#[tracing::instrument(skip_all, name = "db.sessions.spend", err(level = "warn"))]
pub async fn spend(db: impl PgExecutor<'_>, hash: &[u8], now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1")
        .bind(hash)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Revokes one session; false if it was already revoked or does not exist.
#[tracing::instrument(skip_all, name = "db.sessions.revoke", err(level = "warn"))]
pub async fn revoke(
    db: impl PgExecutor<'_>,
    id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live session of a user and returns their ids.
#[tracing::instrument(skip_all, name = "db.sessions.revoke_all", err(level = "warn"))]
pub async fn revoke_all(
    db: impl PgExecutor<'_>,
    user: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(user)
    .bind(now)
    .bind(reason)
    .fetch_all(db)
    .await?)
}

#[derive(sqlx::FromRow)]
pub struct LiveSession {
    pub id: Uuid,
    pub device: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// A user's live sessions, newest first, with when each last got a refresh token.
#[tracing::instrument(skip_all, name = "db.sessions.live_of", err(level = "warn"))]
pub async fn live_of(
    db: impl PgExecutor<'_>,
    user: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<LiveSession>> {
    Ok(sqlx::query_as::<_, LiveSession>(
        "SELECT s.id, s.device, s.user_agent, host(s.ip) AS ip, s.created_at, \
                COALESCE((SELECT max(t.issued_at) FROM refresh_tokens t WHERE t.session_id = s.id), \
                         s.created_at) AS last_used_at \
         FROM sessions s \
         WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
         ORDER BY s.created_at DESC LIMIT 200",
    )
    .bind(user)
    .bind(now)
    .fetch_all(db)
    .await?)
}

/// Revokes one session of `user`; false if it is not theirs, not live, or does not exist.
#[tracing::instrument(skip_all, name = "db.sessions.revoke_of", err(level = "warn"))]
pub async fn revoke_of(
    db: impl PgExecutor<'_>,
    user: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoke_reason = 'ended_by_user' \
         WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// True if the session exists, is not revoked and has not expired.
#[tracing::instrument(skip_all, name = "db.sessions.is_live", err(level = "warn"))]
pub async fn is_live(db: impl PgExecutor<'_>, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2)",
    )
    .bind(id)
    .bind(now)
    .fetch_one(db)
    .await?)
}

/// Deletes sessions expired or revoked before `before` (their refresh tokens cascade), in
/// batches so no long lock is held. Returns how many went.
#[tracing::instrument(skip_all, name = "db.sessions.delete_ended", err(level = "warn"))]
pub async fn delete_ended(db: &sqlx::PgPool, before: DateTime<Utc>) -> Result<u64> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
             WHERE expires_at < $1 OR revoked_at < $1 LIMIT 5000)",
        )
        .bind(before)
        .execute(db)
        .await?;
        total += done.rows_affected();
        if done.rows_affected() < 5000 {
            return Ok(total);
        }
    }
}

/// When the holder of a live session last proved who they are (its sign-in, or the sign-in of
/// the session that vouched for it); None once it has ended.
#[tracing::instrument(skip_all, name = "db.sessions.opened_at", err(level = "warn"))]
pub async fn opened_at(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(authenticated_at, created_at) FROM sessions \
             WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}
