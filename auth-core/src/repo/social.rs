//! `social_accounts`, LIST-partitioned by provider: (provider, subject) is the identity at the
//! provider; lookups name the provider, so each touches one partition.

use crate::error::{on_unique, Result};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(sqlx::FromRow, serde::Serialize, utoipa::ToSchema, Debug)]
pub struct Linked {
    /// The provider's name in `/auth/oauth/{provider}/…`.
    pub provider: String,
    /// The email the provider shared when the account was linked, if any.
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all, name = "db.social.find", err(level = "warn"))]
pub async fn find(db: impl PgExecutor<'_>, provider: &str, subject: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM social_accounts WHERE provider = $1 AND subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(db)
    .await?)
}

pub struct NewLink<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub user_id: Uuid,
    pub email: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// A conflict when the identity is linked to an account already, or the account has this
/// provider linked already.
#[tracing::instrument(skip_all, name = "db.social.link", err(level = "info"))]
pub async fn link(db: impl PgExecutor<'_>, l: &NewLink<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO social_accounts (provider, subject, user_id, email, linked_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(l.provider)
    .bind(l.subject)
    .bind(l.user_id)
    .bind(l.email)
    .bind(l.now)
    .execute(db)
    .await
    .map_err(|e| {
        on_unique(
            e,
            "social_accounts",
            "this provider account is already linked, or this account already has one from this provider",
        )
    })?;
    Ok(())
}

#[tracing::instrument(skip_all, name = "db.social.list", err(level = "warn"))]
pub async fn list(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<Linked>> {
    Ok(sqlx::query_as::<_, Linked>(
        "SELECT provider, email, linked_at FROM social_accounts WHERE user_id = $1 \
         ORDER BY linked_at",
    )
    .bind(user)
    .fetch_all(db)
    .await?)
}

#[tracing::instrument(skip_all, name = "db.social.unlink", err(level = "warn"))]
pub async fn unlink(db: impl PgExecutor<'_>, user: Uuid, provider: &str) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM social_accounts WHERE provider = $1 AND user_id = $2")
            .bind(provider)
            .bind(user)
            .execute(db)
            .await?
            .rows_affected(),
    )
}
