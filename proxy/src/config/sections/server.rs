//! `[server]` and `[log]`.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;
use std::time::Duration;

pub(in crate::config) fn server_settings(
    server: Option<(String, ServerFile)>,
    p: &mut Problems,
) -> ServerSettings {
    let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some((file, s)) = server else {
        return ServerSettings {
            threads: default_threads,
            work_stealing: false,
            grace_period: Duration::from_secs(1),
            graceful_shutdown_timeout: Duration::from_secs(5),
            pid_file: "/tmp/edge.pid".into(),
            upgrade_sock: "/tmp/edge_upgrade.sock".into(),
            upstream_keepalive_pool_size: 128,
            watch: true,
            watch_interval: Duration::from_secs(1),
        };
    };
    let threads = s.threads.unwrap_or(default_threads);
    if !(1..=1024).contains(&threads) {
        p.add(&file, "server.threads", "must be between 1 and 1024");
    }
    let f = file.as_str();
    ServerSettings {
        threads,
        work_stealing: s.work_stealing.unwrap_or(false),
        grace_period: duration(
            f,
            "server.grace_period",
            s.grace_period.as_deref(),
            "1s",
            true,
            p,
        ),
        graceful_shutdown_timeout: duration(
            f,
            "server.graceful_shutdown_timeout",
            s.graceful_shutdown_timeout.as_deref(),
            "5s",
            true,
            p,
        ),
        pid_file: s.pid_file.unwrap_or_else(|| "/tmp/edge.pid".into()),
        upgrade_sock: s
            .upgrade_sock
            .unwrap_or_else(|| "/tmp/edge_upgrade.sock".into()),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size.unwrap_or(128),
        watch: s.watch.unwrap_or(true),
        watch_interval: duration(
            f,
            "server.watch_interval",
            s.watch_interval.as_deref(),
            "1s",
            false,
            p,
        ),
    }
}

pub(in crate::config) fn log_settings(
    log: Option<(String, LogFile)>,
    p: &mut Problems,
) -> LogSettings {
    let Some((file, l)) = log else {
        return LogSettings {
            format: LogFormat::Json,
            level: "info".into(),
            access_log: true,
        };
    };
    let format: LogFormat = choice(&file, "log.format", l.format.as_deref(), p);
    let level = l.level.unwrap_or_else(|| "info".into());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        p.add(&file, "log.level", format!("not a valid filter: {e}"));
    }
    LogSettings {
        format,
        level,
        access_log: l.access_log.unwrap_or(true),
    }
}
