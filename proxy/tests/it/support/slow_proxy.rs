//! A TCP proxy that can hold back the server's replies: put between the edges and Redis, it
//! makes Redis slow (past the edge's timeout) in bursts, without making it unreachable.
//! Runs on its own thread and runtime, so a flood in the test's runtime cannot slow it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct SlowProxy {
    pub port: u16,
    slow: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SlowProxy {
    /// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`; while slow, each reply chunk waits
    /// `delay` first.
    pub fn start(target: u16, delay: Duration) -> SlowProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let slow = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let flag = slow.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let flag = flag.clone();
                        tokio::spawn(async move {
                            let Ok(server) =
                                tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                            else {
                                return;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (mut cr, mut cw) = client.into_split();
                            let (mut sr, mut sw) = server.into_split();
                            tokio::spawn(async move {
                                let _ = tokio::io::copy(&mut cr, &mut sw).await;
                            });
                            let mut buf = vec![0u8; 16 * 1024];
                            while let Ok(n) = sr.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                if flag.load(Ordering::Relaxed) {
                                    tokio::time::sleep(delay).await;
                                }
                                if cw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        SlowProxy {
            port,
            slow,
            stop: Some(stop),
        }
    }

    pub fn set_slow(&self, on: bool) {
        self.slow.store(on, Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
