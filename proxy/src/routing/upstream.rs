//! Upstream pools: Pingora load balancers built from validated specs, server selection with
//! retry exclusion, peers with the pool's timeouts, and active health checks.

use crate::config::{Balance, HealthCheckSpec, UpstreamProtocol, UpstreamSpec};
use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::{Consistent, RoundRobin};
use pingora::lb::{Backend, LoadBalancer};
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Ketama probes at most this many servers looking for a healthy one.
const MAX_SELECT_ITERATIONS: usize = 256;

enum Balancer {
    RoundRobin(LoadBalancer<RoundRobin>),
    Hash(LoadBalancer<Consistent>),
}

/// One named pool of upstream servers.
pub struct Pool {
    pub spec: UpstreamSpec,
    balancer: Balancer,
}

impl Pool {
    pub fn build(spec: UpstreamSpec) -> Result<Pool, String> {
        let hc = spec.health_check.as_ref().map(|h| health_check(&spec, h));
        let balancer = match spec.balance {
            Balance::RoundRobin => {
                let mut lb =
                    LoadBalancer::<RoundRobin>::try_from_iter(spec.servers.iter().copied())
                        .map_err(|e| format!("upstream {}: {e}", spec.name))?;
                if let Some(hc) = hc {
                    lb.set_health_check(hc);
                }
                Balancer::RoundRobin(lb)
            }
            Balance::ConsistentHash(_) => {
                let mut lb =
                    LoadBalancer::<Consistent>::try_from_iter(spec.servers.iter().copied())
                        .map_err(|e| format!("upstream {}: {e}", spec.name))?;
                if let Some(hc) = hc {
                    lb.set_health_check(hc);
                }
                Balancer::Hash(lb)
            }
        };
        Ok(Pool { spec, balancer })
    }

    /// The next healthy server not yet tried by this request.
    pub fn select(&self, key: &[u8], tried: &[SocketAddr]) -> Option<Backend> {
        let accept = |b: &Backend, healthy: bool| {
            healthy && !b.addr.as_inet().is_some_and(|a| tried.contains(a))
        };
        match &self.balancer {
            Balancer::RoundRobin(lb) => lb.select_with(key, MAX_SELECT_ITERATIONS, accept),
            Balancer::Hash(lb) => lb.select_with(key, MAX_SELECT_ITERATIONS, accept),
        }
    }

    /// (servers passing their health checks, servers); without health checks all pass.
    pub fn healthy_count(&self) -> (usize, usize) {
        let backends = match &self.balancer {
            Balancer::RoundRobin(lb) => lb.backends(),
            Balancer::Hash(lb) => lb.backends(),
        };
        let all = backends.get_backend();
        let healthy = all.iter().filter(|b| backends.ready(b)).count();
        (healthy, all.len())
    }

    /// A peer for `backend` carrying this pool's timeouts.
    pub fn peer(&self, backend: &Backend) -> Box<HttpPeer> {
        let tls = self.spec.tls_sni.is_some();
        let sni = self.spec.tls_sni.clone().unwrap_or_default();
        let mut peer = HttpPeer::new(backend.addr.clone(), tls, sni);
        let o = &mut peer.options;
        o.connection_timeout = Some(self.spec.connect_timeout);
        o.read_timeout = Some(self.spec.read_timeout);
        o.write_timeout = Some(self.spec.write_timeout);
        o.idle_timeout = Some(self.spec.idle_timeout);
        set_protocol(o, self.spec.protocol);
        Box::new(peer)
    }

    async fn run_health_check(&self) {
        match &self.balancer {
            Balancer::RoundRobin(lb) => lb.backends().run_health_check(true).await,
            Balancer::Hash(lb) => lb.backends().run_health_check(true).await,
        }
    }

    /// Checks this pool every interval until the pool is dropped (replaced by a reload and
    /// released by the last request that used it).
    pub async fn health_check_loop(pool: Weak<Pool>) {
        let Some(interval) = pool
            .upgrade()
            .and_then(|p| p.spec.health_check.as_ref().map(|h| h.interval))
        else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = pool.upgrade() else { return };
            pool.run_health_check().await;
        }
    }
}

fn health_check(spec: &UpstreamSpec, h: &HealthCheckSpec) -> Box<dyn HealthCheck + Send + Sync> {
    let observer = Box::new(LogHealthChange {
        pool: spec.name.clone(),
    });
    match &h.http_path {
        Some(path) => {
            let host = spec.tls_sni.clone().unwrap_or_else(|| spec.name.clone());
            let mut hc = HttpHealthCheck::new(&host, spec.tls_sni.is_some());
            // The path was validated to start with '/', so this cannot fail.
            if let Ok(uri) = path.parse() {
                hc.req.set_uri(uri);
            }
            hc.consecutive_success = h.healthy_threshold;
            hc.consecutive_failure = h.unhealthy_threshold;
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc.peer_template.options.read_timeout = Some(h.timeout);
            // an h2-only server (a gRPC one) would fail an HTTP/1.1 probe
            set_protocol(&mut hc.peer_template.options, spec.protocol);
            hc.health_changed_callback = Some(observer);
            Box::new(hc)
        }
        None => {
            let mut hc = TcpHealthCheck::new();
            hc.consecutive_success = h.healthy_threshold;
            hc.consecutive_failure = h.unhealthy_threshold;
            hc.peer_template.options.connection_timeout = Some(h.timeout);
            hc.health_changed_callback = Some(observer);
            hc
        }
    }
}

/// Streams one HTTP/2 connection carries before another is opened.
const H2_STREAMS_PER_CONNECTION: usize = 100;

fn set_protocol(o: &mut pingora::upstreams::peer::PeerOptions, protocol: UpstreamProtocol) {
    match protocol {
        UpstreamProtocol::H1 => {}
        // min 2: HTTP/2 only (ALPN "h2" over TLS; prior knowledge over plain TCP)
        UpstreamProtocol::H2 | UpstreamProtocol::H2c => {
            o.set_http_version(2, 2);
            o.max_h2_streams = H2_STREAMS_PER_CONNECTION;
        }
    }
}

/// Logs a server going down or coming back, the line an operator looks for first.
struct LogHealthChange {
    pool: String,
}

#[async_trait]
impl HealthObserve for LogHealthChange {
    async fn observe(&self, target: &Backend, healthy: bool) {
        if healthy {
            tracing::info!(upstream = %self.pool, server = %target.addr, "upstream server is healthy again");
        } else {
            tracing::warn!(upstream = %self.pool, server = %target.addr, "upstream server failed its health check");
        }
    }
}

/// Starts health-check loops for `pools` on the current tokio runtime.
pub fn spawn_health_checks<'a>(pools: impl IntoIterator<Item = &'a Arc<Pool>>) {
    for pool in pools {
        if pool.spec.health_check.is_some() {
            tokio::spawn(Pool::health_check_loop(Arc::downgrade(pool)));
        }
    }
}
