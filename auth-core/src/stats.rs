//! Counters the edge exports on `/_edge/metrics`: logins by method and outcome.

use crate::error::Error;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Outcomes of one login method.
#[derive(Default)]
pub struct LoginOutcomes {
    pub ok: AtomicU64,
    /// Wrong email or password.
    pub invalid: AtomicU64,
    pub throttled: AtomicU64,
    /// Database or hashing unavailable.
    pub unavailable: AtomicU64,
    /// Anything else (bad input, internal errors).
    pub error: AtomicU64,
}

impl LoginOutcomes {
    pub fn record<T>(&self, result: &Result<T, Error>) {
        let counter = match result {
            Ok(_) => &self.ok,
            Err(Error::InvalidCredentials) => &self.invalid,
            Err(Error::Throttled { .. }) => &self.throttled,
            Err(Error::Unavailable(_)) => &self.unavailable,
            Err(_) => &self.error,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// (outcome label, count), for rendering.
    pub fn snapshot(&self) -> [(&'static str, u64); 5] {
        [
            ("ok", self.ok.load(Relaxed)),
            ("invalid", self.invalid.load(Relaxed)),
            ("throttled", self.throttled.load(Relaxed)),
            ("unavailable", self.unavailable.load(Relaxed)),
            ("error", self.error.load(Relaxed)),
        ]
    }
}

#[derive(Default)]
pub struct Stats {
    /// Email and password logins.
    pub password_logins: LoginOutcomes,
    /// Sign-ins through a social provider's callback (any provider).
    pub social_logins: LoginOutcomes,
    /// Outbox mails delivered, attempts that will be retried, mails given up on.
    pub mail_sent: AtomicU64,
    pub mail_retries: AtomicU64,
    pub mail_failed: AtomicU64,
}
