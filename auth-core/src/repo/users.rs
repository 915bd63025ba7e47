//! `users`, `user_emails` and `user_roles`.

use crate::error::{on_unique, Result};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

const EMAIL_TAKEN: &str = "email is already registered";

/// Inserts the user and claims its email, in the caller's transaction: a taken email rolls
/// the whole registration back.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    email: &str,
    password_hash: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    claim_email(tx, id, email).await
}

async fn claim_email(tx: &mut Transaction<'_, Postgres>, id: Uuid, email: &str) -> Result<()> {
    sqlx::query("INSERT INTO user_emails (email, user_id) VALUES ($1, $2)")
        .bind(email)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, "user_emails", EMAIL_TAKEN))?;
    Ok(())
}

/// The login lookup: email → id in one `user_emails` partition, then the user in one `users`
/// partition.
pub async fn by_email(db: &sqlx::PgPool, email: &str) -> Result<Option<User>> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM user_emails WHERE email = $1")
        .bind(email)
        .fetch_optional(db)
        .await?;
    match id {
        Some(id) => by_id(db, id).await,
        None => Ok(None),
    }
}

pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(
        "SELECT id, email, password_hash, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

pub async fn roles(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(id)
            .fetch_all(db)
            .await?,
    )
}

/// Moves the account to a new email: the old email row is released, the new one claimed.
pub async fn change_email(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    old: &str,
    new: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("DELETE FROM user_emails WHERE email = $1 AND user_id = $2")
        .bind(old)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    claim_email(tx, id, new).await?;
    sqlx::query("UPDATE users SET email = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(new)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Grants a role; true if it was not held before.
pub async fn grant(db: impl PgExecutor<'_>, id: Uuid, role: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(role)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a role; true if it was held.
pub async fn revoke(db: impl PgExecutor<'_>, id: Uuid, role: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
        .bind(id)
        .bind(role)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
