//! Reading one cookie from a request's `Cookie` headers (RFC 6265 `name=value; name=value`).

use http::header::COOKIE;
use http::HeaderMap;

/// The value of cookie `name` in any `Cookie` header: the first one named so, quotes around
/// the value dropped; an empty value counts as absent. Read as bytes: another cookie with a
/// non-ASCII value does not hide this one.
pub fn get_bytes<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|h| h.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (k, v) = (pair[..eq].trim_ascii_end(), pair[eq + 1..].trim_ascii());
            (k == name.as_bytes()).then(|| unquote(v))
        })
        .filter(|v| !v.is_empty())
}

/// `get_bytes` as text; a value that is not UTF-8 counts as absent.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    get_bytes(headers, name).and_then(|v| std::str::from_utf8(v).ok())
}

fn unquote(v: &[u8]) -> &[u8] {
    let v = v.strip_prefix(b"\"").unwrap_or(v);
    v.strip_suffix(b"\"").unwrap_or(v)
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
        // another cookie's non-ASCII value does not hide this one
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            http::HeaderValue::from_bytes("name=Zo\u{eb}; sid=abc".as_bytes()).unwrap(),
        );
        assert_eq!(get(&h, "sid"), Some("abc"));
        assert_eq!(get_bytes(&h, "name"), Some("Zo\u{eb}".as_bytes()));
    }
}
