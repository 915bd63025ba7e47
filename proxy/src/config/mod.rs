//! Configuration: TOML files in one directory, each job in its own place:
//! - `read`: the files, their syntax errors and unknown keys (file, key path, line);
//! - `assemble`: sections merged across files (each once) and cross-section checks;
//! - `sections/`: one file per section, file mirror (`file`) → runtime type (`runtime`);
//! - `values`: the value types every section parses the same way; `resolve`: DNS;
//! - `changes`: which sections a reload applies and which wait for a restart.
//!
//! `load` is the only entry point; runtime types are only built through it.

mod assemble;
mod changes;
mod error;
mod file;
mod read;
mod resolve;
mod runtime;
mod sections;
mod values;

#[cfg(test)]
mod tests;

pub use changes::reconcile;
pub use error::ConfigErrors;
pub use runtime::*;
pub use sections::BOT_SECRET_ENV;
pub use values::is_loopback_url;

use std::path::Path;

/// Reads every `*.toml` file in `dir` (sorted by name) and validates the whole set.
pub fn load(dir: &Path) -> Result<Config, ConfigErrors> {
    read::load_dir(dir)
}
