//! Client connections: an idle keep-alive connection is closed after `keepalive_timeout`, and
//! one client network holds at most `max_connections_per_client` connections (refused at
//! accept once full, or at the first request of a connection accepted before).

use crate::support::edge::Edge;
use crate::support::upstream::Upstream;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One request on an open connection; the status and whether the server will close it.
fn exchange(s: &mut TcpStream) -> Option<(u16, bool)> {
    s.write_all(b"GET /x HTTP/1.1\r\nHost: cinema.test\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            let status = head.get(9..12)?.parse().ok()?;
            return Some((status, head.contains("connection: close")));
        }
    }
}

fn connect(edge: &Edge) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", edge.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// True when the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn an_idle_keepalive_connection_is_closed_after_the_timeout() {
    let u = Upstream::start("u");
    let edge = Edge::start_full(
        "keepalive_timeout = \"1s\"",
        &crate::support::one_route(&[u.addr()], ""),
        |_, _| String::new(),
    );
    let mut s = connect(&edge);
    assert_eq!(exchange(&mut s), Some((200, false)));
    // within the timeout the connection serves the next request
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(exchange(&mut s), Some((200, false)));
    let idle_from = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(4)),
        "an idle connection must be closed"
    );
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
}

#[test]
fn one_client_network_holds_at_most_its_connections() {
    let u = Upstream::start("u");
    let edge = Edge::start_full(
        "max_connections_per_client = 2",
        &crate::support::one_route(&[u.addr()], ""),
        |_, _| String::new(),
    );
    // accepted before the network is full, the third is refused at its first request
    let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(&edge)).collect();
    assert_eq!(exchange(&mut conns[0]), Some((200, false)));
    assert_eq!(exchange(&mut conns[1]), Some((200, false)));
    assert_eq!(exchange(&mut conns[2]), Some((429, true)));
    // a full network is refused at accept: closed before any answer
    let mut late = connect(&edge);
    assert_eq!(exchange(&mut late), None, "refused at accept");
    // the slots are kept across keep-alive requests ...
    assert_eq!(exchange(&mut conns[0]), Some((200, false)));
    // ... and given back when a connection closes
    drop(conns.remove(0));
    let mut again = None;
    for _ in 0..50 {
        let mut s = connect(&edge);
        if exchange(&mut s) == Some((200, false)) {
            again = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(again.is_some(), "a closed connection's slot is free again");
}

#[test]
fn trusted_proxies_are_not_limited() {
    let u = Upstream::start("u");
    let edge = Edge::start_full(
        "max_connections_per_client = 1",
        &format!(
            "[client_ip]\ntrusted_proxies = [\"127.0.0.0/8\"]\n{}",
            crate::support::one_route(&[u.addr()], "")
        ),
        |_, _| String::new(),
    );
    let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(&edge)).collect();
    for s in &mut conns {
        assert_eq!(exchange(s), Some((200, false)));
    }
}

/// Soft and hard open-files limits of a process, from /proc.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut words = line.split_whitespace().skip(3);
    (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    // as a container runtime starts it: a soft limit of 256 under a hard one of 8192
    let u = Upstream::start("u");
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    std::fs::write(
        dir.path().join("edge.toml"),
        format!(
            "{}\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n{}",
            crate::support::edge::base_conf(dir.path()),
            crate::support::one_route(&[u.addr()], "")
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("prlimit")
        .arg("--nofile=256:8192")
        .arg("--")
        .arg(crate::support::edge::binary())
        .args(["run", "--conf"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = crate::support::wait_for_port(port, Duration::from_secs(10));
    let limits = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the edge did not start under prlimit");
    assert_eq!(limits, ("8192".to_string(), "8192".to_string()));
}
