//! Which incoming `x-request-id` values are kept (the edge's, and the core's when it is
//! reached directly); anything else is replaced by a fresh UUIDv7.

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

/// An id is kept only if it is 1–128 characters of `[A-Za-z0-9._:-]`: nothing that could
/// split a log line, inject a header or bloat every downstream log.
pub fn is_safe(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A new id: UUIDv7, time-ordered, so ids sort by arrival in logs and indexes.
pub fn generate() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_are_short_and_plain() {
        for id in ["a", "req-1", "A.b_c:d-E", &"x".repeat(128)] {
            assert!(is_safe(id.as_bytes()), "{id}");
        }
        for id in ["", "a b", "a\r\nb", "a\"b", "ü", &"x".repeat(129)] {
            assert!(!is_safe(id.as_bytes()), "{id:?}");
        }
        assert!(is_safe(generate().as_bytes()));
    }
}
