//! gRPC through the edge: a real tonic server (the standard `grpc.health.v1.Health` service,
//! unary and server-streaming) behind an `h2c` upstream, a real tonic client speaking h2c to
//! the edge. Calls and their trailers pass through; the edge's own refusals reach the client
//! as gRPC statuses (UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, UNAVAILABLE).

use crate::support::edge::Edge;
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};
use tonic_health::server::HealthReporter;

/// A tonic server on a free port; stops with the test's runtime.
async fn grpc_server() -> (u16, HealthReporter) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("movies", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (port, reporter)
}

fn conf(grpc_port: u16, dead_port: u16) -> String {
    format!(
        "[auth]\njwks_url = \"http://127.0.0.1:9/jwks\"\nissuer = \"i\"\naudience = \"a\"\n\
         [limit.one]\nkey = \"ip\"\nrate = \"1/m\"\nburst = 1\non_redis_down = \"local\"\n\
         [[route]]\nname = \"health\"\npath = \"/grpc.health.v1.Health\"\nupstream = \"grpc\"\nmax_body = \"off\"\n\
         [upstream.grpc]\nservers = [\"127.0.0.1:{grpc_port}\"]\nprotocol = \"h2c\"\n\
         health_check = {{ interval = \"1s\" }}\n\
         [upstream.dead]\nservers = [\"127.0.0.1:{dead_port}\"]\nprotocol = \"h2c\"\n"
    )
}

async fn client(edge: &Edge) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", edge.port))
        .expect("a URI")
        .connect()
        .await
        .expect("h2c to the edge");
    HealthClient::new(channel)
}

fn check(service: &str) -> tonic::Request<HealthCheckRequest> {
    tonic::Request::new(HealthCheckRequest {
        service: service.into(),
    })
}

#[tokio::test]
async fn unary_and_streaming_calls_pass_through_with_their_trailers() {
    let (port, reporter) = grpc_server().await;
    let edge = Edge::start_full(
        "h2c = true",
        &conf(port, crate::support::free_port()),
        |_, _| String::new(),
    );
    let mut c = client(&edge).await;
    // unary, answered by the server
    let r = c
        .check(check("movies"))
        .await
        .expect("a unary call through the edge");
    assert_eq!(r.get_ref().status, ServingStatus::Serving as i32);
    assert!(
        r.metadata().get("x-request-id").is_some(),
        "the edge's request id"
    );
    // the server's own error status travels in its trailers and reaches the client
    let e = c.check(check("no-such-service")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // server streaming: the status changes on the server arrive through the edge, in order
    let mut stream = c.watch(check("movies")).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    reporter
        .set_service_status("movies", tonic_health::ServingStatus::NotServing)
        .await;
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a streamed update")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // HTTP/1.1 clients still work on the same listener, and requests shorter than the
    // HTTP/2 preface (24 bytes) are answered, not held waiting for more bytes
    let r = reqwest::get(edge.url("/_edge/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    let addr = ([127, 0, 0, 1], edge.port).into();
    for short in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"OPTIONS / HTTP/1.0\r\n\r\n",
    ] {
        let started = std::time::Instant::now();
        let r = tokio::task::spawn_blocking(move || crate::support::raw::send(addr, short))
            .await
            .unwrap();
        assert!(r.is_some(), "{} bytes: no answer", short.len());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn the_edges_refusals_are_grpc_statuses() {
    let (port, _reporter) = grpc_server().await;
    let dead = crate::support::free_port();
    let routes = conf(port, dead)
        + "[[route]]\nname = \"secured\"\npath = \"/secured.Api\"\nupstream = \"grpc\"\nauth = \"required\"\n\
           [[route]]\nname = \"limited\"\npath = \"/grpc.health.v1.Health/Check\"\nupstream = \"grpc\"\nlimits = [\"one\"]\n\
           [[route]]\nname = \"down\"\npath = \"/down.Api\"\nupstream = \"dead\"\n";
    let edge = Edge::start_full("h2c = true", &routes, |_, _| String::new());
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", edge.port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    let call = |path: &'static str| {
        let mut grpc = grpc.clone();
        async move {
            grpc.ready().await.unwrap();
            let codec = tonic_prost_codec();
            grpc.unary::<HealthCheckRequest, tonic_health::pb::HealthCheckResponse, _>(
                tonic::Request::new(HealthCheckRequest::default()),
                path.parse().unwrap(),
                codec,
            )
            .await
        }
    };
    let e = call("/secured.Api/Get").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.metadata().get("x-request-id").is_some());
    let e = call("/nowhere.Api/Get").await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    let e = call("/down.Api/Get").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    // the first call within the limit passes, the next is RESOURCE_EXHAUSTED with Retry-After
    let mut c = HealthClient::new(channel);
    c.check(check("movies")).await.expect("within the limit");
    let e = c.check(check("movies")).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.metadata().get("retry-after").is_some());
    grpc.ready().await.unwrap();
}

fn tonic_prost_codec(
) -> tonic_prost::ProstCodec<HealthCheckRequest, tonic_health::pb::HealthCheckResponse> {
    tonic_prost::ProstCodec::default()
}

/// `protocol = "h2"`: HTTP/2 negotiated by ALPN over TLS to an upstream (Debian's nginx with
/// `ssl http2` and a certificate the test makes; the edge trusts it through `SSL_CERT_FILE`,
/// which OpenSSL's default verify paths read).
#[tokio::test]
async fn an_h2_upstream_over_tls_is_spoken_to_in_http2() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["upstream.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "upstream.test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    let (cert_path, key_path) = (dir.path().join("up.pem"), dir.path().join("up.key"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let nginx = crate::support::nginx::Nginx::start_listening(
        "ssl http2",
        "",
        &format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n\
             location / {{ add_header x-upstream-protocol $server_protocol always; return 200 \"$server_protocol\"; }}\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let routes = |protocol: &str| {
        format!(
            "[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"tls\"\n\
             [upstream.tls]\nservers = [\"127.0.0.1:{}\"]\ntls = true\nsni = \"upstream.test\"\nprotocol = \"{protocol}\"\n",
            nginx.port
        )
    };
    let ca = cert_path.to_string_lossy().into_owned();
    for (protocol, expected) in [("h2", "HTTP/2.0"), ("h1", "HTTP/1.1")] {
        let edge = Edge::start_env(
            "info",
            "",
            &routes(protocol),
            |_, _| String::new(),
            &[("SSL_CERT_FILE", ca.as_str())],
        );
        let r = reqwest::get(edge.url("/x")).await.unwrap();
        assert_eq!(r.status(), 200, "{protocol}: {}", edge.logs());
        assert_eq!(
            r.text().await.unwrap(),
            expected,
            "protocol = \"{protocol}\""
        );
    }
}
