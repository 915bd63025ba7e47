//! The SQL migrations in `migrations/`, embedded in the binary.

use crate::error::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn run(db: &sqlx::PgPool) -> Result<()> {
    MIGRATOR.run(db).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => Error::from(e),
        other => Error::Internal(format!("migrations: {other}")),
    })
}
