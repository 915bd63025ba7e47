//! The real `edge` binary with a generated conf dir.

use super::{free_port, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Edge {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// `[server]` and `[log]` suited to tests: fast shutdown, fast reload polling, JSON logs.
pub fn base_conf(dir: &Path) -> String {
    base_conf_with(dir, "")
}

/// `base_conf` with more `[server]` keys.
pub fn base_conf_with(dir: &Path, server_extra: &str) -> String {
    base_conf_level(dir, server_extra, "info")
}

fn base_conf_level(dir: &Path, server_extra: &str, level: &str) -> String {
    // no grace period unless a test asks for one: tests stop edges often
    let grace = if server_extra.contains("grace_period") {
        ""
    } else {
        "grace_period = \"0s\"\n"
    };
    format!(
        "[server]\nthreads = 1\n{grace}graceful_shutdown_timeout = \"1s\"\n\
         pid_file = \"{0}/edge.pid\"\nupgrade_sock = \"{0}/upgrade.sock\"\nwatch_interval = \"100ms\"\n{server_extra}\n\
         [log]\nformat = \"json\"\nlevel = \"{level}\"\naccess_log = true\n",
        dir.display()
    )
}

impl Edge {
    /// Starts the edge with one plain listener plus `extra` conf text in `routes.toml`.
    pub fn start(extra: &str) -> Edge {
        Self::start_with(extra, |_, _| String::new())
    }

    /// Like `start`; `more_listeners(dir, port)` returns extra `[[listener]]` text.
    pub fn start_with(extra: &str, more_listeners: impl FnOnce(&Path, u16) -> String) -> Edge {
        Self::start_full("", extra, more_listeners)
    }

    /// The general form: extra `[server]` keys, `routes.toml`, extra listeners.
    pub fn start_full(
        server_extra: &str,
        extra: &str,
        more_listeners: impl FnOnce(&Path, u16) -> String,
    ) -> Edge {
        Self::start_logged("info", server_extra, extra, more_listeners)
    }

    /// `start_full` with the log filter `level` (e.g. "debug").
    pub fn start_logged(
        level: &str,
        server_extra: &str,
        extra: &str,
        more_listeners: impl FnOnce(&Path, u16) -> String,
    ) -> Edge {
        Self::start_env(level, server_extra, extra, more_listeners, &[])
    }

    /// `start_logged` with environment variables for the process (e.g. `SSL_CERT_FILE`).
    pub fn start_env(
        level: &str,
        server_extra: &str,
        extra: &str,
        more_listeners: impl FnOnce(&Path, u16) -> String,
        env: &[(&str, &str)],
    ) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let listeners = more_listeners(dir.path(), port);
        let edge_toml = format!(
            "{}\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n{listeners}",
            base_conf_level(dir.path(), server_extra, level)
        );
        std::fs::write(dir.path().join("edge.toml"), edge_toml).expect("write conf");
        std::fs::write(dir.path().join("routes.toml"), extra).expect("write conf");
        let child = Command::new(crate::support::edge::binary())
            .args(["run", "--conf"])
            .arg(dir.path())
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(log_file(dir.path(), "stdout.log"))
            .stderr(log_file(dir.path(), "stderr.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn edge");
        let mut edge = Edge { child, port, dir };
        if !wait_for_port(port, Duration::from_secs(10)) {
            let status = edge.child.try_wait().ok().flatten();
            panic!(
                "edge did not listen on {port} (exit: {status:?})\n{}",
                edge.logs()
            );
        }
        edge
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Replaces `routes.toml` atomically (write + rename), as deploy tools do.
    pub fn write_routes(&self, text: &str) {
        let tmp = self.dir.path().join(".routes.toml.tmp");
        std::fs::write(&tmp, text).expect("write conf");
        std::fs::rename(&tmp, self.dir.path().join("routes.toml")).expect("rename conf");
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "kill -{sig} failed");
    }

    /// Everything the edge printed so far (stdout then stderr).
    pub fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// Whether `needle` shows up in the logs within three seconds: the edge writes its logs
    /// through a non-blocking writer, so a line can land just after the response.
    pub async fn logged(&self, needle: &str) -> bool {
        super::eventually(Duration::from_secs(3), || self.logs().contains(needle)).await
    }

    /// The text of `/_edge/metrics` (the tests are loopback peers, allowed by default).
    pub async fn metrics_text(&self) -> String {
        super::client()
            .get(self.url("/_edge/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of an unlabelled series of `/_edge/metrics` (`name` exactly, no labels).
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    }

    /// Log lines parsed as JSON (non-JSON lines skipped).
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::File::create(dir.join(name))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

impl Drop for Edge {
    fn drop(&mut self) {
        // SIGINT stops Pingora at once; SIGKILL if it does not within two seconds.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        for _ in 0..40 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The edge binary under test: cargo's build, or `EDGE_TEST_BIN` (e.g. the profile-guided
/// `target/release/edge-pgo`) to run the whole suite against another build.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("EDGE_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_edge").into())
}

/// Runs `edge check --conf dir`, returning (exit code, stdout + stderr).
pub fn check(dir: &Path) -> (i32, String) {
    let out = Command::new(crate::support::edge::binary())
        .args(["check", "--conf"])
        .arg(dir)
        .output()
        .expect("run edge check");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
