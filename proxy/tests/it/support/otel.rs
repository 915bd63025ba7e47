//! A real OTLP collector for the tests: `rotel` (a Rust OpenTelemetry collector from PyPI) on
//! free ports, printing every span it receives to its log, which the tests read back.

use super::{free_port, wait_for_port};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Collector {
    pub grpc_port: u16,
    pub http_port: u16,
    dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub name: String,
    pub kind: String,
    pub service: String,
    pub attributes: HashMap<String, String>,
}

fn rotel_agent() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import rotel,os;print(os.path.dirname(rotel.__file__))",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "rotel is not installed: run `make test` (pip install rotel)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("rotel-agent")
}

impl Collector {
    pub fn start() -> Collector {
        let dir = tempfile::tempdir().expect("tempdir");
        let (grpc_port, http_port) = (free_port(), free_port());
        let ok = Command::new(rotel_agent())
            .args(["start", "--daemon", "--pid-file"])
            .arg(dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.path().join("rotel.log"))
            .args([
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc_port}"),
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{http_port}"),
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log-verbosity",
                "detailed",
            ])
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "rotel-agent did not start");
        assert!(
            wait_for_port(grpc_port, Duration::from_secs(10)),
            "rotel gRPC port"
        );
        assert!(
            wait_for_port(http_port, Duration::from_secs(10)),
            "rotel HTTP port"
        );
        Collector {
            grpc_port,
            http_port,
            dir,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        let raw = std::fs::read_to_string(self.dir.path().join("rotel.log")).unwrap_or_default();
        parse(&strip_ansi(&raw))
    }

    /// Waits until `pred` holds for the spans received, up to ten seconds.
    pub async fn wait_for(&self, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if pred(&spans) || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("rotel.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // skip "[...m"
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads rotel's detailed debug log: "Resource attributes:" then "Span #n" blocks of
/// "Trace ID : …", "Parent ID : …", "ID : …", "Name : …", "Kind : …", "Attributes:" and
/// "-> key: Str(value)" lines.
fn parse(log: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut service = String::new();
    let mut current: Option<Span> = None;
    let mut in_resource = false;
    for line in log.lines() {
        let t = line.trim();
        if t.starts_with("Resource attributes") {
            in_resource = true;
            continue;
        }
        if t.starts_with("ScopeSpans") || t.starts_with("Span #") {
            in_resource = false;
        }
        if t.starts_with("Span #") {
            spans.extend(current.take());
            current = Some(Span {
                trace_id: String::new(),
                id: String::new(),
                parent_id: String::new(),
                name: String::new(),
                kind: String::new(),
                service: service.clone(),
                attributes: HashMap::new(),
            });
            continue;
        }
        if let Some(kv) = t.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                continue;
            };
            let v = v
                .strip_prefix("Str(")
                .or_else(|| v.strip_prefix("Int("))
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(v)
                .to_string();
            if in_resource {
                if k == "service.name" {
                    service = v;
                }
            } else if let Some(s) = current.as_mut() {
                s.attributes.insert(k.to_string(), v);
            }
            continue;
        }
        let Some(s) = current.as_mut() else { continue };
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().to_string();
            match k.trim() {
                "Trace ID" => s.trace_id = v,
                "Parent ID" => s.parent_id = v,
                "ID" => s.id = v,
                "Name" => s.name = v,
                "Kind" => s.kind = v,
                _ => {}
            }
        }
    }
    spans.extend(current);
    spans
}
