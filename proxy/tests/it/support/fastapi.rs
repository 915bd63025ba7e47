//! A FastAPI app under uvicorn (PyPI packages, installed by `make test`): a real upstream that
//! decodes paths before routing, unlike the harness's axum server.

use super::{free_port, wait_for_port};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct FastApi {
    child: Child,
    pub port: u16,
}

impl FastApi {
    /// `proxy/tests/peers/fastapi_app.py` on a free port.
    pub fn start() -> FastApi {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "uvicorn", "fastapi_app:app", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--log-level", "warning"])
            .current_dir(&peers)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m uvicorn: run `make test`, which installs fastapi and uvicorn");
        let mut app = FastApi { child, port };
        if !wait_for_port(port, Duration::from_secs(20)) {
            let status = app.child.try_wait().ok().flatten();
            panic!("uvicorn did not listen on {port} (exit: {status:?})");
        }
        app
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FastApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
