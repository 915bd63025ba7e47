//! Leases: one Redis call takes tokens ahead for later requests of the same key on this
//! replica, which spends them without a round trip until they run out or expire.
//!
//! Leased tokens were taken from the shared bucket, so the total never exceeds it; a lease only
//! lets admissions happen later than the tokens were taken, so a window can admit more than
//! `burst + rate × window` by the tokens the replicas held unspent at its start. Tokens left
//! when a lease expires go back to the bucket with the key's next Redis call (until then, and
//! if this replica never calls again, they are missing from it: under-admission).
//!
//! Adaptive leases (the default) size each ask from the key's observed local rate: the tokens
//! this replica spent since its last refill, scaled to `HORIZON_US`, at most doubling per
//! refill and at most the policy's cap (`burst / (2 × replicas)`; a cap under
//! `MIN_ADAPTIVE_CAP` means no leases). Redis grants at most
//! `remaining / (2 × replicas)` of them, so leases shrink as the bucket empties and near the
//! limit every request is one Redis decision again. Per replica at most one lease is held,
//! so the replicas together hold at most `burst / 2` unspent tokens: that is the overshoot
//! bound. A key seen once or rarely never leases. Only one refill per key and replica is in
//! flight; requests that find the lease empty meanwhile take one decision each.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The smallest cap at which a policy leases adaptively (`burst ≥ 16 × replicas`).
pub const MIN_ADAPTIVE_CAP: u64 = 8;
/// How long an adaptive lease is meant to last at the key's observed rate.
pub const HORIZON_US: u64 = 50_000;
/// How long adaptive leased tokens stay spendable: a few horizons, so a client that slows
/// down does not lose its lease at once, and one that stops loses it soon.
pub const ADAPTIVE_TTL_US: u64 = 4 * HORIZON_US;

/// How a compiled policy leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseMode {
    /// One Redis call per request.
    Off,
    /// Every call asks for this many tokens (`lease = N`).
    Fixed(u64),
    /// Sized from the key's local rate, at most `cap` tokens per call.
    Adaptive { cap: u64 },
}

/// This replica's lease of one key, kept between refills so the next ask can be sized.
pub struct Lease {
    tokens: AtomicU64,
    expires_us: AtomicU64,
    /// Tokens Redis granted this key on this replica since `since_us` (costs included).
    granted: AtomicU64,
    since_us: AtomicU64,
    refilling: AtomicBool,
    /// The shared bucket's remaining tokens at the last grant (for the headers).
    shared_remaining: AtomicU64,
    /// When the shared bucket is full again, as Redis said at the last grant (for the headers).
    full_at_us: AtomicU64,
}

/// What one Redis grant brought, for `Lease::record`.
pub struct Grant {
    pub granted: u64,
    pub cost: u64,
    pub remaining: u64,
    pub reset_us: u64,
}

impl Lease {
    pub fn new(now_us: u64) -> Lease {
        Lease {
            tokens: AtomicU64::new(0),
            expires_us: AtomicU64::new(now_us),
            granted: AtomicU64::new(0),
            since_us: AtomicU64::new(now_us),
            refilling: AtomicBool::new(false),
            shared_remaining: AtomicU64::new(0),
            full_at_us: AtomicU64::new(now_us),
        }
    }

    /// Takes `cost` tokens when the lease is live and has them; returns what is left.
    pub fn take(&self, cost: u64, now_us: u64) -> Option<u64> {
        if now_us >= self.expires_us.load(Relaxed) {
            return None;
        }
        let mut current = self.tokens.load(Relaxed);
        loop {
            let left = current.checked_sub(cost)?;
            match self
                .tokens
                .compare_exchange_weak(current, left, Relaxed, Relaxed)
            {
                Ok(_) => return Some(left),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes back the tokens of an expired lease: they were taken from the shared bucket and
    /// never spent, so the next Redis call returns them. Zero while the lease is live.
    pub fn reclaim_expired(&self, now_us: u64) -> u64 {
        if now_us < self.expires_us.load(Relaxed) {
            return 0;
        }
        self.tokens.swap(0, Relaxed)
    }

    /// The quota the headers show after a lease hit that left `left` tokens.
    pub fn quota_view(&self, left: u64, now_us: u64) -> (u64, u64) {
        (
            self.shared_remaining.load(Relaxed) + left,
            self.full_at_us.load(Relaxed).saturating_sub(now_us),
        )
    }

    /// Claims the key's one refill; None when another request of this replica is refilling.
    pub fn begin_refill(&self) -> Option<Refill<'_>> {
        (!self.refilling.swap(true, Relaxed)).then_some(Refill(self))
    }

    /// What an adaptive refill asks Redis for.
    pub fn adaptive_ask(&self, now_us: u64, cost: u64, cap: u64) -> u64 {
        let spent = self
            .granted
            .load(Relaxed)
            .saturating_sub(self.tokens.load(Relaxed));
        let elapsed = now_us.saturating_sub(self.since_us.load(Relaxed));
        adaptive_want(spent, elapsed, cost, cap)
    }

    /// Keeps what a grant brought beyond the request's cost. A refill starts a new period
    /// for the rate estimate; other grants (one-decision requests while a refill is in
    /// flight) count as demand in the current one.
    pub fn record(&self, grant: &Grant, refill: bool, ttl_us: u64, now_us: u64) {
        let extra = grant.granted.saturating_sub(grant.cost);
        if now_us >= self.expires_us.load(Relaxed) {
            // expired tokens are not spendable: whatever was left is lost
            self.tokens.store(extra, Relaxed);
        } else {
            self.tokens.fetch_add(extra, Relaxed);
        }
        if extra > 0 {
            self.expires_us.store(now_us + ttl_us, Relaxed);
        }
        if refill {
            self.granted.store(grant.granted, Relaxed);
            self.since_us.store(now_us, Relaxed);
        } else {
            self.granted.fetch_add(grant.granted, Relaxed);
        }
        self.shared_remaining.store(grant.remaining, Relaxed);
        self.full_at_us.store(now_us + grant.reset_us, Relaxed);
    }
}

/// The key's refill in flight; released when dropped, also when the request is cancelled
/// while waiting for Redis.
pub struct Refill<'a>(&'a Lease);

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        self.0.refilling.store(false, Relaxed);
    }
}

