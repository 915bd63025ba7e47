//! Circuit breaker in front of Redis: after `threshold` consecutive failures (errors or
//! timeouts) Redis is not asked for `cooldown`; then one request probes it, and a success
//! closes the circuit. Hysteresis: a circuit that opens again soon after closing (a flapping
//! Redis, a slow one near the timeout) stays open twice as long each time, up to 16 times the
//! cooldown, and is back to one cooldown after a stable spell. Lock-free; `now_us` is a
//! parameter.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

pub struct Breaker {
    /// Both settings are atomics so a reload retunes the breaker without resetting its state.
    threshold: AtomicU32,
    cooldown_us: AtomicU64,
    failures: AtomicU32,
    /// 0 while closed.
    open_until_us: AtomicU64,
    probing: AtomicBool,
    /// When the circuit last closed (0: never opened).
    closed_at_us: AtomicU64,
    /// Doublings of the cooldown for a flapping Redis, at most `MAX_FLAPS`.
    flaps: AtomicU32,
}

/// The cooldown grows to at most 2^4 = 16 times its setting.
const MAX_FLAPS: u32 = 4;
/// Closed for this many cooldowns: stable again, the next opening uses the plain cooldown.
const STABLE_COOLDOWNS: u64 = 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Ask Redis.
    Closed,
    /// Ask Redis: this request is the one probe of a half-open circuit.
    Probe,
    /// Do not ask Redis.
    Open,
}

