//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: navigate, read
//! the page, type with the keyboard, take screenshots. Killed on drop.

use super::need;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Chromium,
    _profile: tempfile::TempDir,
    socket: Socket,
    next_id: u64,
}

impl Browser {
    /// Starts Chromium with this User-Agent and Accept-Language, on one blank page.
    pub async fn start(user_agent: &str, accept_language: &str) -> Browser {
        let profile = tempfile::tempdir().expect("tempdir");
        // killed on drop from here on, also when the start below fails a test
        let mut child = Chromium(
            Command::new(need("chromium"))
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--no-proxy-server",
                    "--window-size=1280,720",
                    // 0: Chromium binds a free port itself and writes it to DevToolsActivePort,
                    // so no other process started by a parallel test can take it first
                    "--remote-debugging-port=0",
                    "--remote-debugging-address=127.0.0.1",
                    &format!("--user-agent={user_agent}"),
                    &format!("--accept-lang={accept_language}"),
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn chromium"),
        );
        let active = profile.path().join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..300 {
            port = std::fs::read_to_string(&active)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<u16>().ok());
            if port.is_some() {
                break;
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("chromium exited before opening DevTools: {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let port = port.expect("chromium did not open its DevTools port in 30 s");
        let http = super::client();
        let mut pages = Value::Null;
        for _ in 0..50 {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            {
                pages = r.json().await.unwrap_or(Value::Null);
                if pages
                    .as_array()
                    .is_some_and(|p| p.iter().any(|t| t["type"] == "page"))
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ws = pages
            .as_array()
            .and_then(|p| p.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(ws)
            .await
            .expect("DevTools");
        let mut b = Browser {
            child,
            _profile: profile,
            socket,
            next_id: 1,
        };
        b.call("Page.enable", json!({})).await;
        b
    }

    /// Sends a command and returns its result; events met on the way are dropped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
        loop {
            let reply = self.read().await;
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn read(&mut self) -> Value {
        let next = tokio::time::timeout(Duration::from_secs(20), self.socket.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(_))) => Value::Null,
            other => panic!("DevTools connection: {other:?}"),
        }
    }

    pub async fn wait_for_load(&mut self) {
        loop {
            if self.read().await["method"] == "Page.loadEventFired" {
                return;
            }
        }
    }

    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for_load().await;
    }

    /// Evaluates a JavaScript expression in the page (the test's probe; the page has none).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Types as a remote control's keyboard would, into the focused field, then Enter; waits
    /// for the page that the submitted form leads to.
    pub async fn type_and_enter(&mut self, text: &str) {
        self.call("Input.insertText", json!({ "text": text })).await;
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": "Enter", "code": "Enter",
                        "windowsVirtualKeyCode": 13, "text": if kind == "keyDown" { "\r" } else { "" } }),
            )
            .await;
        }
        self.wait_for_load().await;
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("png data"))
            .expect("base64")
    }
}

/// The browser process, killed and reaped on drop.
struct Chromium(Child);

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
