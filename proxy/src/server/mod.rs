//! Builds the Pingora server from a validated config: server settings, listeners, the proxy
//! service and the reloader.

pub mod auth_host;
pub mod connections;
pub mod drain;
pub mod generation;
pub mod open_files;
pub mod redis_client;
pub mod reload;
pub mod shared;
pub mod tls;

use crate::config::Config;
use crate::observe::health::{Readiness, ReadinessProber};
use crate::proxy::service::Edge;
use crate::server::drain::DrainWatch;
use crate::server::redis_client::{RedisConnector, SharedRedis};
use crate::server::reload::{Live, Reloader};
use crate::server::shared::Shared;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use std::sync::Arc;
use std::sync::Mutex;

/// How the process was started.
pub struct Launch {
    /// Take the listening sockets over from a running edge (zero-downtime binary upgrade).
    pub upgrade: bool,
    pub daemon: bool,
}

fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        grace_period_seconds: Some(s.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout.as_secs().max(1)),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        ..ServerConf::default()
    }
}

/// Runs until SIGTERM/SIGINT (graceful) or SIGQUIT (hand over to an upgraded binary).
pub fn run(
    config: Config,
    launch: Launch,
    tracing: Option<Arc<crate::observe::traces::Tracing>>,
) -> Result<(), String> {
    let opt = Opt {
        upgrade: launch.upgrade,
        daemon: launch.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&config));
    server.bootstrap();

    let redirects = config
        .listeners
        .iter()
        .filter_map(|l| l.redirect_https_port.map(|https| (l.address.port(), https)))
        .collect();
    let listeners = config.listeners.clone();
    let access_log = config.log.access_log;
    let dir = config.dir.clone();
    let redis = config.redis.clone().map(SharedRedis::new);
    let auth = match config.auth.clone() {
        Some(auth) => {
            crate::server::auth_host::preflight(&auth)?;
            Some(crate::server::auth_host::AuthHost::bind(
                auth,
                redis.clone(),
            )?)
        }
        None => None,
    };
    let connections = crate::server::connections::ClientConnections::new(
        config.server.max_connections_per_client,
        config.client_ip.networks,
        config.client_ip.trusted_proxies.clone(),
    );
    let keepalive = crate::server::connections::keepalive_secs(config.server.keepalive_timeout);
    let read_buffer = config.server.client_read_buffer;
    let h2c = config.server.h2c;
    let certificates = crate::server::tls::Certificates::load(&config.listeners)?;
    let shared = Arc::new(Shared::new(
        redis.clone(),
        &config.rate_limit,
        tracing.clone(),
        connections.clone(),
        certificates,
    ));
    let draining = shared.draining.clone();
    let live = Live::start(config, shared)?;

    let drain_watch = DrainWatch {
        draining: draining.clone(),
        phases: Mutex::new(Some(server.watch_execution_phase())),
    };
    let readiness = Arc::new(Readiness::new(
        live.clone(),
        draining,
        redis.clone(),
        auth.as_ref().map(|host| host.running.clone()),
    ));
    let edge = Edge {
        live: live.clone(),
        readiness: readiness.clone(),
        redirects,
        access_log,
        // 0 s: no keep-alive at all
        keepalive,
    };
    let mut proxy = http_proxy_service_with_name(&server.configuration, edge, "edge");
    // before the listeners: a network out of connection slots is refused at accept, and a
    // TLS connection holds its slot from accept to close
    proxy.set_connection_filter(Arc::new(crate::server::connections::AcceptFilter(
        connections.clone(),
    )));
    proxy
        .endpoints()
        .set_pre_tls_callback(Arc::new(crate::server::connections::AcceptSlot(
            connections,
        )));
    if let Some(app) = proxy.app_logic_mut() {
        // HTTP/2 connections idle (no stream) that long are closed too
        let mut options = pingora::apps::HttpServerOptions::default();
        options.h2_idle_timeout = keepalive.map(std::time::Duration::from_secs);
        options.h2c = h2c;
        app.server_options = Some(options);
    }
    // Pingora reads each client connection through a 64 KiB buffer, held as long as the
    // connection is open: most of what an idle keep-alive connection costs (docs/benchmarks.md)
    let buffer = L4BufferSettings::default().read(read_buffer);
    for l in &listeners {
        let mut listener = ListenerConfig::tcp(l.address.to_string()).l4_buffer(buffer);
        if let Some(tls) = &l.tls {
            let certs = &live.shared.certificates;
            listener = listener.tls(crate::server::tls::settings(l.address, tls, certs)?);
        }
        proxy.add_listener(listener);
    }
    server.add_service(proxy);
    server.add_service(background_service(
        "config reloader",
        Reloader::new(live.clone(), dir),
    ));
    server.add_service(background_service("drain watch", drain_watch));
    if let Some(t) = &tracing {
        server.add_service(background_service(
            "trace flusher",
            crate::observe::traces::TraceFlusher(t.clone()),
        ));
    }
    server.add_service(background_service(
        "readiness prober",
        ReadinessProber(readiness),
    ));
    // always running: a reload may add [auth]
    server.add_service(background_service(
        "token keys",
        crate::filters::identity::KeyWatcher(live),
    ));
    if let Some(host) = auth {
        server.add_service(background_service("auth core", host));
    }
    if let Some(redis) = redis {
        server.add_service(background_service("redis", RedisConnector(redis)));
    }
    tracing::info!(listeners = ?listeners.iter().map(|l| l.address).collect::<Vec<_>>(), "edge starting");
    open_files::raise_to_hard_limit();
    server.run(RunArgs::default());
    Ok(())
}
