//! In-process buckets: the fallback while Redis is unreachable and the only store when no
//! Redis is configured. Bounded: at most `capacity` keys, idle ones evicted.

use super::gcra::{self, Bucket, Outcome};
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct LocalBuckets {
    tats: Cache<String, Arc<AtomicU64>>,
}

impl LocalBuckets {
    pub fn new(capacity: u64) -> LocalBuckets {
        LocalBuckets {
            // a bucket idle for 10 minutes is full again for any sane rate: forget it
            tats: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// One decision; lock-free per key (compare-and-swap on the stored TAT).
    pub fn decide(&self, key: &str, now_us: u64, bucket: Bucket, cost: u64) -> Outcome {
        let tat = match self.tats.get(key) {
            Some(t) => t,
            None => self
                .tats
                .get_with(key.to_string(), || Arc::new(AtomicU64::new(0))),
        };
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let outcome = gcra::decide(current, now_us, bucket, cost);
            if !outcome.allowed {
                return outcome;
            }
            match tat.compare_exchange_weak(
                current,
                outcome.tat_us,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }
}
