//! A throwaway PostgreSQL cluster from Debian's binaries: `initdb` + `pg_ctl` on a free port,
//! run as the `postgres` user when the tests run as root (PostgreSQL refuses root).

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

fn bin_dir() -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
        .expect("PostgreSQL is not installed: run `make test`")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Runs a command line as the cluster owner.
fn run_as_owner(cmd: &str) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", cmd]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", cmd]);
        c
    };
    c.output().expect("run PostgreSQL command")
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("edge-pg")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            assert!(
                matches!(ok, Ok(s) if s.success()),
                "chown to postgres failed"
            );
        }
        let bin = bin_dir();
        let port = free_port();
        let d = dir.path().display();
        let init = run_as_owner(&format!(
            "{}/initdb -D {d}/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >{d}/initdb.log 2>&1",
            bin.display()
        ));
        assert!(
            init.status.success(),
            "initdb failed: {}",
            std::fs::read_to_string(dir.path().join("initdb.log")).unwrap_or_default()
        );
        let pg = Postgres { port, bin, dir };
        pg.start_server();
        pg
    }

    /// Starts the server again after `stop`, on the same port and data.
    pub fn restart(&self) {
        self.start_server();
    }

    fn start_server(&self) {
        let d = self.dir.path().display();
        let start = run_as_owner(&format!(
            "{}/pg_ctl -D {d}/data -l {d}/pg.log -o '-c listen_addresses=127.0.0.1 -p {port} -k {d} -c fsync=off' -w start",
            self.bin.display(),
            port = self.port,
        ));
        assert!(
            start.status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with psql and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Postgres {
    /// Stops the server at once, as a crash or an outage would.
    pub fn stop(&self) {
        let d = self.dir.path().display();
        let _ = run_as_owner(&format!(
            "{}/pg_ctl -D {d}/data -m immediate -w stop >/dev/null 2>&1",
            self.bin.display()
        ));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
