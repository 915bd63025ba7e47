//! `login_history`, partitioned by month.

use crate::error::Result;
use crate::model::{FailureReason, LoginMethod};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

pub struct Attempt<'a> {
    pub user_id: Option<Uuid>,
    pub now: DateTime<Utc>,
    pub success: bool,
    pub method: LoginMethod<'a>,
    pub device: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub failure_reason: Option<FailureReason>,
}

impl<'a> Attempt<'a> {
    /// An attempt by `client` with `method`, recorded as a failure unless marked a success.
    pub fn new(
        method: LoginMethod<'a>,
        device: &'a str,
        client: &'a crate::model::Client,
        now: DateTime<Utc>,
    ) -> Attempt<'a> {
        Attempt {
            user_id: None,
            now,
            success: false,
            method,
            device,
            ip: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
            failure_reason: None,
        }
    }
}

#[tracing::instrument(skip_all, name = "db.history.record", err(level = "warn"))]
pub async fn record(db: impl PgExecutor<'_>, a: &Attempt<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_history \
           (id, occurred_at, user_id, success, method, device, ip, user_agent, failure_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS inet), $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(a.now)
    .bind(a.user_id)
    .bind(a.success)
    .bind(a.method.as_str())
    .bind(a.device)
    .bind(a.ip)
    .bind(a.user_agent)
    .bind(a.failure_reason.map(FailureReason::as_str))
    .execute(db)
    .await?;
    Ok(())
}

/// A `login_history` row (the API's `HistoryEntry` is made from it).
#[derive(sqlx::FromRow, Debug)]
pub struct Row {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub success: bool,
    /// `password` or the provider's name.
    pub method: String,
    /// `web`, `mobile` or `smart_tv`.
    pub device: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One page of a user's history, newest first, strictly before `before` (keyset pagination:
/// stable under inserts, and the time bound prunes the newer monthly partitions). Reads
/// `limit + 1` rows so the caller knows whether a next page exists.
#[tracing::instrument(skip_all, name = "db.history.page", err(level = "warn"))]
pub async fn page(
    db: impl PgExecutor<'_>,
    user: Uuid,
    before: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<Row>> {
    Ok(sqlx::query_as::<_, Row>(
        "SELECT id, occurred_at, success, method, device, host(ip) AS ip, user_agent \
         FROM login_history \
         WHERE user_id = $1 AND occurred_at <= $2 AND (occurred_at, id) < ($2, $3) \
         ORDER BY occurred_at DESC, id DESC LIMIT $4",
    )
    .bind(user)
    .bind(before.0)
    .bind(before.1)
    .bind(limit + 1)
    .fetch_all(db)
    .await?)
}

/// Creates the monthly partitions up to `months_ahead` months from now; returns how many
/// were new.
#[tracing::instrument(skip_all, name = "db.history.ensure_partitions", err(level = "warn"))]
pub async fn ensure_partitions(db: impl PgExecutor<'_>, months_ahead: u32) -> Result<i32> {
    Ok(
        sqlx::query_scalar("SELECT ensure_login_history_partitions($1)")
            .bind(months_ahead as i32)
            .fetch_one(db)
            .await?,
    )
}
