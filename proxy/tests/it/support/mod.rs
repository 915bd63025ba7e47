//! Test harness shared by every integration test: the real `edge` binary, real upstream HTTP
//! servers, and real Redis and PostgreSQL servers, all on free 127.0.0.1 ports and all stopped
//! when their handle is dropped.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod auth;
pub mod browser;
pub mod edge;
pub mod fastapi;
pub mod nginx;
pub mod oidc;
pub mod otel;
pub mod postgres;
pub mod raw;
pub mod redis;
pub mod served;
pub mod site;
pub mod slow_proxy;
pub mod smtp;
pub mod social;
pub mod topology;
pub mod upstream;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    check()
}

/// `routes.toml` with one catch-all route "r" to pool "p" of `servers`; `upstream_extra` adds
/// keys to `[upstream.p]`.
pub fn one_route(servers: &[String], upstream_extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"p\"\n[upstream.p]\nservers = [{}]\n{upstream_extra}",
        list.join(", ")
    )
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A client whose connections come from `ip`: any 127.0.0.0/8 address is local here, so one
/// test can play clients on several addresses (the edge sees them as socket peers).
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<std::net::IpAddr>().ok())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A path to a binary installed by Debian that a test needs.
pub fn need(binary: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = format!("{dir}/{binary}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{binary} is not installed: run `make test`, which installs the test dependencies");
}
