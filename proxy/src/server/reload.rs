//! The live runtime (route table and pools) behind an `ArcSwap`, and the reloader that swaps
//! it on SIGHUP or when a conf file changes. A request holds the `Arc<Route>` it matched, so a
//! swap never disturbs requests in flight: the old generation lives until they finish.

use crate::config::{self, Config};
use crate::filters::limiter::Policy;
use crate::routing::upstream::{self, Pool};
use crate::routing::Router;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One generation of routing state.
pub struct Runtime {
    pub generation: u64,
    pub config: Arc<Config>,
    pub router: Router,
    pub pools: HashMap<String, Arc<Pool>>,
    /// The bot filter's rules, when `[bot_filter]` is set.
    pub bot_rules: Option<Arc<crate::filters::botfilter::rules::Rules>>,
    /// `[bot_filter] answer_limit`, compiled.
    pub bot_answer_policy: Option<Arc<Policy>>,
}

impl Runtime {
    /// Builds a generation, reusing the pools whose spec did not change so their health state
    /// and round-robin position survive the reload. Returns the pools that are new.
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
    ) -> Result<(Runtime, Vec<Arc<Pool>>), String> {
        let mut pools = HashMap::with_capacity(config.upstreams.len());
        let mut fresh = Vec::new();
        for spec in &config.upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(&spec.name))
                .filter(|p| p.spec == *spec)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => {
                    let pool = Arc::new(Pool::build(spec.clone())?);
                    fresh.push(pool.clone());
                    pool
                }
            };
            pools.insert(spec.name.clone(), pool);
        }
        let policies = config
            .limits
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    Arc::new(Policy::compile(l, &config.rate_limit)),
                )
            })
            .collect();
        let router = Router::build(&config.routes, &pools, &policies)?;
        let bot_answer_policy = config
            .bot_filter
            .as_ref()
            .and_then(|b| b.answer_limit.as_ref())
            .and_then(|name| policies.get(name).cloned());
        let bot_rules = match &config.bot_filter {
            Some(spec) => Some(Arc::new(crate::filters::botfilter::rules::Rules::build(
                spec,
            )?)),
            None => None,
        };
        let generation = previous.map_or(1, |p| p.generation + 1);
        Ok((
            Runtime {
                generation,
                config: Arc::new(config),
                router,
                pools,
                bot_rules,
                bot_answer_policy,
            },
            fresh,
        ))
    }
}

/// The current generation, read once per request.
pub struct Live {
    current: ArcSwap<Runtime>,
    /// The conf the process started with: what the parts read once at start still hold.
    started: Arc<Config>,
}

impl Live {
    pub fn new(runtime: Runtime) -> Arc<Live> {
        Arc::new(Live {
            started: runtime.config.clone(),
            current: ArcSwap::from_pointee(runtime),
        })
    }

    /// A cheap guard on the current generation (no reference count taken).
    pub fn load(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Loads and validates `dir` and swaps it in; on any problem the running generation stays.
    pub async fn reload(&self, dir: &Path) -> Result<u64, String> {
        let dir_owned = dir.to_path_buf();
        // Loading resolves upstream host names: keep that blocking work off the event loop.
        let loaded = tokio::task::spawn_blocking(move || config::load(&dir_owned))
            .await
            .map_err(|e| format!("config loader failed: {e}"))?;
        let config = loaded.map_err(|e| e.to_string())?;
        let old = self.current.load_full();
        // named at every reload while they differ from the start, so none is silently ignored
        let pending = config::pending_restart(&self.started, &config);
        if !pending.is_empty() {
            tracing::warn!(
                pending = %pending.join("; "),
                "these changes take effect at the next start; the running values stay until then"
            );
        }
        let (runtime, fresh) = Runtime::build(config, Some(&old))?;
        let generation = runtime.generation;
        self.current.store(Arc::new(runtime));
        upstream::spawn_health_checks(&fresh);
        Ok(generation)
    }
}

/// Background service: health checks of the first generation, then reloads on SIGHUP and on
/// conf dir changes. Polling (not inotify) because it also sees Kubernetes ConfigMap symlink
/// swaps and costs a few `stat` calls a second.
pub struct Reloader {
    pub live: Arc<Live>,
    pub dir: PathBuf,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let first = self.live.load_full();
        upstream::spawn_health_checks(first.pools.values());
        let watch = first.config.server.watch;
        let mut tick = tokio::time::interval(first.config.server.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        drop(first);
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; reload by file change only");
                None
            }
        };
        let mut seen = fingerprint(&self.dir);
        loop {
            let reason = tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick(), if watch => {
                    if fingerprint(&self.dir) == seen { continue; }
                    "conf dir changed"
                }
            };
            match self.live.reload(&self.dir).await {
                Ok(generation) => tracing::info!(reason, generation, "configuration reloaded"),
                Err(problems) => {
                    tracing::error!(reason, %problems, "configuration refused; the previous one keeps serving")
                }
            }
            seen = fingerprint(&self.dir);
        }
    }
}

/// Names, sizes and modification times of the conf files.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}
