//! What one request may carry: a header block of `[http] max_header_block` (431 above it) and
//! a body of the route's `max_body` (413), the body checked from `Content-Length` before it
//! is read and counted while it streams (chunked or HTTP/2), never buffered. Only the bytes
//! after a completed upgrade (101: WebSocket frames) are not a body.

use crate::proxy::error::EdgeError;
use pingora::http::RequestHeader;
use pingora::{Error, ErrorType, Result};

/// The error a body filter raises; `fail_to_proxy` answers it with 413.
pub const BODY_TOO_LARGE: ErrorType = ErrorType::Custom("BodyTooLarge");

/// The size of the request line and header block as sent over HTTP/1.1 (what nginx and
/// Envoy bound), whatever the protocol it came in.
pub fn header_block_size(req: &RequestHeader) -> usize {
    // "GET <target> HTTP/1.1\r\n" and the final "\r\n"
    let line = req.method.as_str().len() + req.raw_path().len() + 12;
    req.headers.iter().fold(line + 2, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}

/// The limit a request starts with; 413 at once when its `Content-Length` is over it.
pub fn body_limit(
    req: &RequestHeader,
    limit: Option<u64>,
) -> Result<Option<BodyCounter>, EdgeError> {
    let Some(limit) = limit else {
        return Ok(None);
    };
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(EdgeError::BodyTooLarge),
        // what was declared is what Pingora reads: nothing to count
        Some(_) => Ok(None),
        // an `Upgrade` header alone changes nothing: only frames after a real 101 are not
        // a body (`request_body_filter` skips those)
        None => Ok(Some(BodyCounter { limit, seen: 0 })),
    }
}

/// The bytes of a streamed body so far, against its limit.
#[derive(Debug, Clone, Copy)]
pub struct BodyCounter {
    limit: u64,
    seen: u64,
}

impl BodyCounter {
    pub fn count(&mut self, chunk: usize) -> Result<()> {
        self.seen = self.seen.saturating_add(chunk as u64);
        if self.seen > self.limit {
            return Error::e_explain(
                BODY_TOO_LARGE,
                format!("request body over {} bytes", self.limit),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/upload?x=1", None).unwrap();
        for (n, v) in headers {
            r.append_header(*n, *v).unwrap();
        }
        r
    }

    #[test]
    fn header_block_counts_line_and_headers() {
        let small = header_block_size(&req(&[("host", "a")]));
        // "POST /upload?x=1 HTTP/1.1\r\n" + "host: a\r\n" + "\r\n"
        assert_eq!(small, 27 + 9 + 2);
        let big = header_block_size(&req(&[("cookie", &"a".repeat(40_000))]));
        assert!(big > 40_000);
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_up_front() {
        let r = req(&[("content-length", "1048577")]);
        assert!(matches!(
            body_limit(&r, Some(1 << 20)),
            Err(EdgeError::BodyTooLarge)
        ));
        let r = req(&[("content-length", "1048576")]);
        assert!(body_limit(&r, Some(1 << 20)).unwrap().is_none());
        assert!(body_limit(&r, None).unwrap().is_none());
    }

    #[test]
    fn streamed_bodies_are_counted() {
        let r = req(&[("transfer-encoding", "chunked")]);
        let mut counter = body_limit(&r, Some(10)).unwrap().unwrap();
        assert!(counter.count(6).is_ok());
        assert!(counter.count(4).is_ok());
        let e = counter.count(1).unwrap_err();
        assert_eq!(e.etype(), &BODY_TOO_LARGE);
        // an Upgrade header does not lift the limit (the frames after a 101 are skipped by
        // the body filter, not here)
        let ws = req(&[("upgrade", "websocket"), ("content-length", "5000")]);
        assert!(matches!(
            body_limit(&ws, Some(10)),
            Err(EdgeError::BodyTooLarge)
        ));
        let ws = req(&[("upgrade", "websocket")]);
        assert!(body_limit(&ws, Some(10)).unwrap().is_some());
    }
}
