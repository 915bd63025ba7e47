//! Where a request carries its access token: `Authorization: Bearer <token>` first, then,
//! when configured, a cookie (browsers of the web client).

use auth_core::plumbing::bearer;
use pingora::http::RequestHeader;

/// The request's token, if it carries one.
pub fn token<'r>(req: &'r RequestHeader, cookie: Option<&str>) -> Option<&'r str> {
    bearer::token(&req.headers)
        .or_else(|| cookie.and_then(|name| auth_core::plumbing::cookie::get(&req.headers, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn bearer_first_then_the_configured_cookie() {
        let both = req(&[("authorization", "Bearer aaa"), ("cookie", "at=ccc")]);
        assert_eq!(token(&both, Some("at")), Some("aaa"));
        let cookie = req(&[("cookie", "theme=dark; at=ccc; x=y")]);
        assert_eq!(token(&cookie, Some("at")), Some("ccc"));
        assert_eq!(
            token(&cookie, None),
            None,
            "cookies are read only when configured"
        );
        let split = req(&[("cookie", "theme=dark"), ("cookie", "at=\"ddd\"")]);
        assert_eq!(token(&split, Some("at")), Some("ddd"));
        assert_eq!(token(&req(&[("cookie", "xat=1; at=")]), Some("at")), None);
        assert_eq!(
            token(&req(&[("authorization", "bearer  bbb ")]), None),
            Some("bbb")
        );
        assert_eq!(token(&req(&[("authorization", "Basic Zm9v")]), None), None);
        assert_eq!(token(&req(&[("authorization", "Bearer ")]), None), None);
    }
}
