//! `[server]` and `[log]`.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn server_settings(
    server: Option<(String, ServerFile)>,
    p: &mut Problems,
) -> ServerSettings {
    // one place for the defaults: an absent [server] is an empty one
    let (file, s) = server.unwrap_or_default();
    let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = s.threads.unwrap_or(default_threads);
    if !(1..=1024).contains(&threads) {
        p.add(&file, "server.threads", "must be between 1 and 1024");
    }
    let f = file.as_str();
    let d = |key: &str, v: &Option<String>, default: &str, zero_ok: bool, p: &mut Problems| {
        duration(f, key, v.as_deref(), default, zero_ok, p)
    };
    ServerSettings {
        threads,
        work_stealing: s.work_stealing.unwrap_or(false),
        grace_period: d("server.grace_period", &s.grace_period, "1s", true, p),
        graceful_shutdown_timeout: d(
            "server.graceful_shutdown_timeout",
            &s.graceful_shutdown_timeout,
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
        watch_interval: d("server.watch_interval", &s.watch_interval, "1s", false, p),
        keepalive_timeout: d(
            "server.keepalive_timeout",
            &s.keepalive_timeout,
            "75s",
            true,
            p,
        ),
        max_connections_per_client: s.max_connections_per_client.unwrap_or(256),
        client_read_buffer: {
            let bytes = s.client_read_buffer.unwrap_or(4096);
            if bytes > 1 << 20 {
                p.add(
                    f,
                    "server.client_read_buffer",
                    "must be at most 1048576 bytes",
                );
            }
            bytes
        },
        h2c: s.h2c.unwrap_or(false),
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
