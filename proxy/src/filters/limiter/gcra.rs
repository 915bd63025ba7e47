//! Token bucket arithmetic as GCRA: the whole bucket is one number, the theoretical arrival
//! time (TAT) of the next request. `now` is a parameter so tests control time; `bucket.lua`
//! is the same arithmetic inside Redis.
//!
//! A bucket of `burst` tokens refilling at `rate` per second: each request of cost `c` moves
//! TAT forward by `c` emission intervals (1/rate); it is allowed while TAT stays within
//! `burst` intervals of now. From an idle bucket, `burst + rate × t` requests pass in `t`.

/// Bucket parameters in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// One token every `interval_us` (1 / rate).
    pub interval_us: u64,
    /// `burst × interval_us`: how far TAT may run ahead of now.
    pub capacity_us: u64,
}

impl Bucket {
    pub fn new(rate_per_sec: f64, burst: u64) -> Bucket {
        let interval_us = ((1_000_000.0 / rate_per_sec).round() as u64).max(1);
        Bucket {
            interval_us,
            capacity_us: interval_us.saturating_mul(burst.max(1)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// Tokens taken: the request's cost plus any leased ahead (0 when denied).
    pub granted: u64,
    /// TAT to store (unchanged when denied).
    pub tat_us: u64,
    /// Whole tokens left in the bucket after this decision.
    pub remaining: u64,
    /// When denied: how long until this request would be allowed.
    pub retry_after_us: u64,
    /// How long until the bucket is full again.
    pub reset_us: u64,
}

/// Decides one request. `tat_us` is the stored TAT (0 for a new key). A `now_us` earlier than
/// a previous call (clock stepping back) never grants extra tokens: TAT only moves forward.
pub fn decide(tat_us: u64, now_us: u64, bucket: Bucket, cost: u64) -> Outcome {
    take(tat_us, now_us, bucket, cost, cost, 1)
}

/// Like `decide`, but takes up to `want` tokens (at least `cost`) when the bucket has them,
/// and no more than `available / share` beyond the cost: a lease the caller spends on later
/// requests of the same key. Mirrors `bucket.lua`, which is what runs.
pub fn take(tat_us: u64, now_us: u64, bucket: Bucket, cost: u64, want: u64, share: u64) -> Outcome {
    let tat = tat_us.max(now_us);
    let used = tat - now_us;
    let available = bucket.capacity_us.saturating_sub(used) / bucket.interval_us;
    if available < cost {
        let allow_at = tat
            .saturating_add(cost.saturating_mul(bucket.interval_us))
            .saturating_sub(bucket.capacity_us);
        return Outcome {
            allowed: false,
            granted: 0,
            tat_us,
            remaining: available,
            retry_after_us: allow_at.saturating_sub(now_us),
            reset_us: used,
        };
    }
    let granted = want.max(cost).min((available / share.max(1)).max(cost));
    let new_tat = tat.saturating_add(granted.saturating_mul(bucket.interval_us));
    Outcome {
        allowed: true,
        granted,
        tat_us: new_tat,
        remaining: available - granted,
        retry_after_us: 0,
        reset_us: new_tat - now_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    /// Runs `n` requests at `now`, returns how many passed and the final TAT.
    fn burst_at(mut tat: u64, now: u64, bucket: Bucket, n: u32) -> (u32, u64) {
        let mut passed = 0;
        for _ in 0..n {
            let o = decide(tat, now, bucket, 1);
            if o.allowed {
                passed += 1;
            }
            tat = o.tat_us;
        }
        (passed, tat)
    }

    #[test]
    fn a_new_bucket_allows_the_burst_then_refuses() {
        let b = Bucket::new(10.0, 5);
        let (passed, tat) = burst_at(0, 100 * SEC, b, 20);
        assert_eq!(passed, 5);
        let o = decide(tat, 100 * SEC, b, 1);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(
            o.retry_after_us,
            SEC / 10,
            "one token comes back after 1/rate"
        );
        assert_eq!(o.reset_us, SEC / 2, "full again after burst/rate");
    }

    #[test]
    fn refill_follows_the_rate() {
        let b = Bucket::new(10.0, 5);
        let (_, tat) = burst_at(0, 100 * SEC, b, 5);
        // 300 ms later three tokens are back
        let (passed, _) = burst_at(tat, 100 * SEC + 300_000, b, 10);
        assert_eq!(passed, 3);
        // after a long pause the bucket is full again, never fuller
        let (passed, _) = burst_at(tat, 200 * SEC, b, 10);
        assert_eq!(passed, 5);
    }

    #[test]
    fn admitted_over_time_is_burst_plus_rate_times_time() {
        let b = Bucket::new(20.0, 10);
        let (mut tat, mut passed) = (0, 0);
        // one request every millisecond from t = 0 to t = 10 s inclusive
        for ms in 0..=10_000u64 {
            let o = decide(tat, 50 * SEC + ms * 1000, b, 1);
            passed += o.allowed as u64;
            tat = o.tat_us;
        }
        assert_eq!(passed, 10 + 20 * 10);
    }

    #[test]
    fn cost_takes_several_tokens() {
        let b = Bucket::new(10.0, 10);
        let o = decide(0, SEC, b, 4);
        assert!(o.allowed);
        assert_eq!(o.remaining, 6);
        let o = decide(o.tat_us, SEC, b, 4);
        assert_eq!(o.remaining, 2);
        let denied = decide(o.tat_us, SEC, b, 4);
        assert!(!denied.allowed);
        assert_eq!(
            denied.remaining, 2,
            "two tokens are left, not enough for cost 4"
        );
        assert_eq!(denied.retry_after_us, 2 * SEC / 10);
        assert!(
            decide(o.tat_us, SEC, b, 2).allowed,
            "a cheaper request still fits"
        );
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing() {
        let b = Bucket::new(10.0, 2);
        let (_, tat) = burst_at(0, 100 * SEC, b, 2);
        for now in [99 * SEC, 50 * SEC, 0] {
            let o = decide(tat, now, b, 1);
            assert!(!o.allowed, "at {now}");
            assert_eq!(o.tat_us, tat, "a refusal does not move TAT");
        }
        assert!(decide(tat, 100 * SEC + 100_000, b, 1).allowed);
    }

    #[test]
    fn a_lease_takes_what_is_there_up_to_the_ask() {
        let b = Bucket::new(10.0, 10);
        let o = take(0, SEC, b, 1, 4, 1);
        assert_eq!((o.allowed, o.granted, o.remaining), (true, 4, 6));
        let o = take(o.tat_us, SEC, b, 1, 4, 1);
        assert_eq!((o.granted, o.remaining), (4, 2));
        let o = take(o.tat_us, SEC, b, 1, 4, 1);
        assert_eq!(
            (o.granted, o.remaining),
            (2, 0),
            "only two left: a partial lease"
        );
        let denied = take(o.tat_us, SEC, b, 1, 4, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.granted, 0);
        // leasing never admits more than the bucket: 10 tokens in total at one instant
        let (mut tat, mut total) = (0, 0);
        for _ in 0..20 {
            let o = take(tat, 5 * SEC, b, 1, 3, 1);
            total += o.granted;
            tat = o.tat_us;
        }
        assert_eq!(total, 10);
    }

    #[test]
    fn a_shared_lease_shrinks_as_the_bucket_empties() {
        // 100 tokens, six shares (three replicas, adaptive): each lease at most 1/6 of what is left
        let b = Bucket::new(100.0, 100);
        let (mut tat, mut grants) = (0, vec![]);
        for _ in 0..12 {
            let o = take(tat, SEC, b, 1, 50, 6);
            grants.push(o.granted);
            tat = o.tat_us;
        }
        assert_eq!(grants, [16, 14, 11, 9, 8, 7, 5, 5, 4, 3, 3, 2]);
        // near empty (under 12 left) every request takes its cost alone, to the last token
        loop {
            let o = take(tat, SEC, b, 1, 50, 6);
            if !o.allowed {
                break;
            }
            grants.push(o.granted);
            tat = o.tat_us;
        }
        assert_eq!(grants.iter().sum::<u64>(), 100);
        assert!(grants.ends_with(&[1; 11]), "{grants:?}");
    }

    #[test]
    fn take_with_want_equal_to_cost_is_decide() {
        let b = Bucket::new(7.0, 5);
        let mut tat = 0;
        for step in 0..200u64 {
            let now = SEC + step * 37_000;
            let cost = 1 + step % 3;
            let d = decide(tat, now, b, cost);
            assert_eq!(d, take(tat, now, b, cost, cost, 1));
            tat = d.tat_us;
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let b = Bucket::new(0.0001, u64::MAX);
        // no panic on overflow is the point; the answer must still be a refusal of a cost
        // larger than anything the bucket can hold at once
        let o = decide(u64::MAX - 1, u64::MAX, b, u64::MAX);
        assert!(o.remaining < u64::MAX);
        let b = Bucket::new(1_000_000.0, 1);
        assert_eq!(b.interval_us, 1);
        assert!(decide(0, 1, b, 1).allowed);
    }
}
