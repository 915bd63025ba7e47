//! The wall clock, read in one place. Logic that depends on time takes it as a parameter
//! (tests control it); these are only for the edges of the program that read it.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    // a clock before 1970 is a broken host: count it as the epoch rather than panic
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

pub fn unix_secs() -> i64 {
    since_epoch().as_secs() as i64
}

pub fn unix_millis() -> u64 {
    since_epoch().as_millis() as u64
}

pub fn unix_micros() -> u64 {
    since_epoch().as_micros() as u64
}
