//! Debian's nginx (installed by `make test`) as a real proxy in front of the edge or beside
//! it: one process (`master_process off`) in a temp prefix, on a free port.

use super::{free_port, wait_for_port};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Runs nginx with `server` as the body of its one `server {}` block (the `listen` line is
    /// added) and `http_extra` beside it in `http {}`.
    pub fn start(http_extra: &str, server: &str) -> Nginx {
        Self::start_listening("", http_extra, server)
    }

    /// Like `start`, with `listen_flags` after the address (e.g. "ssl http2").
    pub fn start_listening(listen_flags: &str, http_extra: &str, server: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             {http_extra}\n  server {{\n    listen 127.0.0.1:{port} {listen_flags};\n{server}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx: run `make test`, which installs it");
        let mut nginx = Nginx { child, port, dir };
        if !wait_for_port(port, Duration::from_secs(10)) {
            let status = nginx.child.try_wait().ok().flatten();
            let log =
                std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx did not listen on {port} (exit: {status:?})\n{log}");
        }
        nginx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
