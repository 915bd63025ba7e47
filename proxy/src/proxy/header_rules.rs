//! A route's header rules (`request_headers`, `response_headers`): headers removed, set or
//! added on the way through. Names and values are parsed once by the conf, so applying them
//! allocates nothing but the header map's own entries.

use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    pub remove: Box<[HeaderName]>,
    pub set: Box<[(HeaderName, HeaderValue)]>,
    pub add: Box<[(HeaderName, HeaderValue)]>,
}

impl HeaderRules {
    /// Remove first, then set, then add: a rule that removes and adds one name leaves only
    /// the added value.
    pub fn apply_request(&self, req: &mut RequestHeader) -> Result<()> {
        for name in self.remove.iter() {
            req.remove_header(name);
        }
        for (name, value) in self.set.iter() {
            req.insert_header(name, value)?;
        }
        for (name, value) in self.add.iter() {
            req.append_header(name, value)?;
        }
        Ok(())
    }

    pub fn apply_response(&self, resp: &mut ResponseHeader) -> Result<()> {
        for name in self.remove.iter() {
            resp.remove_header(name);
        }
        for (name, value) in self.set.iter() {
            resp.insert_header(name, value)?;
        }
        for (name, value) in self.add.iter() {
            resp.append_header(name, value)?;
        }
        Ok(())
    }
}

/// Request headers a rule may not touch: the edge writes them from what it verified (identity,
/// client address, request id, trace) or they frame the message.
pub const REQUEST_RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "forwarded",
    crate::filters::identity::USER_ID,
    crate::filters::identity::USER_ROLES,
    crate::filters::identity::AUTH_STATUS,
    crate::filters::identity::AUTH_ISSUER,
];

/// Response headers a rule may not touch: framing, and what the edge itself reports.
pub const RESPONSE_RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "trailer",
    "upgrade",
    "x-request-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
];

/// Headers of every HTML page the edge writes itself (the bot filter's challenge): no
/// framing (clickjacking an answer form), no sniffing, no referrer carrying the return path,
/// no script and no third-party anything.
pub const HTML_SECURITY: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> HeaderRules {
        let h = |n: &'static str| HeaderName::from_static(n);
        let v = |v: &'static str| HeaderValue::from_static(v);
        HeaderRules {
            remove: vec![h("x-debug"), h("x-tag")].into(),
            set: vec![(h("x-service"), v("movies"))].into(),
            add: vec![(h("x-tag"), v("edge"))].into(),
        }
    }

    #[test]
    fn remove_then_set_then_add() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("x-debug", "1").unwrap();
        req.append_header("x-service", "spoofed").unwrap();
        req.append_header("x-service", "twice").unwrap();
        req.append_header("x-tag", "client").unwrap();
        rules().apply_request(&mut req).unwrap();
        assert!(req.headers.get("x-debug").is_none());
        let service: Vec<_> = req.headers.get_all("x-service").iter().collect();
        assert_eq!(service, vec!["movies"]);
        let tags: Vec<_> = req.headers.get_all("x-tag").iter().collect();
        assert_eq!(tags, vec!["edge"]);
    }

    #[test]
    fn response_rules_apply_too() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("x-debug", "secret").unwrap();
        rules().apply_response(&mut resp).unwrap();
        assert!(resp.headers.get("x-debug").is_none());
        assert_eq!(resp.headers.get("x-service").unwrap(), "movies");
    }
}