/// Tokens to ask for after `spent` tokens went in `elapsed_us`: what that rate spends in
/// `HORIZON_US`, at most double the last period plus the cost (a key proves it is busy
/// before it gets a large lease), within `cost..=cap`.
pub fn adaptive_want(spent: u64, elapsed_us: u64, cost: u64, cap: u64) -> u64 {
    let at_rate =
        (u128::from(spent) * u128::from(HORIZON_US)).div_ceil(u128::from(elapsed_us.max(1)));
    let at_rate = u64::try_from(at_rate).unwrap_or(u64::MAX);
    at_rate
        .min(spent.saturating_mul(2).saturating_add(cost))
        .min(cap)
        .max(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    #[test]
    fn a_quiet_key_asks_for_its_cost_only() {
        // 3 tokens in a second: 0.15 in a horizon
        assert_eq!(adaptive_want(3, 1_000 * MS, 1, 500), 1);
        assert_eq!(
            adaptive_want(0, 10 * MS, 2, 500),
            2,
            "nothing spent: the cost"
        );
        assert_eq!(
            adaptive_want(5, 0, 1, 500),
            11,
            "no time passed: growth bound"
        );
    }

    #[test]
    fn a_busy_key_grows_at_most_double_per_refill_up_to_its_rate_and_cap() {
        // 1,000 tokens per second locally: 50 in a horizon
        let mut ask = 1;
        let mut asks = vec![];
        for _ in 0..10 {
            // each lease spent at 1,000 per second
            ask = adaptive_want(ask, ask * MS, 1, 500);
            asks.push(ask);
        }
        assert_eq!(asks, [3, 7, 15, 31, 50, 50, 50, 50, 50, 50]);
        assert_eq!(adaptive_want(10_000, 10 * MS, 1, 500), 500, "the cap");
    }

    #[test]
    fn a_slowing_key_asks_for_less() {
        // the last lease of 50 took a second instead of 50 ms
        assert_eq!(adaptive_want(50, 1_000 * MS, 1, 500), 3);
    }

    #[test]
    fn lease_tokens_expire_and_a_refill_restarts_the_period() {
        let l = Lease::new(0);
        assert_eq!(l.take(1, 0), None, "a new lease holds nothing");
        let grant = |granted| Grant {
            granted,
            cost: 1,
            remaining: 90,
            reset_us: 100 * MS,
        };
        l.record(&grant(11), true, 200 * MS, 0);
        assert_eq!(l.take(1, 10 * MS), Some(9));
        assert_eq!(l.quota_view(9, 10 * MS), (99, 90 * MS));
        assert_eq!(l.take(1, 200 * MS), None, "expired");
        // expired: the 9 left are taken back (the next Redis call refunds them)
        assert_eq!(l.reclaim_expired(190 * MS), 0, "still live");
        assert_eq!(l.reclaim_expired(250 * MS), 9);
        assert_eq!(l.reclaim_expired(250 * MS), 0, "once");
        l.record(&grant(5), false, 200 * MS, 250 * MS);
        assert_eq!(l.take(4, 260 * MS), Some(0));
        assert_eq!(l.take(1, 260 * MS), None);
        // 11 + 5 granted since the refill, none left: 16 spent in 300 ms → 2.7 per horizon
        assert_eq!(l.adaptive_ask(300 * MS, 1, 1_000), 3);
    }

    #[test]
    fn one_refill_at_a_time_released_on_drop() {
        let l = Lease::new(0);
        let first = l.begin_refill();
        assert!(first.is_some());
        assert!(l.begin_refill().is_none());
        drop(first);
        assert!(l.begin_refill().is_some());
    }
}
