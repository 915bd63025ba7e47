//! `x-request-id`: keep a safe incoming id, otherwise mint a UUIDv7 (time-ordered, so ids sort
//! by arrival in logs and indexes).

use http::HeaderValue;

pub use auth_core::plumbing::request_id::{is_safe, HEADER};

/// The incoming id if it is safe, otherwise a fresh one.
pub fn from_incoming(incoming: Option<&HeaderValue>) -> HeaderValue {
    match incoming {
        Some(v) if is_safe(v.as_bytes()) => v.clone(),
        _ => generate(),
    }
}

pub fn generate() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let s = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_safe_ids() {
        for id in ["a", "req-1", "A.b_c:d-E", &"x".repeat(128)] {
            let v = HeaderValue::from_str(id).unwrap();
            assert_eq!(from_incoming(Some(&v)), v, "{id}");
        }
    }

    #[test]
    fn replaces_unsafe_ids() {
        let too_long = "x".repeat(129);
        for id in [
            "",
            "a b",
            "a/b",
            "a\tb",
            "ü",
            too_long.as_str(),
            "{\"x\":1}",
        ] {
            let v = HeaderValue::from_bytes(id.as_bytes()).unwrap();
            let out = from_incoming(Some(&v));
            assert_ne!(out, v, "{id:?} was kept");
            assert!(is_uuid_v7(out.to_str().unwrap()), "{out:?}");
        }
        assert!(is_uuid_v7(from_incoming(None).to_str().unwrap()));
    }

    #[test]
    fn generated_ids_are_unique_and_ordered() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.as_bytes() <= b.as_bytes());
    }

    fn is_uuid_v7(s: &str) -> bool {
        uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 7)
    }
}
