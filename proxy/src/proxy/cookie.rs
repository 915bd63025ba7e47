//! Reading one cookie from a request's `Cookie` headers (RFC 6265 `name=value; name=value`).

use pingora::http::RequestHeader;

/// The value of cookie `name` in any `Cookie` header; quotes around the value are dropped.
pub fn get<'r>(req: &'r RequestHeader, name: &str) -> Option<&'r str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name)
                .then(|| v.trim_matches('"'))
                .filter(|v| !v.is_empty())
        })
}
