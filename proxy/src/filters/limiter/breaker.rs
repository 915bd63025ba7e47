//! Circuit breaker in front of Redis: after `threshold` consecutive failures (errors or
//! timeouts) Redis is not asked for `cooldown`; then one request probes it, and a success
//! closes the circuit. Lock-free; `now_us` is a parameter.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

pub struct Breaker {
    /// Both settings are atomics so a reload retunes the breaker without resetting its state.
    threshold: AtomicU32,
    cooldown_us: AtomicU64,
    failures: AtomicU32,
    /// 0 while closed.
    open_until_us: AtomicU64,
    probing: AtomicBool,
}

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
        }
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

    pub fn is_open(&self) -> bool {
        self.open_until_us.load(Relaxed) != 0
    }

    pub fn success(&self) -> Transition {
        self.failures.store(0, Relaxed);
        self.probing.store(false, Relaxed);
        if self.open_until_us.swap(0, Relaxed) != 0 {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    pub fn failure(&self, now_us: u64) -> Transition {
        self.probing.store(false, Relaxed);
        let failures = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        let was_open = self.is_open();
        if was_open || failures >= self.threshold.load(Relaxed) {
            // a failed probe re-opens for another cooldown; never store 0 (= closed)
            self.open_until_us.store(
                now_us.saturating_add(self.cooldown_us.load(Relaxed)).max(1),
                Relaxed,
            );
        }
        if !was_open && self.is_open() {
            Transition::Opened
        } else {
            Transition::None
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
        assert_eq!(b.success(), Transition::None, "a success resets the count");
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
        assert_eq!(b.success(), Transition::Closed);
        assert_eq!(b.gate(2_021), Gate::Closed);
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
        assert_eq!(b.success(), Transition::Closed);
        assert_eq!(
            b.failure(20_000),
            Transition::Opened,
            "a threshold of 0 means 1"
        );
    }
}
