//! `roles`: a small table, not partitioned.

use crate::error::{on_unique, Result};
use sqlx::PgExecutor;

#[derive(sqlx::FromRow, serde::Serialize, utoipa::ToSchema, Debug)]
pub struct Role {
    pub name: String,
    pub description: String,
    /// Built-in roles (`admin`, `subscriber`) cannot be deleted.
    pub builtin: bool,
}

#[tracing::instrument(skip_all, name = "db.roles.list", err(level = "warn"))]
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Role>> {
    Ok(
        sqlx::query_as::<_, Role>("SELECT name, description, builtin FROM roles ORDER BY name")
            .fetch_all(db)
            .await?,
    )
}

#[tracing::instrument(skip_all, name = "db.roles.create", err(level = "warn"))]
pub async fn create(db: impl PgExecutor<'_>, name: &str, description: &str) -> Result<Role> {
    sqlx::query_as::<_, Role>(
        "INSERT INTO roles (name, description) VALUES ($1, $2) RETURNING name, description, builtin",
    )
    .bind(name)
    .bind(description)
    .fetch_one(db)
    .await
    .map_err(|e| on_unique(e, "roles", "role already exists"))
}

/// `Some(builtin)` of a role, `None` if there is no such role.
#[tracing::instrument(skip_all, name = "db.roles.builtin", err(level = "warn"))]
pub async fn builtin(db: impl PgExecutor<'_>, name: &str) -> Result<Option<bool>> {
    Ok(
        sqlx::query_scalar("SELECT builtin FROM roles WHERE name = $1")
            .bind(name)
            .fetch_optional(db)
            .await?,
    )
}

/// Deletes a role that is not built in (grants go with it, by cascade).
#[tracing::instrument(skip_all, name = "db.roles.delete", err(level = "warn"))]
pub async fn delete(db: impl PgExecutor<'_>, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM roles WHERE name = $1 AND NOT builtin")
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}
