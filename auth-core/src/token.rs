//! Access tokens: EdDSA JWTs signed by the core and verified by the core and, locally, by the
//! edge. Time checks take `now` so tests control the clock; only EdDSA is accepted, whatever
//! the token's header claims.

use crate::keys::{KeySet, PublicKey, Signer};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

/// Longest token the verifier reads; longer ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Session (refresh family) id: revoking it ends every token of the session.
    pub sid: String,
    pub roles: Vec<String>,
    /// The account's email is confirmed (routes with `require_verified_email`). Absent in
    /// tokens issued before it existed: read as false.
    #[serde(default)]
    pub email_verified: bool,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why a token was refused. The edge answers each with 401 `invalid_token`; the variant goes
/// to the log, not to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too long")]
    TooLong,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("wrong issuer or audience")]
    Claims,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
}

/// Signs `claims` with the current key, `kid` in the header.
pub fn sign(signer: &Signer, claims: &Claims) -> Result<String, crate::Error> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(signer.kid.clone());
    jsonwebtoken::encode(&header, claims, &signer.encoding)
        .map_err(|e| crate::Error::Internal(format!("sign token: {e}")))
}

/// Verifies tokens against a set of public keys.
pub struct Verifier {
    keys: Vec<PublicKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(keys: Vec<PublicKey>, issuer: &str, audience: &str) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // time is checked below against the caller's `now`
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
        Verifier { keys, validation }
    }

    pub fn from_set(set: &KeySet, issuer: &str, audience: &str) -> Verifier {
        Verifier::new(set.public.clone(), issuer, audience)
    }

    /// Keys it verifies with.
    /// The keys this verifier checks signatures with.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| classify(&e))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map_err(|e| classify(&e))?;
        check_time(&data.claims, now)?;
        Ok(data.claims)
    }
}

/// `exp` and `nbf` against `now`, with the leeway. Also for claims verified earlier and
/// cached: a cached token still expires on time.
pub fn check_time(claims: &Claims, now: i64) -> Result<(), TokenError> {
    // saturating: an issuer's exp of i64::MAX must not overflow
    if claims.exp.saturating_add(LEEWAY_SECS) < now {
        return Err(TokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(LEEWAY_SECS) > now)
    {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// A jsonwebtoken failure as the reason the edge logs (also for external issuers' tokens).
pub fn classify(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            TokenError::Algorithm
        }
        K::InvalidIssuer | K::InvalidAudience | K::MissingRequiredClaim(_) | K::InvalidSubject => {
            TokenError::Claims
        }
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::Utc;
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (KeySet, Verifier) {
        let dir = std::env::temp_dir().join(format!("edge-token-{}", uuid::Uuid::new_v4()));
        keys::ensure(&dir, Utc::now(), Duration::from_secs(900)).unwrap();
        let set = keys::load(&dir, Utc::now(), Duration::from_secs(900)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let verifier = Verifier::from_set(&set, "https://cinema.test", "cinema");
        (set, verifier)
    }

    fn claims() -> Claims {
        Claims {
            iss: "https://cinema.test".into(),
            aud: "cinema".into(),
            sub: "u1".into(),
            sid: "s1".into(),
            roles: vec!["subscriber".into()],
            email_verified: true,
            iat: NOW,
            exp: NOW + 900,
            nbf: None,
        }
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn round_trip() {
        let (set, v) = setup();
        let t = sign(set.signer.as_ref().unwrap(), &claims()).unwrap();
        assert_eq!(v.verify(&t, NOW + 10).unwrap(), claims());
    }

    #[test]
    fn expiry_and_nbf_use_the_given_clock() {
        let (set, v) = setup();
        let signer = set.signer.as_ref().unwrap();
        let t = sign(signer, &claims()).unwrap();
        assert!(v.verify(&t, NOW + 900 + LEEWAY_SECS).is_ok());
        assert_eq!(
            v.verify(&t, NOW + 900 + LEEWAY_SECS + 1),
            Err(TokenError::Expired)
        );
        let mut c = claims();
        c.nbf = Some(NOW + 300);
        let t = sign(signer, &c).unwrap();
        assert_eq!(v.verify(&t, NOW), Err(TokenError::NotYetValid));
        assert!(v.verify(&t, NOW + 300).is_ok());
    }

    #[test]
    fn refuses_forgeries() {
        let (set, v) = setup();
        let signer = set.signer.as_ref().unwrap();
        let kid = &signer.kid;
        let good = sign(signer, &claims()).unwrap();
        let payload = good.split('.').nth(1).unwrap().to_string();

        // alg none, with and without a signature
        let none = format!(
            "{}.{payload}.",
            b64(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#))
        );
        assert_eq!(v.verify(&none, NOW), Err(TokenError::Malformed));
        // HS256 keyed with the public key (the classic confusion attack)
        let x = &set.public[0].x;
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some(kid.clone()),
                ..Header::new(Algorithm::HS256)
            },
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hs, NOW), Err(TokenError::Algorithm));
        // signature of another payload
        let mut other = claims();
        other.roles = vec!["admin".into()];
        let forged_payload = b64(&serde_json::to_string(&other).unwrap());
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = &forged_payload;
        assert_eq!(v.verify(&parts.join("."), NOW), Err(TokenError::Signature));
        // wrong issuer / audience
        let mut c = claims();
        c.iss = "https://evil.test".into();
        assert_eq!(
            v.verify(&sign(signer, &c).unwrap(), NOW),
            Err(TokenError::Claims)
        );
        let mut c = claims();
        c.aud = "other".into();
        assert_eq!(
            v.verify(&sign(signer, &c).unwrap(), NOW),
            Err(TokenError::Claims)
        );
        // garbage, bad base64, bad JSON, too long
        for bad in [
            "",
            "abc",
            "a.b.c",
            "!!!.@@@.###",
            &format!("{}.e30.", b64("{")),
        ] {
            assert!(v.verify(bad, NOW).is_err(), "{bad}");
        }
        let long = format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(v.verify(&long, NOW), Err(TokenError::TooLong));
        // unknown kid
        let (other_set, _) = setup();
        let t = sign(other_set.signer.as_ref().unwrap(), &claims()).unwrap();
        assert_eq!(v.verify(&t, NOW), Err(TokenError::UnknownKey));
    }
}
