//! `pingora-floor LISTEN UPSTREAM [POOL] [READ_BUFFER]`: the least a Pingora proxy does — one listener, one
//! upstream, keep-alive to it, nothing else (no request id, no routing, no logging). Built
//! with the edge's Pingora version, features, allocator and release profile, so `bench/`
//! can show what the edge's policy costs on top of its own framework in the same run.
//! `FLOOR_LISTENER_TASKS=N` sets Pingora's `listener_tasks_per_fd` (accept tasks per listening
//! socket) for `bench/pingora-options.sh`.

use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};
use std::net::SocketAddr;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {
        // as the edge: no compression module
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: pingora-floor LISTEN UPSTREAM [UPSTREAM_POOL_SIZE] [CLIENT_READ_BUFFER]");
        return ExitCode::from(2);
    };
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("pingora-floor: {upstream} is not an address");
        return ExitCode::from(2);
    };
    let pool = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(128);
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: pool,
        listener_tasks_per_fd: std::env::var("FLOOR_LISTENER_TASKS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Floor { upstream });
    // Pingora's default client read buffer (64 KiB) unless one is given, to compare
    let mut listener = ListenerConfig::tcp(listen.as_str());
    if let Some(read) = args.get(4).and_then(|b| b.parse().ok()) {
        listener = listener.l4_buffer(L4BufferSettings::default().read(read));
    }
    proxy.add_listener(listener);
    server.add_service(proxy);
    server.run_forever()
}
