//! Refresh tokens: opaque random strings, stored only as SHA-256 hashes, rotated on every use.
//! What a presented token means is decided here, from its stored state and `now`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A new token (256 random bits, base64url) and the hash to store.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The stored state of a presented token.
pub struct Stored {
    pub expires_at: DateTime<Utc>,
    pub spent_at: Option<DateTime<Utc>>,
    pub session_revoked: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Unspent: spend it and issue the successor.
    Rotate,
    /// Spent moments ago by a concurrent refresh: issue another successor, keep the session.
    Grace,
    /// Spent earlier: a copy is being replayed. Revoke the whole session.
    Reuse,
    Expired,
    Revoked,
}

pub fn judge(t: &Stored, now: DateTime<Utc>, grace: Duration) -> Verdict {
    if t.session_revoked {
        return Verdict::Revoked;
    }
    match t.spent_at {
        Some(spent) => {
            let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
            if now <= spent + grace {
                Verdict::Grace
            } else {
                Verdict::Reuse
            }
        }
        None if now >= t.expires_at => Verdict::Expired,
        None => Verdict::Rotate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn verdicts() {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let s = |spent: Option<i64>, revoked| Stored {
            expires_at: t0 + chrono::Duration::days(30),
            spent_at: spent.map(|d| t0 + chrono::Duration::seconds(d)),
            session_revoked: revoked,
        };
        let grace = Duration::from_secs(10);
        assert_eq!(judge(&s(None, false), t0, grace), Verdict::Rotate);
        assert_eq!(
            judge(
                &s(Some(0), false),
                t0 + chrono::Duration::seconds(10),
                grace
            ),
            Verdict::Grace
        );
        assert_eq!(
            judge(
                &s(Some(0), false),
                t0 + chrono::Duration::seconds(11),
                grace
            ),
            Verdict::Reuse
        );
        assert_eq!(judge(&s(None, true), t0, grace), Verdict::Revoked);
        assert_eq!(
            judge(&s(None, false), t0 + chrono::Duration::days(30), grace),
            Verdict::Expired
        );
    }

    #[test]
    fn tokens_are_random_and_only_the_hash_is_kept() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a), ha);
        assert_eq!(ha.len(), 32);
    }
}
