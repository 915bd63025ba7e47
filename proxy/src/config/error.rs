//! Config problems, each naming the file and the key, collected rather than stopping at the
//! first so `edge check` shows an owner everything to fix in one go.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File as given on the command line joined with its name, e.g. "conf/routes.toml".
    pub file: String,
    /// Dotted key path such as "route[2].upstream"; empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// Every problem found in a conf dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the configuration", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while validation walks the files.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<ConfigError>);

impl Problems {
    pub fn add(&mut self, file: &str, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        });
    }
}