/// What a result changed, for logging the transitions once.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown_us: u64) -> Breaker {
        Breaker {
            threshold: AtomicU32::new(threshold.max(1)),
            cooldown_us: AtomicU64::new(cooldown_us),
            failures: AtomicU32::new(0),
            open_until_us: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            closed_at_us: AtomicU64::new(0),
            flaps: AtomicU32::new(0),
        }
    }

    /// The cooldown of the next opening, grown by the flaps so far.
    fn cooldown(&self) -> u64 {
        self.cooldown_us
            .load(Relaxed)
            .saturating_mul(1 << self.flaps.load(Relaxed).min(MAX_FLAPS))
    }

    /// New settings from a reload; an open circuit keeps the cooldown it was opened with.
    pub fn tune(&self, threshold: u32, cooldown_us: u64) {
        self.threshold.store(threshold.max(1), Relaxed);
        self.cooldown_us.store(cooldown_us, Relaxed);
    }

    pub fn gate(&self, now_us: u64) -> Gate {
        let until = self.open_until_us.load(Relaxed);
        if until == 0 {
            return Gate::Closed;
        }
        if now_us < until {
            return Gate::Open;
        }
        match self.probing.compare_exchange(false, true, Relaxed, Relaxed) {
            Ok(_) => Gate::Probe,
            Err(_) => Gate::Open,
        }
    }

    /// An open circuit lets its next request probe at once (the cooldown is cut short).
    pub fn retry_now(&self) {
        let _ = self
            .open_until_us
            .fetch_update(Relaxed, Relaxed, |until| (until != 0).then_some(1));
    }

    pub fn is_open(&self) -> bool {
        self.open_until_us.load(Relaxed) != 0
    }

    pub fn success(&self, now_us: u64) -> Transition {
        self.failures.store(0, Relaxed);
        self.probing.store(false, Relaxed);
        if self.open_until_us.swap(0, Relaxed) != 0 {
            self.closed_at_us.store(now_us.max(1), Relaxed);
            Transition::Closed
        } else {
            Transition::None
        }
    }

    pub fn failure(&self, now_us: u64) -> Transition {
        self.probing.store(false, Relaxed);
        let failures = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        let was_open = self.is_open();
        if was_open {
            // a failed probe re-opens for another cooldown (of the current length)
            self.open_until_us
                .store(now_us.saturating_add(self.cooldown()).max(1), Relaxed);
            return Transition::None;
        }
        if failures < self.threshold.load(Relaxed) {
            return Transition::None;
        }
        // opening again soon after closing: a flapping Redis, wait longer this time
        let closed_at = self.closed_at_us.load(Relaxed);
        let stable = self
            .cooldown_us
            .load(Relaxed)
            .saturating_mul(STABLE_COOLDOWNS);
        let flapping = closed_at != 0 && now_us.saturating_sub(closed_at) < stable;
        let flaps = if flapping {
            (self.flaps.load(Relaxed) + 1).min(MAX_FLAPS)
        } else {
            0
        };
        let cooldown = self.cooldown_us.load(Relaxed).saturating_mul(1 << flaps);
        // concurrent failures at the threshold: one of them opens (and counts the flap)
        match self.open_until_us.compare_exchange(
            0,
            now_us.saturating_add(cooldown).max(1),
            Relaxed,
            Relaxed,
        ) {
            Ok(_) => {
                self.flaps.store(flaps, Relaxed);
                Transition::Opened
            }
            Err(_) => Transition::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let b = Breaker::new(3, 1_000);
        assert_eq!(b.gate(0), Gate::Closed);
        assert_eq!(b.failure(10), Transition::None);
        assert_eq!(b.failure(11), Transition::None);
        assert_eq!(
            b.success(11),
            Transition::None,
            "a success resets the count"
        );
        assert_eq!(b.failure(12), Transition::None);
        assert_eq!(b.failure(13), Transition::None);
        assert_eq!(b.failure(14), Transition::Opened);
        assert_eq!(b.gate(500), Gate::Open);
        assert_eq!(b.gate(1_014), Gate::Probe, "one probe after the cooldown");
        assert_eq!(b.gate(1_015), Gate::Open, "only one probe at a time");
        assert_eq!(
            b.failure(1_020),
            Transition::None,
            "a failed probe keeps it open"
        );
        assert_eq!(b.gate(1_500), Gate::Open);
        assert_eq!(b.gate(2_020), Gate::Probe);
        assert_eq!(b.success(2_020), Transition::Closed);
        assert_eq!(b.gate(2_021), Gate::Closed);
    }

    #[test]
    fn a_flapping_redis_keeps_the_circuit_open_longer_each_time() {
        let b = Breaker::new(1, 1_000);
        // each round: open, probe after the (growing) cooldown, close, fail again at once
        let mut now = 0;
        for expected in [1_000, 2_000, 4_000, 8_000, 16_000, 16_000] {
            assert_eq!(b.failure(now), Transition::Opened);
            assert_eq!(
                b.gate(now + expected - 1),
                Gate::Open,
                "open for {expected}"
            );
            assert_eq!(b.gate(now + expected), Gate::Probe);
            now += expected;
            assert_eq!(b.success(now), Transition::Closed);
            now += 10;
        }
        // a stable spell (20 cooldowns closed) brings the plain cooldown back
        now += 20_000;
        assert_eq!(b.failure(now), Transition::Opened);
        assert_eq!(b.gate(now + 1_000), Gate::Probe);
    }

    #[test]
    fn a_followed_failover_cuts_the_cooldown_short() {
        let b = Breaker::new(1, 1_000_000);
        b.retry_now();
        assert_eq!(b.gate(10), Gate::Closed, "a closed circuit stays closed");
        b.failure(10);
        assert_eq!(b.gate(20), Gate::Open);
        b.retry_now();
        assert_eq!(b.gate(20), Gate::Probe, "the next request probes at once");
        assert_eq!(b.gate(20), Gate::Open, "only one probe");
    }

    #[test]
    fn a_reload_retunes_the_breaker_without_closing_it() {
        let b = Breaker::new(5, 1_000);
        for t in 0..4 {
            assert_eq!(b.failure(t), Transition::None);
        }
        // the new threshold counts the failures already seen
        b.tune(2, 10_000);
        assert_eq!(b.failure(5), Transition::Opened);
        assert_eq!(b.gate(5_000), Gate::Open, "opened with the new cooldown");
        assert_eq!(b.gate(10_005), Gate::Probe);
        b.tune(0, 1);
        assert_eq!(b.success(10_005), Transition::Closed);
        assert_eq!(
            b.failure(20_000),
            Transition::Opened,
            "a threshold of 0 means 1"
        );
    }
}
