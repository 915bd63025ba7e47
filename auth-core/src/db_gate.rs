//! Circuit breaker in front of PostgreSQL. A request that finds the database unreachable
//! opens it, and so does a failed probe; while it is open, requests that need the database
//! are answered 503 at once instead of each waiting `db_timeout` for a connection. The
//! probe task (`serve.rs`) is the half-open state: it tries `SELECT 1` every
//! `PROBE_WHILE_OPEN` and closes the circuit on the first success, so requests never have to
//! be the probe. `now_ms` is a parameter so tests drive the clock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Probe interval while the database is believed up (catches an outage nobody has hit yet).
pub const PROBE_WHILE_CLOSED: Duration = Duration::from_secs(2);
/// Probe interval while open: how soon after the database is back the core serves again.
pub const PROBE_WHILE_OPEN: Duration = Duration::from_millis(500);
/// A probe that takes longer than this counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct DbGate {
    /// Unix ms when the circuit opened; 0 while closed.
    open_since_ms: AtomicU64,
}

/// What a report changed, so the transition is logged once.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    Opened,
    Closed { down_for: Duration },
}

impl DbGate {
    pub fn is_open(&self) -> bool {
        self.open_since_ms.load(Relaxed) != 0
    }

    /// Unix ms since when the database is believed down.
    pub fn open_since_ms(&self) -> Option<u64> {
        Some(self.open_since_ms.load(Relaxed)).filter(|&t| t != 0)
    }

    pub fn failed(&self, now_ms: u64) -> Change {
        // never store 0 (= closed), and keep the first failure's time
        match self
            .open_since_ms
            .compare_exchange(0, now_ms.max(1), Relaxed, Relaxed)
        {
            Ok(_) => Change::Opened,
            Err(_) => Change::None,
        }
    }

    pub fn succeeded(&self, now_ms: u64) -> Change {
        match self.open_since_ms.swap(0, Relaxed) {
            0 => Change::None,
            since => Change::Closed {
                down_for: Duration::from_millis(now_ms.saturating_sub(since)),
            },
        }
    }

    pub fn probe_interval(&self) -> Duration {
        if self.is_open() {
            PROBE_WHILE_OPEN
        } else {
            PROBE_WHILE_CLOSED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_and_closes_with_the_outage_length() {
        let g = DbGate::default();
        assert!(!g.is_open());
        assert_eq!(g.probe_interval(), PROBE_WHILE_CLOSED);
        assert_eq!(g.failed(1_000), Change::Opened);
        assert_eq!(g.failed(1_500), Change::None, "already open");
        assert!(g.is_open());
        assert_eq!(g.open_since_ms(), Some(1_000), "the first failure counts");
        assert_eq!(g.probe_interval(), PROBE_WHILE_OPEN);
        assert_eq!(
            g.succeeded(4_000),
            Change::Closed {
                down_for: Duration::from_secs(3)
            }
        );
        assert!(!g.is_open());
        assert_eq!(g.succeeded(5_000), Change::None);
    }

    #[test]
    fn a_failure_at_time_zero_still_opens() {
        let g = DbGate::default();
        assert_eq!(g.failed(0), Change::Opened);
        assert!(g.is_open());
    }
}
