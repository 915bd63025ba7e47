//! `users` (the profile, by id), `credentials` (what a login reads, by email) and
//! `user_roles`.

use crate::error::{on_unique, Result};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct User {
    pub id: Uuid,
    /// None for an account created through a provider that shared no confirmed email.
    pub email: Option<String>,
    pub email_verified: bool,
    /// The language of the account's mails (`en`, `ru`).
    pub lang: String,
    pub created_at: DateTime<Utc>,
}

/// What an access token says about its user besides the id.
pub struct TokenFacts {
    pub roles: Vec<String>,
    pub email_verified: bool,
}

/// The login row of an email.
#[derive(sqlx::FromRow, Clone)]
pub struct Credential {
    pub user_id: Uuid,
    pub password_hash: Option<String>,
}

const EMAIL_TAKEN: &str = "email is already registered";

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    /// True when someone vouched for the address (a provider, an operator).
    pub email_verified: bool,
    pub lang: &'a str,
    pub now: DateTime<Utc>,
}

/// Inserts the user and claims its email, in the caller's transaction: a taken email rolls
/// the whole registration back.
#[tracing::instrument(skip_all, name = "db.users.insert", err(level = "warn"))]
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewUser<'_>,
    password_hash: Option<&str>,
) -> Result<()> {
    let (id, email) = (new.id, new.email);
    sqlx::query(
        "INSERT INTO users (id, email, email_verified, lang, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id)
    .bind(email)
    .bind(new.email_verified)
    .bind(new.lang)
    .bind(new.now)
    .execute(&mut **tx)
    .await?;
    claim_email(tx, id, email, password_hash).await
}

/// An account without an email (a provider sign-in that shared no confirmed address).
#[tracing::instrument(skip_all, name = "db.users.insert_without_email", err(level = "warn"))]
pub async fn insert_without_email(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO users (id, created_at, updated_at) VALUES ($1, $2, $2)")
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks the account's row until the transaction ends: two unlinks at once cannot both see
/// "another way to sign in remains".
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(
        "SELECT id, email, email_verified, lang, created_at FROM users WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn claim_email(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    email: &str,
    password_hash: Option<&str>,
) -> Result<()> {
    sqlx::query("INSERT INTO credentials (email, user_id, password_hash) VALUES ($1, $2, $3)")
        .bind(email)
        .bind(id)
        .bind(password_hash)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, "credentials", EMAIL_TAKEN))?;
    Ok(())
}

/// The login lookup: one query on one `credentials` partition.
#[tracing::instrument(skip_all, name = "db.users.credential", err(level = "warn"))]
pub async fn credential(db: impl PgExecutor<'_>, email: &str) -> Result<Option<Credential>> {
    Ok(sqlx::query_as::<_, Credential>(
        "SELECT user_id, password_hash FROM credentials WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(db)
    .await?)
}

#[tracing::instrument(skip_all, name = "db.users.by_id", err(level = "warn"))]
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>> {
    Ok(sqlx::query_as::<_, User>(
        "SELECT id, email, email_verified, lang, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Roles and whether the email is confirmed, in one round trip (every token issue reads it).
#[tracing::instrument(skip_all, name = "db.users.token_facts", err(level = "warn"))]
pub async fn token_facts(db: impl PgExecutor<'_>, id: Uuid) -> Result<TokenFacts> {
    let row: Option<(bool, Vec<String>)> = sqlx::query_as(
        "SELECT u.email_verified, \
                COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = $1), '{}') \
         FROM users u WHERE u.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let (email_verified, roles) = row.unwrap_or_default();
    Ok(TokenFacts {
        roles,
        email_verified,
    })
}

/// The address was proven (a confirmation link, a reset link, a provider).
pub async fn mark_verified(db: impl PgExecutor<'_>, id: Uuid, email: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE users SET email_verified = true WHERE id = $1 AND email = $2 AND NOT email_verified",
    )
    .bind(id)
    .bind(email)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, name = "db.users.roles", err(level = "warn"))]
pub async fn roles(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(id)
            .fetch_all(db)
            .await?,
    )
}

/// Moves the account to a new email: the login row moves (with its password hash), the
/// profile's copy follows.
#[tracing::instrument(skip_all, name = "db.users.change_email", err(level = "warn"))]
pub async fn change_email(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    old: &str,
    new: &str,
    verified: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let hash: Option<Option<String>> = sqlx::query_scalar(
        "DELETE FROM credentials WHERE email = $1 AND user_id = $2 RETURNING password_hash",
    )
    .bind(old)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    claim_email(tx, id, new, hash.flatten().as_deref()).await?;
    sqlx::query("UPDATE users SET email = $2, email_verified = $4, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(new)
        .bind(now)
        .bind(verified)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, name = "db.users.set_password", err(level = "warn"))]
pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    email: &str,
    hash: &str,
) -> Result<()> {
    sqlx::query("UPDATE credentials SET password_hash = $3 WHERE email = $1 AND user_id = $2")
        .bind(email)
        .bind(id)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Grants a role; true if it was not held before.
#[tracing::instrument(skip_all, name = "db.users.grant", err(level = "warn"))]
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
#[tracing::instrument(skip_all, name = "db.users.revoke", err(level = "warn"))]
pub async fn revoke(db: impl PgExecutor<'_>, id: Uuid, role: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
        .bind(id)
        .bind(role)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
