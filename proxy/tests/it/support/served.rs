//! An axum app served on its own thread and runtime, on a port the OS picks at bind time (no
//! window in which another process can take it), stopped and joined on `stop` or drop.

use axum::Router;
use std::time::Duration;

pub struct Served {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// On `port` (0: any free one).
    pub fn start(app: Router, port: u16, what: &str) -> Served {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind");
                let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                let _ = ready_tx.send(bound);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let port = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{what} did not start"));
        Served {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Closes the listener: connections to the port are then refused.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}
