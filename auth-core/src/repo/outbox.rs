//! `mail_outbox`: mails queued in the transaction that causes them, claimed by one sender.

use crate::error::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

pub struct NewMail<'a> {
    pub template: &'a str,
    pub lang: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
}

#[tracing::instrument(skip_all, name = "db.outbox.enqueue", err(level = "warn"))]
pub async fn enqueue(db: impl PgExecutor<'_>, m: &NewMail<'_>, now: DateTime<Utc>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO mail_outbox (id, created_at, template, lang, recipient, subject, body_text, \
         body_html, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $2)",
    )
    .bind(id)
    .bind(now)
    .bind(m.template)
    .bind(m.lang)
    .bind(m.recipient)
    .bind(m.subject)
    .bind(m.text)
    .bind(m.html)
    .execute(db)
    .await?;
    Ok(id)
}

#[derive(sqlx::FromRow, Debug)]
pub struct Claimed {
    pub id: Uuid,
    pub template: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    /// Counting this one.
    pub attempts: i32,
}

/// Takes up to `limit` due mails for this sender: rows another sender holds are skipped
/// (`SKIP LOCKED`), and each taken row's next attempt moves `lease` ahead before the
/// statement ends, so no other replica sees it due while it is being sent — and a sender
/// that dies mid-send leaves it to be retried after the lease.
#[tracing::instrument(skip_all, name = "db.outbox.claim", err(level = "warn"))]
pub async fn claim(
    db: &PgPool,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as::<_, Claimed>(
        "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2 \
         WHERE id IN (SELECT id FROM mail_outbox \
                      WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
                      ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, template, recipient, subject, body_text, body_html, attempts",
    )
    .bind(now)
    .bind(now + lease)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Delivered: the bodies (a link's token in clear) are wiped.
pub async fn mark_sent(db: &PgPool, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET sent_at = $2, body_text = NULL, body_html = NULL, last_error = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Not delivered this time: try again at `next`.
pub async fn retry_at(db: &PgPool, id: Uuid, next: DateTime<Utc>, error: &str) -> Result<()> {
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(next)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// Given up: kept for the operator (recipient, template, error), bodies wiped.
pub async fn mark_failed(db: &PgPool, id: Uuid, now: DateTime<Utc>, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET failed_at = $2, last_error = $3, body_text = NULL, body_html = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Housekeeping: sent and failed rows older than `before`.
pub async fn delete_done(db: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM mail_outbox WHERE (sent_at < $1) OR (failed_at < $1)")
            .bind(before)
            .execute(db)
            .await?
            .rows_affected(),
    )
}
