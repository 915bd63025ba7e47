//! Reading one cookie from a request's `Cookie` headers (RFC 6265 `name=value; name=value`).

use http::header::COOKIE;
use http::HeaderMap;

/// The value of cookie `name` in any `Cookie` header: the first one named so, quotes around
/// the value dropped; an empty value counts as absent.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim_end() == name).then(|| v.trim().trim_matches('"'))
        })
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn finds_a_cookie_across_headers_and_treats_empty_as_absent() {
        let h = headers(&["theme=dark; sid=\"abc\"", "other=1;token=t"]);
        assert_eq!(get(&h, "sid"), Some("abc"));
        assert_eq!(get(&h, "token"), Some("t"));
        assert_eq!(get(&h, "theme"), Some("dark"));
        assert_eq!(get(&h, "missing"), None);
        assert_eq!(get(&headers(&["sid="]), "sid"), None);
        assert_eq!(get(&headers(&["sid=\"\""]), "sid"), None);
        // the first cookie of the name decides, as browsers send the most specific first
        assert_eq!(get(&headers(&["sid=; sid=b"]), "sid"), None);
        // a prefix of another name is not that name
        assert_eq!(get(&headers(&["session=x"]), "sid"), None);
    }
}
