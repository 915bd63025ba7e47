//! `Authorization: Bearer <token>` (RFC 6750 §2.1).

use http::header::AUTHORIZATION;
use http::HeaderMap;

/// The token of a bearer `Authorization` header: the scheme case-insensitive, the token
/// trimmed; an empty token counts as absent.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(token(&auth("Bearer abc")), Some("abc"));
        assert_eq!(token(&auth("bearer  abc ")), Some("abc"));
        assert_eq!(token(&auth("Bearer ")), None);
        assert_eq!(token(&auth("Bearer")), None);
        assert_eq!(token(&auth("Basic YTpi")), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
