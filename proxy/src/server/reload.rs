//! The current config generation behind an `ArcSwap`, and the reloader that builds and swaps
//! a new one on SIGHUP or when a conf file changes. A request loads one generation and keeps
//! it, so a swap never disturbs requests in flight: the old generation lives until they end.

use crate::config::{self, Config};
use crate::routing::upstream;
use crate::server::generation::Generation;
use crate::server::shared::Shared;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub struct Live {
    current: ArcSwap<Generation>,
    /// The conf the process started with: the values of sections read once at start.
    started: Arc<Config>,
    pub shared: Arc<Shared>,
}

impl Live {
    /// The first generation: built from the conf the process starts with.
    pub fn start(config: Config, shared: Arc<Shared>) -> Result<Arc<Live>, String> {
        let started = Arc::new(config.clone());
        let built = Generation::build(config, &shared, None)?;
        built.generation.retune(&shared);
        Ok(Arc::new(Live {
            current: ArcSwap::from_pointee(built.generation),
            started,
            shared,
        }))
    }

    /// A cheap guard on the current generation (no reference count taken).
    pub fn load(&self) -> arc_swap::Guard<Arc<Generation>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Loads and validates `dir`, builds a generation and swaps it in; on any problem the
    /// running generation stays.
    pub async fn reload(&self, dir: &Path) -> Result<u64, String> {
        let dir_owned = dir.to_path_buf();
        // Loading resolves upstream host names: keep that blocking work off the event loop.
        let loaded = tokio::task::spawn_blocking(move || config::load(&dir_owned))
            .await
            .map_err(|e| format!("config loader failed: {e}"))?;
        let mut config = loaded.map_err(|e| e.to_string())?;
        let old = self.current.load_full();
        let changes = config::reconcile(&self.started, &old.config, &mut config);
        // named at every reload while they differ from the start, so none is silently ignored
        if !changes.pending.is_empty() {
            tracing::warn!(
                pending = %changes.pending.join("; "),
                "these sections changed but are read at start: the running values stay until the next start (listeners and [server]: edge run --upgrade)"
            );
        }
        // renewed certificate files count even when no conf file changed; one bad pair
        // refuses the whole reload, like any bad config
        let certificates = self.shared.certificates.prepare(&config.listeners)?;
        let built = Generation::build(config, &self.shared, Some(&old))?;
        if let Some(identity) = &built.fresh_remote_identity {
            // a new key source must verify from the first request: without its keys every
            // signed-in viewer would get 401 (and be signed out by the apps), so a source that
            // cannot be read refuses the reload and the running generation keeps serving
            identity
                .reload()
                .await
                .map_err(|e| format!("[auth] jwks_url: the new key set cannot be read ({e})"))?;
        }
        // a new issuer's tokens must verify from the first request, as for jwks_url
        for issuer in &built.fresh_issuers {
            issuer.refresh().await.map_err(|e| {
                format!(
                    "[[issuer]] {}: its keys cannot be read ({e})",
                    issuer.spec.name
                )
            })?;
        }
        let generation = built.generation.number;
        built.generation.retune(&self.shared);
        self.current.store(Arc::new(built.generation));
        self.shared.certificates.swap(certificates);
        upstream::spawn_health_checks(&built.fresh_pools);
        if !changes.applied.is_empty() {
            tracing::info!(generation, applied = %changes.applied.join("; "), "sections changed");
        }
        Ok(generation)
    }
}

/// Background service: health checks of the first generation, then reloads on SIGHUP and on
/// conf dir changes. Polling (not inotify) because it also sees Kubernetes ConfigMap symlink
/// swaps and costs a few `stat` calls a second.
pub struct Reloader {
    live: Arc<Live>,
    dir: PathBuf,
    /// The files as the process started with them: taken before it listens, so a change
    /// made right after start is not mistaken for the starting state.
    initial: Fingerprint,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl Reloader {
    pub fn new(live: Arc<Live>, dir: PathBuf) -> Reloader {
        let mut r = Reloader {
            live,
            dir,
            initial: Vec::new(),
        };
        r.initial = r.fingerprint();
        r
    }
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
        let mut seen = self.initial.clone();
        // a refused reload is tried again with backoff while the files stay as they are: the
        // refusal may be passing (a DNS name not resolving yet, a renewal half-written)
        let mut retry: Option<(tokio::time::Instant, u32)> = None;
        loop {
            let reason = tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick(), if watch => {
                    let now = self.fingerprint();
                    if now != seen {
                        "conf dir or certificate files changed"
                    } else if retry.is_some_and(|(at, _)| tokio::time::Instant::now() >= at) {
                        "retrying a refused configuration"
                    } else {
                        continue;
                    }
                }
            };
            // taken before reading: a file that changes while the reload runs is seen by the
            // next tick, not lost
            seen = self.fingerprint();
            match self.live.reload(&self.dir).await {
                Ok(generation) => {
                    retry = None;
                    tracing::info!(reason, generation, "configuration reloaded")
                }
                Err(problems) => {
                    let attempt = retry.map_or(0, |(_, n)| n + 1);
                    let backoff = RETRY_FIRST
                        .saturating_mul(1 << attempt.min(6))
                        .min(RETRY_MAX);
                    retry = Some((tokio::time::Instant::now() + backoff, attempt));
                    tracing::error!(reason, %problems, retry_in_s = backoff.as_secs(), "configuration refused; the previous one keeps serving")
                }
            }
        }
    }
}

/// A refused reload is tried again after this, doubling up to `RETRY_MAX`.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(5);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(300);

impl Reloader {
    /// The conf files and the running listeners' certificate files (cert-manager and certbot
    /// renew those in place, often outside the conf dir).
    fn fingerprint(&self) -> Fingerprint {
        let generation = self.live.load();
        let certs = crate::server::tls::Certificates::files(&generation.config.listeners);
        fingerprint(&self.dir, certs)
    }
}

/// Names, sizes and modification times of the conf files and of `more` files (followed
/// through symlinks, so a Kubernetes Secret's `..data` swap shows).
fn fingerprint<'a>(dir: &Path, more: impl Iterator<Item = &'a Path>) -> Fingerprint {
    let stat = |path: PathBuf| {
        let meta = std::fs::metadata(&path).ok()?;
        Some((path, meta.len(), meta.modified().ok()))
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| stat(e.path()))
        .chain(more.filter_map(|p| stat(p.to_path_buf())))
        .collect();
    files.sort();
    files
}
