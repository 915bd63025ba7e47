//! One Redis client per process, shared by the edge's features and the embedded auth core,
//! whatever the topology behind it: a standalone server (the crate's connection manager),
//! Sentinel (the crate's sentinel client finds the master; a new manager follows it after a
//! failover) or Redis Cluster (the crate's `cluster-async` connection follows MOVED/ASK and
//! promotions). Callers take a `RedisConn` and issue commands as on any connection; they never
//! see the topology. Connecting happens in `run`, in the background, so the edge starts and
//! serves (with each feature's fallback) while Redis is down.

mod connect;
mod settings;
mod status;
mod watch;

pub use settings::{Mode, RedisSettings, TlsFiles};

/// Whether the redis crate accepts these settings (no connection is made).
pub fn check(settings: &RedisSettings) -> Result<(), String> {
    connect::check(settings).map_err(|e| e.to_string())
}
pub use status::{Status, TopologyView};

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;

/// A connection to whatever the topology is; cheap to clone (both variants multiplex one
/// connection per node behind a channel).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

pub struct SharedRedis {
    pub settings: RedisSettings,
    conn: ArcSwapOption<RedisConn>,
    /// What the topology looks like (nodes, master, failovers), for ready and metrics.
    pub status: Status,
    /// Bumped when the client follows a topology change (a new connection, a promotion), so
    /// callers holding off Redis (the limiter's breaker) try again at once.
    generation: std::sync::atomic::AtomicU64,
    /// Rung when a caller saw an error: the watcher looks at the topology now rather than at
    /// its next tick (a Sentinel failover is followed within one sentinel round trip).
    wake: Notify,
}

impl SharedRedis {
    pub fn new(settings: RedisSettings) -> Arc<SharedRedis> {
        Arc::new(SharedRedis {
            settings,
            conn: ArcSwapOption::empty(),
            status: Status::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    /// The connection, once `run` has made one; None while it has not (callers fall back).
    pub fn conn(&self) -> Option<RedisConn> {
        self.conn.load().as_deref().cloned()
    }

    /// Tells the watcher that a call failed (cheap: a notify without a waiter is a no-op
    /// after the first).
    pub fn suspect(&self) {
        self.wake.notify_one();
    }

    fn install(&self, conn: RedisConn) {
        self.conn.store(Some(Arc::new(conn)));
        self.changed();
    }

    /// The topology generation (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Connects and then watches the topology until `stop` completes. Runs on the runtime
    /// that will own the connections' driver tasks: keep that runtime alive as long as the
    /// process uses Redis.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::select! {
            () = watch::run(&self) => {}
            () = stop => {}
        }
    }

    /// For the auth core's standalone use (admin commands, its own tests): runs the watcher
    /// on the current runtime.
    pub fn spawn(settings: RedisSettings) -> Arc<SharedRedis> {
        let shared = SharedRedis::new(settings);
        tokio::spawn(shared.clone().run(std::future::pending()));
        shared
    }
}

/// The connection of an optional shared client (what every best-effort caller wants).
pub fn conn_of(redis: &Option<Arc<SharedRedis>>) -> Option<RedisConn> {
    redis.as_ref().and_then(|r| r.conn())
}
