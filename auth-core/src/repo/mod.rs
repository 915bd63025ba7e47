//! PostgreSQL access: one file per table family, plain SQL with bound parameters. Every
//! query names the partition key of the table it reads, so it touches one partition (see
//! docs/partitioning.md and the EXPLAIN tests).

pub mod account_tokens;
pub mod history;
pub mod outbox;
pub mod roles;
pub mod sessions;
pub mod social;
pub mod users;
