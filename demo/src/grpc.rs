//! A gRPC method of the demo service, `grpc.health.v1.Health/Check`, answered SERVING over
//! HTTP/2 (the listener takes h2c prior knowledge beside HTTP/1.1): what the edge's `h2c`
//! upstreams and gRPC error mapping are shown and benchmarked with. Written out by hand (the
//! message is two protobuf bytes) so the demo needs no protobuf toolchain.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::StreamBody;
use std::convert::Infallible;

/// `HealthCheckResponse { status: SERVING }` (field 1, varint 1) behind gRPC's 5-byte frame
/// header (not compressed, length 2).
const SERVING: &[u8] = &[0, 0, 0, 0, 2, 0x08, 0x01];

/// Reads the request message first, as gRPC servers do: a server answering before the
/// request stream ends resets it, and HTTP/2 servers cap such resets per connection.
pub async fn health_check(_request: Bytes) -> Response {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(SERVING))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(Body::new(StreamBody::new(frames)))
        .unwrap_or_default()
}
