//! A real SMTP relay for the mail tests: `scripts/smtp_sink.py` (aiosmtpd, installed by
//! `make test`) on a free port, keeping each mail as JSON in a temporary directory.

use super::{free_port, wait_for_port};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `--starttls CERT KEY` or `--tls CERT KEY` for the next `run`; empty: plain SMTP.
    pub tls: Vec<String>,
}

/// One received mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

impl Mail {
    /// The `token=` of the first link in the plain-text body.
    pub fn token(&self) -> String {
        let at = self
            .text
            .find("token=")
            .expect("a link with token= in the mail")
            + 6;
        self.text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

impl SmtpSink {
    /// A relay that accepts every mail.
    pub fn start() -> SmtpSink {
        Self::start_mode("ok")
    }

    /// `mode`: ok, tempfail (451), permfail (554), drop (connection cut at DATA), hang.
    pub fn start_mode(mode: &str) -> SmtpSink {
        let mut sink = SmtpSink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            tls: Vec::new(),
        };
        sink.run(mode);
        sink
    }

    /// The port is reserved for later: nothing listens until `run`.
    pub fn down() -> SmtpSink {
        SmtpSink {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            tls: Vec::new(),
        }
    }

    /// (Re)starts the relay on the same port in `mode`.
    pub fn run(&mut self, mode: &str) {
        self.stop();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp_sink.py");
        let child = Command::new("python3")
            .arg(script)
            .args(["--port", &self.port.to_string(), "--mode", mode])
            .args(&self.tls)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 smtp_sink.py: run `make test`, which installs aiosmtpd");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "smtp sink did not listen on {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `[mail]` section for this relay in plain SMTP; `extra` adds keys (one per line).
    pub fn conf(&self, extra: &str) -> String {
        self.conf_with("none", extra)
    }

    /// The `[mail]` section with `security` ("none", "starttls", "tls").
    pub fn conf_with(&self, security: &str, extra: &str) -> String {
        format!(
            "[mail]\nfrom = \"Cinema <no-reply@cinema.test>\"\nsmtp = \"127.0.0.1:{}\"\n\
             security = \"{security}\"\ntimeout = \"2s\"\nretry_base = \"1s\"\nretry_max = \"2s\"\n\
             poll_interval = \"1s\"\n\
             confirm_url = \"http://127.0.0.1/account/confirm?token={{token}}\"\n\
             reset_url = \"http://127.0.0.1/account/reset?token={{token}}\"\n{extra}\n",
            self.port
        )
    }

    /// Every mail received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|v| Mail {
                to: v["to"][0].as_str().unwrap_or("").to_string(),
                subject: v["subject"].as_str().unwrap_or("").to_string(),
                text: v["text"].as_str().unwrap_or("").to_string(),
                html: v["html"].as_str().unwrap_or("").to_string(),
                message_id: v["message_id"].as_str().unwrap_or("").to_string(),
            })
            .collect()
    }

    /// Mails to `to`, waiting up to `timeout` until there are at least `n`.
    pub async fn wait_for(&self, to: &str, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<Mail> = self.mails().into_iter().filter(|m| m.to == to).collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
