//! Configuration: TOML files in one directory, parsed into serde mirrors (`file`), then
//! validated into runtime types (`runtime`). `load` is the only entry point.

mod auth;
mod bot_filter;
mod changes;
mod error;
mod file;
mod runtime;
mod social;
mod validate;

#[cfg(test)]
mod tests;

pub use bot_filter::SECRET_ENV as BOT_SECRET_ENV;
pub use changes::reconcile;
pub use error::ConfigErrors;
pub use runtime::*;

use std::path::Path;

/// Reads every `*.toml` file in `dir` (sorted by name) and validates the whole set.
pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    validate::load_dir(dir)
}
