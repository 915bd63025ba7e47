//! The pass a client gets for a right answer: `v1.<id>.<exp>.<mac>`, where the MAC (HMAC-SHA256)
//! covers the id, the expiry, the client's network prefix and a hash of its User-Agent. The
//! binding is in the MAC, not in the token, so the token reveals neither; presented from
//! another network or another User-Agent it does not verify. `now` is a parameter.

use super::fingerprint::{hex, Client};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// Refused before any parsing: a pass is about 80 bytes.
const MAX_PASS_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub token: String,
    /// Random id: the key of the per-pass rate limit.
    pub id: String,
    pub exp: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PassError {
    Malformed,
    /// Forged, or presented by another client (network or User-Agent).
    BadSignature,
    Expired,
}

/// HMAC-SHA256 keyed with `secret` (any length is a valid HMAC key).
pub(super) fn keyed(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn mac(secret: &[u8], id: &str, exp: u64, client: &Client) -> HmacSha256 {
    let mut m = keyed(secret);
    m.update(b"edge-pass/v1\0");
    m.update(id.as_bytes());
    m.update(b"\0");
    m.update(&exp.to_be_bytes());
    m.update(client.network.to_string().as_bytes());
    m.update(b"\0");
    m.update(&client.ua_hash);
    m
}

pub fn issue(secret: &[u8], client: &Client, now: u64, ttl_secs: u64, id_bytes: [u8; 12]) -> Pass {
    let id = hex(&id_bytes);
    let exp = now + ttl_secs;
    let sig = mac(secret, &id, exp, client).finalize().into_bytes();
    Pass {
        token: format!("v1.{id}.{exp}.{}", URL_SAFE_NO_PAD.encode(sig)),
        id,
        exp,
    }
}

/// The pass's id if `token` is a live pass of this client.
pub fn verify(secret: &[u8], token: &str, client: &Client, now: u64) -> Result<String, PassError> {
    if token.len() > MAX_PASS_BYTES {
        return Err(PassError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some("v1"), Some(id), Some(exp), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PassError::Malformed);
    };
    let exp: u64 = exp.parse().map_err(|_| PassError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| PassError::Malformed)?;
    // constant-time comparison inside verify_slice
    mac(secret, id, exp, client)
        .verify_slice(&sig)
        .map_err(|_| PassError::BadSignature)?;
    if now >= exp {
        return Err(PassError::Expired);
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_pass_works_only_for_its_client_and_until_it_expires() {
        let tv = Client::for_ip("198.51.100.20".parse().unwrap(), b"Tizen TV");
        let pass = issue(SECRET, &tv, 1_000, 2_700, [7; 12]);
        assert_eq!(verify(SECRET, &pass.token, &tv, 1_000), Ok(pass.id.clone()));
        // another address in the same /24 (carrier NAT): still valid
        let moved = Client::for_ip("198.51.100.99".parse().unwrap(), b"Tizen TV");
        assert!(verify(SECRET, &pass.token, &moved, 2_000).is_ok());
        // another network, another User-Agent, another key: refused
        let elsewhere = Client::for_ip("198.51.101.20".parse().unwrap(), b"Tizen TV");
        assert_eq!(
            verify(SECRET, &pass.token, &elsewhere, 2_000),
            Err(PassError::BadSignature)
        );
        let other_ua = Client::for_ip("198.51.100.20".parse().unwrap(), b"curl/8");
        assert_eq!(
            verify(SECRET, &pass.token, &other_ua, 2_000),
            Err(PassError::BadSignature)
        );
        assert_eq!(
            verify(b"another secret of 32 bytes......", &pass.token, &tv, 2_000),
            Err(PassError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &pass.token, &tv, 3_700),
            Err(PassError::Expired)
        );
        // a later expiry written into the token breaks the MAC
        let stretched = pass.token.replace(".3700.", ".9999.");
        assert_eq!(
            verify(SECRET, &stretched, &tv, 2_000),
            Err(PassError::BadSignature)
        );
        for junk in [
            "",
            "v1",
            "v2.a.1.b",
            "v1.a.x.b",
            "v1.a.1.!!",
            "v1.a.1.b.c",
            &"v".repeat(300),
        ] {
            assert_eq!(
                verify(SECRET, junk, &tv, 2_000),
                Err(PassError::Malformed),
                "{junk}"
            );
        }
    }
}
