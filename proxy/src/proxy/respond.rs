//! Answers the edge writes itself: JSON `{"error", "request_id"}` with Content-Length, so no
//! client is left waiting for a body that never ends.

use crate::proxy::error::EdgeError;
use bytes::Bytes;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

/// Builds the JSON body of an error.
pub fn error_body(message: &str, code: &str, request_id: &HeaderValue) -> Bytes {
    let id = request_id.to_str().unwrap_or("");
    Bytes::from(serde_json::json!({ "error": message, "code": code, "request_id": id }).to_string())
}

/// Writes `err` as a complete JSON response.
pub async fn error(session: &mut Session, err: &EdgeError, request_id: &HeaderValue) -> Result<()> {
    error_with(session, err, request_id, |_| Ok(())).await
}

/// Like `error`, with more headers set by `extra` (e.g. RateLimit-*).
pub async fn error_with(
    session: &mut Session,
    err: &EdgeError,
    request_id: &HeaderValue,
    extra: impl FnOnce(&mut ResponseHeader) -> Result<()>,
) -> Result<()> {
    if is_grpc(session.req_header()) {
        return grpc_error(session, err, request_id, extra).await;
    }
    let body = error_body(&err.to_string(), err.code(), request_id);
    let mut header = ResponseHeader::build(err.status(), Some(10))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    header.insert_header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
    header.insert_header(crate::proxy::request_id::HEADER, request_id)?;
    if let Some(secs) = err.retry_after() {
        header.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    if let Some(challenge) = err.www_authenticate() {
        header.insert_header(http::header::WWW_AUTHENTICATE, challenge)?;
    }
    extra(&mut header)?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

/// A gRPC call (`content-type: application/grpc`, `+proto`, `+json`…): its client reads
/// `grpc-status`, not the HTTP status or a JSON body.
fn is_grpc(req: &pingora::http::RequestHeader) -> bool {
    // gRPC is a POST over HTTP/2; grpc-web (HTTP/1.1, its own content types) gets JSON
    req.version == http::Version::HTTP_2
        && req.method == http::Method::POST
        && req
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| {
                let v = v.as_bytes();
                v == b"application/grpc" || v.starts_with(b"application/grpc+")
            })
}

/// A gRPC "trailers-only" answer: HTTP 200 with `grpc-status`, `grpc-message` (ASCII, no
/// '%': nothing to percent-encode) and the request id, and no message.
async fn grpc_error(
    session: &mut Session,
    err: &EdgeError,
    request_id: &HeaderValue,
    extra: impl FnOnce(&mut ResponseHeader) -> Result<()>,
) -> Result<()> {
    let mut header = ResponseHeader::build(200, Some(9))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/grpc")?;
    header.insert_header("grpc-status", u16::from(err.grpc_status()))?;
    header.insert_header("grpc-message", err.to_string())?;
    header.insert_header(http::header::CONTENT_LENGTH, 0)?;
    header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    header.insert_header(crate::proxy::request_id::HEADER, request_id)?;
    if let Some(secs) = err.retry_after() {
        header.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    extra(&mut header)?;
    session.write_response_header(Box::new(header), true).await
}

/// A body the edge produced itself (metrics, health, challenges).
pub async fn text(
    session: &mut Session,
    status: u16,
    content_type: &'static str,
    body: String,
    request_id: &HeaderValue,
) -> Result<()> {
    full(
        session,
        status,
        content_type,
        Bytes::from(body),
        request_id,
        |_| Ok(()),
    )
    .await
}

/// A complete response with `Content-Length`, `Cache-Control: no-store` and the request id;
/// `extra` sets more headers.
pub async fn full(
    session: &mut Session,
    status: u16,
    content_type: &'static str,
    body: Bytes,
    request_id: &HeaderValue,
    extra: impl FnOnce(&mut ResponseHeader) -> Result<()>,
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(8))?;
    header.insert_header(http::header::CONTENT_TYPE, content_type)?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    header.insert_header(crate::proxy::request_id::HEADER, request_id)?;
    extra(&mut header)?;
    let empty = body.is_empty();
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if empty {
        return Ok(());
    }
    session.write_response_body(Some(body), true).await
}

/// A redirect with an empty body.
pub async fn redirect(
    session: &mut Session,
    location: &str,
    request_id: &HeaderValue,
) -> Result<()> {
    let mut header = ResponseHeader::build(308, Some(4))?;
    header.insert_header(http::header::LOCATION, location)?;
    header.insert_header(http::header::CONTENT_LENGTH, 0)?;
    header.insert_header(crate::proxy::request_id::HEADER, request_id)?;
    session.write_response_header(Box::new(header), true).await
}
