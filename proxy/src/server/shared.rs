//! What lives as long as the process, across config generations: connections, caches and
//! counters. Handed to every `Generation::build`, which compiles the settings of the new
//! conf around it; nothing here holds a setting a reload can change.

use crate::filters::botfilter::BotFilter;
use crate::filters::identity::IdentityStats;
use crate::filters::limiter::Limiter;
use crate::observe::request_metrics::RouteMetrics;
use crate::observe::traces::Tracing;
use crate::server::connections::ClientConnections;
use crate::server::drain::Draining;
use crate::server::redis_client::SharedRedis;
use std::sync::Arc;

pub struct Shared {
    /// The one Redis connection of the edge's filters (`[redis]` is read at start).
    pub redis: Option<Arc<SharedRedis>>,
    /// Buckets, leases, the denied-until cache and the breaker; retuned by each generation.
    pub limiter: Arc<Limiter>,
    /// The bot filter's questions, failures, per-client buckets and counters: built whether
    /// or not `[bot_filter]` is set, so a reload can turn the filter on.
    pub bot: Arc<BotFilter>,
    /// Counters of token verification, whichever generation's keys are in use.
    pub identity_stats: Arc<IdentityStats>,
    /// OpenTelemetry (`[tracing]` is read at start: its exporter is a process-wide pipeline).
    pub tracing: Option<Arc<Tracing>>,
    pub draining: Draining,
    /// Requests, latencies and upstream errors by route name.
    pub route_metrics: RouteMetrics,
    /// Open client connections per client network (`[server]`, read at start).
    pub connections: Arc<ClientConnections>,
    /// The TLS listeners' certificates, swapped by reloads.
    pub certificates: crate::server::tls::Certificates,
}

impl Shared {
    pub fn new(
        redis: Option<Arc<SharedRedis>>,
        rate_limit: &crate::config::RateLimitSettings,
        tracing: Option<Arc<Tracing>>,
        connections: Arc<ClientConnections>,
        certificates: crate::server::tls::Certificates,
    ) -> Shared {
        Shared {
            limiter: Arc::new(Limiter::new(redis.clone(), rate_limit)),
            bot: Arc::new(BotFilter::new(redis.clone())),
            identity_stats: Arc::default(),
            redis,
            tracing,
            draining: Draining::default(),
            route_metrics: RouteMetrics::default(),
            connections,
            certificates,
        }
    }
}
