//! Verification of an OpenID Connect `id_token` (Core 1.0, 3.1.3.7): signature by a key of the
//! provider's JWKS, `iss`, `aud` (and `azp` when several audiences), `exp`, and the `nonce` of
//! this flow. Only asymmetric algorithms: `none` and HMAC (which would make the client secret
//! a signing key) are refused. `now` is a parameter so tests drive the clock.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

pub struct Expect<'a> {
    /// Accepted `iss` values (Google uses two forms).
    pub issuers: &'a [String],
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdTokenError {
    #[error("malformed id_token")]
    Malformed,
    #[error("id_token algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// The key is not (yet) in our copy of the JWKS: fetch it again once.
    #[error("no provider key with kid {0:?}")]
    UnknownKey(Option<String>),
    #[error("id_token refused: {0}")]
    Invalid(String),
}

const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The token's claims, once every check has passed.
pub fn verify(token: &str, keys: &JwkSet, expect: &Expect<'_>) -> Result<Value, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(header.alg));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        // no kid: acceptable only when the provider publishes a single key
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| IdTokenError::UnknownKey(header.kid.clone()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdTokenError::Invalid(format!("key: {e}")))?;
    let mut v = Validation::new(header.alg);
    // expiry is checked below against `now`, not the system clock
    v.validate_exp = false;
    v.required_spec_claims = ["iss", "aud", "sub", "exp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.set_issuer(expect.issuers);
    v.set_audience(&[expect.client_id]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| IdTokenError::Invalid(e.to_string()))?
        .claims;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp + LEEWAY_SECS < expect.now {
        return Err(IdTokenError::Invalid("expired".into()));
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > expect.now + LEEWAY_SECS)
    {
        return Err(IdTokenError::Invalid("issued in the future".into()));
    }
    // several audiences: the authorized party must be us (Core 3.1.3.7, step 4-5)
    if claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(expect.client_id)
    {
        return Err(IdTokenError::Invalid("azp is not this client".into()));
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(expect.nonce) {
        return Err(IdTokenError::Invalid(
            "nonce does not match this sign-in".into(),
        ));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::SigningKey;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    struct Op {
        enc: EncodingKey,
        jwks: JwkSet,
    }

    fn op(kid: &str) -> Op {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let der = sk.to_pkcs8_der().unwrap();
        let x = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let jwks = serde_json::from_value(json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}
        ]}))
        .unwrap();
        Op {
            enc: EncodingKey::from_ed_der(der.as_bytes()),
            jwks,
        }
    }

    fn sign(op: &Op, kid: Option<&str>, claims: Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, &claims, &op.enc).unwrap()
    }

    fn good() -> Value {
        json!({"iss": "https://accounts.google.com", "aud": "cid", "sub": "1", "nonce": "n1",
               "iat": NOW - 10, "exp": NOW + 3600, "email": "a@gmail.test", "email_verified": true})
    }

    fn expect<'a>(issuers: &'a [String]) -> Expect<'a> {
        Expect {
            issuers,
            client_id: "cid",
            nonce: "n1",
            now: NOW,
        }
    }

    fn issuers() -> Vec<String> {
        vec![
            "https://accounts.google.com".into(),
            "accounts.google.com".into(),
        ]
    }

    #[test]
    fn a_good_token_passes_in_both_google_issuer_forms() {
        let op = op("k1");
        let iss = issuers();
        let claims = verify(&sign(&op, Some("k1"), good()), &op.jwks, &expect(&iss)).unwrap();
        assert_eq!(claims["sub"], "1");
        let mut c = good();
        c["iss"] = json!("accounts.google.com");
        assert!(verify(&sign(&op, Some("k1"), c), &op.jwks, &expect(&iss)).is_ok());
    }

    #[test]
    fn each_claim_is_checked() {
        let op = op("k1");
        let iss = issuers();
        for (field, value) in [
            ("iss", json!("https://evil.test")),
            ("aud", json!("someone-else")),
            ("nonce", json!("replayed")),
            ("exp", json!(NOW - 120)),
            ("iat", json!(NOW + 600)),
            ("aud", json!(["cid", "other"])),
        ] {
            let mut c = good();
            c[field] = value.clone();
            let r = verify(&sign(&op, Some("k1"), c), &op.jwks, &expect(&iss));
            assert!(r.is_err(), "{field} = {value} passed");
        }
        let mut c = good();
        c.as_object_mut().unwrap().remove("nonce");
        assert!(verify(&sign(&op, Some("k1"), c), &op.jwks, &expect(&iss)).is_err());
    }

    #[test]
    fn keys_and_algorithms() {
        let op1 = op("k1");
        let iss = issuers();
        let t = sign(&op1, Some("k2"), good());
        assert_eq!(
            verify(&t, &op1.jwks, &expect(&iss)),
            Err(IdTokenError::UnknownKey(Some("k2".into())))
        );
        // a single published key is used when the token names none
        assert!(verify(&sign(&op1, None, good()), &op1.jwks, &expect(&iss)).is_ok());
        // HS256 signed with anything is refused before any key is looked at
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good(),
            &EncodingKey::from_secret(b"client-secret"),
        )
        .unwrap();
        assert_eq!(
            verify(&hs, &op1.jwks, &expect(&iss)),
            Err(IdTokenError::Algorithm(Algorithm::HS256))
        );
        // a tampered payload fails the signature
        let t = sign(&op1, Some("k1"), good());
        let mut parts: Vec<&str> = t.split('.').collect();
        let mut c = good();
        c["sub"] = json!("2");
        let forged = URL_SAFE_NO_PAD.encode(c.to_string());
        parts[1] = &forged;
        assert!(verify(&parts.join("."), &op1.jwks, &expect(&iss)).is_err());
        assert_eq!(
            verify("not a token", &op1.jwks, &expect(&iss)),
            Err(IdTokenError::Malformed)
        );
    }
}
