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

    /// Tokens the key's bucket used since its TAT was `baseline_us` and has not refilled by
    /// `now_us`: what it admitted in an outage, net of the refill since.
    pub fn spent_since(&self, key: &str, baseline_us: u64, now_us: u64, bucket: Bucket) -> u64 {
        let Some(tat) = self.tats.get(key) else {
            return 0;
        };
        let used_now = tat.load(Ordering::Acquire).saturating_sub(now_us);
        let used_before = baseline_us.saturating_sub(now_us);
        used_now.saturating_sub(used_before) / bucket.interval_us.max(1)
    }

    /// Sets the key's bucket to hold `tokens` (what the shared bucket last said this replica's
    /// share is): when Redis becomes unreachable, the fallback starts from the shared state,
    /// not from a full local burst (a flooded key gets none). A snapshot of Redis's answer:
    /// it replaces whatever the local bucket held.
    pub fn seed(&self, key: &str, now_us: u64, bucket: Bucket, tokens: u64) {
        let tat = match self.tats.get(key) {
            Some(t) => t,
            None => self
                .tats
                .get_with(key.to_string(), || Arc::new(AtomicU64::new(0))),
        };
        let held = tokens.min(bucket.capacity_us / bucket.interval_us.max(1));
        let used = bucket
            .capacity_us
            .saturating_sub(held.saturating_mul(bucket.interval_us));
        tat.store(now_us.saturating_add(used), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_bucket_holds_what_redis_reported() {
        let local = LocalBuckets::new(10);
        let b = Bucket::new(10.0, 5);
        let now = 1_000_000_000;
        // Redis said two tokens are this replica's: two pass, the third waits for the refill
        local.seed("k", now, b, 2);
        assert!(local.decide("k", now, b, 1).allowed);
        assert!(local.decide("k", now, b, 1).allowed);
        assert!(!local.decide("k", now, b, 1).allowed);
        // a flooded key (nothing left) starts empty; more than the burst is the burst
        local.seed("flooded", now, b, 0);
        assert!(!local.decide("flooded", now, b, 1).allowed);
        local.seed("quiet", now, b, 99);
        let passed = (0..10)
            .filter(|_| local.decide("quiet", now, b, 1).allowed)
            .count();
        assert_eq!(passed, 5);
    }
}
