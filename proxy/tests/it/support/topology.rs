//! Redis topologies for the test matrix, each started from Debian's `redis-server` on free
//! 127.0.0.1 ports and killed on drop: one server, a 6-node cluster (3 masters, 3 replicas),
//! Sentinel (a master, a replica, three sentinels), and a TLS-only server with a throwaway CA,
//! client certificates and ACL users. `conf()` is the `[redis]` section that reaches it.

use super::redis::Redis;
use super::{free_port, need, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Standalone,
    Cluster,
    Sentinel,
    TlsAcl,
}

/// The ACL user the edge connects as on the TLS server, and where its password is.
pub const EDGE_USER: &str = "edge";
pub const PASSWORD_ENV: &str = "EDGE_TEST_REDIS_PASSWORD";
const EDGE_PASSWORD: &str = "edge-redis-secret-7f3a";
const ADMIN_PASSWORD: &str = "admin-redis-secret-91c2";
pub const MASTER_NAME: &str = "cinema";

/// One `redis-server` process (a data node or a sentinel).
pub struct Node {
    child: Option<Child>,
    pub port: u16,
}

impl Node {
    fn spawn(args: &[String], port: u16) -> Node {
        let child = Command::new(need("redis-server"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        assert!(
            wait_for_port(port, Duration::from_secs(10)),
            "redis-server on {port} did not start"
        );
        Node {
            child: Some(child),
            port,
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub enum Topology {
    Standalone(Redis),
    Cluster {
        nodes: Vec<Node>,
        _dir: tempfile::TempDir,
    },
    Sentinel {
        data: Vec<Node>,
        sentinels: Vec<Node>,
        _dir: tempfile::TempDir,
    },
    TlsAcl {
        node: Node,
        dir: tempfile::TempDir,
    },
}

impl Topology {
    pub fn start(kind: Kind) -> Topology {
        match kind {
            Kind::Standalone => Topology::Standalone(Redis::start()),
            Kind::Cluster => start_cluster(),
            Kind::Sentinel => start_sentinel(),
            Kind::TlsAcl => start_tls_acl(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Topology::Standalone(_) => Kind::Standalone,
            Topology::Cluster { .. } => Kind::Cluster,
            Topology::Sentinel { .. } => Kind::Sentinel,
            Topology::TlsAcl { .. } => Kind::TlsAcl,
        }
    }

    /// The `[redis]` section that reaches this topology, with `timeout`.
    pub fn conf_with_timeout(&self, timeout: &str) -> String {
        let body = match self {
            Topology::Standalone(r) => format!("url = \"{}\"\n", r.url()),
            Topology::Cluster { nodes, .. } => format!(
                "mode = \"cluster\"\nurls = [{}]\n",
                nodes
                    .iter()
                    .take(3)
                    .map(|n| format!("\"redis://127.0.0.1:{}\"", n.port))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Topology::Sentinel { sentinels, .. } => format!(
                "mode = \"sentinel\"\nmaster_name = \"{MASTER_NAME}\"\nurls = [{}]\n",
                sentinels
                    .iter()
                    .map(|n| format!("\"redis://127.0.0.1:{}\"", n.port))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Topology::TlsAcl { node, dir } => {
                set_password_env();
                let d = dir.path().display();
                format!(
                    "url = \"rediss://127.0.0.1:{}/\"\nusername = \"{EDGE_USER}\"\npassword_env = \"{PASSWORD_ENV}\"\n\
                     tls = {{ ca = \"{d}/ca.pem\", cert = \"{d}/client.pem\", key = \"{d}/client.key\" }}\n",
                    node.port
                )
            }
        };
        format!("[redis]\n{body}timeout = \"{timeout}\"\n")
    }

    pub fn conf(&self) -> String {
        self.conf_with_timeout("50ms")
    }

    /// The data nodes that are masters now (asked of the nodes themselves).
    pub fn master_ports(&self) -> Vec<u16> {
        match self {
            Topology::Standalone(r) => vec![r.port],
            Topology::TlsAcl { node, .. } => vec![node.port],
            Topology::Cluster { nodes, .. } | Topology::Sentinel { data: nodes, .. } => nodes
                .iter()
                .filter(|n| n.child.is_some())
                .filter(|n| self.cli_at(n.port, &["ROLE"]).starts_with("master"))
                .map(|n| n.port)
                .collect(),
        }
    }

    /// redis-cli at one node, with the flags this topology needs (TLS, the admin user).
    pub fn cli_at(&self, port: u16, args: &[&str]) -> String {
        let mut cmd = Command::new(need("redis-cli"));
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Topology::TlsAcl { dir, .. } = self {
            let d = dir.path();
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(d.join("ca.pem"))
                .arg("--cert")
                .arg(d.join("client.pem"))
                .arg("--key")
                .arg(d.join("client.key"))
                .args([
                    "--user",
                    "admin",
                    "--pass",
                    ADMIN_PASSWORD,
                    "--no-auth-warning",
                ]);
        }
        if let Topology::Cluster { .. } = self {
            cmd.arg("-c"); // follow MOVED to the key's node
        }
        let out = cmd.args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// One command where its key lives (any master for a keyless one).
    pub fn cli(&self, args: &[&str]) -> String {
        let port = self.master_ports().first().copied().expect("a master");
        self.cli_at(port, args)
    }

    /// Keys matching `pattern` across every master (SCAN, which the ACL user may run).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut all = Vec::new();
        for port in self.master_ports() {
            let out = self.cli_at(port, &["--scan", "--pattern", pattern]);
            all.extend(out.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
        all.sort();
        all
    }

    /// `calls` of one command from INFO commandstats, summed over the masters.
    pub fn command_calls(&self, command: &str) -> u64 {
        self.master_ports()
            .iter()
            .map(|p| {
                let stats = self.cli_at(*p, &["INFO", "commandstats"]);
                stats
                    .lines()
                    .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
                    .and_then(|l| l.split("calls=").nth(1))
                    .and_then(|v| v.split(',').next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// The master that owns `key` (cluster: by slot; otherwise the one master).
    pub fn master_of(&self, key: &str) -> u16 {
        self.serving(key).expect("a master serves the key")
    }

    /// The master serving `key` now, if any (none while its slot's master has failed).
    pub fn serving(&self, key: &str) -> Option<u16> {
        match self {
            Topology::Cluster { .. } => {
                let slot: u32 = self
                    .cli(&["CLUSTER", "KEYSLOT", key])
                    .parse()
                    .expect("a slot");
                let nodes = self.cli(&["CLUSTER", "NODES"]);
                for line in nodes.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                        continue;
                    }
                    let port = f[1]
                        .split('@')
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    for range in &f[8..] {
                        let (a, b) = range.split_once('-').unwrap_or((range, range));
                        if let (Ok(a), Ok(b), Some(port)) =
                            (a.parse::<u32>(), b.parse::<u32>(), port)
                        {
                            if a <= slot && slot <= b {
                                return Some(port);
                            }
                        }
                    }
                }
                None
            }
            _ => self.master_ports().first().copied(),
        }
    }

    /// Kills the data node on `port` with SIGKILL.
    pub fn kill_node(&mut self, port: u16) {
        match self {
            Topology::Cluster { nodes, .. } | Topology::Sentinel { data: nodes, .. } => {
                if let Some(n) = nodes.iter_mut().find(|n| n.port == port) {
                    n.kill();
                }
            }
            Topology::Standalone(_) | Topology::TlsAcl { .. } => {
                panic!("no failover in this topology")
            }
        }
    }

    /// Waits until a node other than `old` is master for what `old` served.
    pub fn wait_promoted(&self, old: u16, key: &str, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let now = match self {
                Topology::Cluster { nodes, .. } => {
                    // ask a live node which master owns the key's slot now
                    let live = nodes.iter().find(|n| n.child.is_some() && n.port != old);
                    live.and_then(|_| self.serving(key))
                }
                _ => self.master_ports().into_iter().find(|p| *p != old),
            };
            if let Some(p) = now.filter(|p| *p != old) {
                return Some(p);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

fn set_password_env() {
    static SET: Once = Once::new();
    // the edge reads the password from this variable; children inherit it
    SET.call_once(|| std::env::set_var(PASSWORD_ENV, EDGE_PASSWORD));
}

fn base_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start_cluster() -> Topology {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nodes = Vec::new();
    for i in 0..6 {
        let port = free_port();
        let node_dir = dir.path().join(format!("n{i}"));
        std::fs::create_dir_all(&node_dir).expect("mkdir");
        let mut args = base_args(port, &node_dir);
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                // the bus port is given: the default (port + 10000) is out of range above 55535
                "--cluster-port",
                &free_port().to_string(),
                // fail over within about a second of a master's death
                "--cluster-node-timeout",
                "1000",
                // the other masters keep serving their slots while one is down
                "--cluster-require-full-coverage",
                "no",
            ]
            .map(String::from),
        );
        nodes.push(Node::spawn(&args, port));
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new(need("redis-cli"))
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create");
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let topo = Topology::Cluster { nodes, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    let ports: Vec<u16> = match &topo {
        Topology::Cluster { nodes, .. } => nodes.iter().map(|n| n.port).collect(),
        _ => unreachable!(),
    };
    // every node agrees the cluster is whole and knows the five others
    loop {
        let ready = ports.iter().all(|p| {
            topo.cli_at(*p, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
                && topo.cli_at(*p, &["CLUSTER", "NODES"]).lines().count() == 6
        });
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster did not form");
        std::thread::sleep(Duration::from_millis(100));
    }
    topo
}

fn start_sentinel() -> Topology {
    let dir = tempfile::tempdir().expect("tempdir");
    let master_port = free_port();
    let mdir = dir.path().join("master");
    std::fs::create_dir_all(&mdir).expect("mkdir");
    let master = Node::spawn(&base_args(master_port, &mdir), master_port);
    let replica_port = free_port();
    let rdir = dir.path().join("replica");
    std::fs::create_dir_all(&rdir).expect("mkdir");
    let mut args = base_args(replica_port, &rdir);
    args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        master_port.to_string(),
    ]);
    let replica = Node::spawn(&args, replica_port);
    let mut sentinels = Vec::new();
    for i in 0..3 {
        let port = free_port();
        // sentinels rewrite their config file: each gets its own, writable
        let conf = dir.path().join(format!("sentinel{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {d}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 10000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                d = dir.path().display()
            ),
        )
        .expect("write sentinel conf");
        sentinels.push(Node::spawn(
            &[conf.display().to_string(), "--sentinel".into()],
            port,
        ));
    }
    let topo = Topology::Sentinel {
        data: vec![master, replica],
        sentinels,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let linked = topo
            .cli_at(replica_port, &["INFO", "replication"])
            .contains("master_link_status:up");
        // every sentinel knows the replica and the two other sentinels
        let known = match &topo {
            Topology::Sentinel { sentinels, .. } => sentinels.iter().all(|s| {
                let r = topo.cli_at(s.port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                let o = topo.cli_at(s.port, &["SENTINEL", "SENTINELS", MASTER_NAME]);
                r.contains(&replica_port.to_string()) && o.matches("runid").count() >= 2
            }),
            _ => unreachable!(),
        };
        if linked && known {
            break;
        }
        assert!(Instant::now() < deadline, "sentinel did not settle");
        std::thread::sleep(Duration::from_millis(100));
    }
    topo
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, with the openssl CLI.
pub fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new(need("openssl"))
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=edge test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    // v3 certificates with extensions: rustls (webpki) refuses v1 ones
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    std::fs::write(
        dir.join("client.ext"),
        "subjectAltName=DNS:edge\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write ext");
    for who in ["server", "client"] {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={who}"),
            "-keyout",
            &format!("{who}.key"),
            "-out",
            &format!("{who}.csr"),
        ]);
        let mut args = vec!["x509", "-req", "-in", &format!("{who}.csr")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(
            [
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{who}.pem"),
            ]
            .map(String::from),
        );
        args.extend(["-extfile".into(), format!("{who}.ext")]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs);
    }
}

fn start_tls_acl() -> Topology {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let port = free_port();
    let d = dir.path();
    // TLS only (no plain port), client certificates required, the default user off: the edge
    // is an ACL user without the dangerous commands; the harness inspects as admin
    let conf = format!(
        "bind 127.0.0.1\nport 0\ntls-port {port}\n\
         tls-cert-file {d}/server.pem\ntls-key-file {d}/server.key\ntls-ca-cert-file {d}/ca.pem\n\
         tls-auth-clients yes\nsave \"\"\nappendonly no\ndir {d}\n\
         user default off\n\
         user {EDGE_USER} on >{EDGE_PASSWORD} ~* &* +@all -@dangerous\n\
         user admin on >{ADMIN_PASSWORD} ~* &* +@all\n",
        d = d.display()
    );
    let path: PathBuf = d.join("redis.conf");
    std::fs::write(&path, conf).expect("write redis.conf");
    let node = Node::spawn(&[path.display().to_string()], port);
    set_password_env();
    Topology::TlsAcl { node, dir }
}
