//! The edge with its embedded auth core, a real PostgreSQL and a real Redis: the stack every
//! auth test runs against. Argon2 runs with small parameters here (the shipped defaults are
//! checked by unit tests and measured by bench/login-storm.sh).

use super::edge::Edge;
use super::postgres::Postgres;
use super::topology::{Kind, Topology};
use super::{client, free_port};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct AuthStack {
    pub edge: Edge,
    pub redis: Topology,
    pub pg: Postgres,
    /// The conf dir the admin commands use (same `[auth]` as the edge).
    pub admin_conf: tempfile::TempDir,
    pub keys: tempfile::TempDir,
    pub http: reqwest::Client,
    /// The edge's conf text and its core's port, for starting more replicas.
    conf: String,
    auth_port: u16,
}

#[derive(Default)]
pub struct Options<'a> {
    /// More `[auth]` keys, one per line.
    pub auth_extra: &'a str,
    /// More conf text (routes, upstreams, limits).
    pub routes_extra: &'a str,
    /// A `[social]` section; `{edge}` is replaced by the edge's origin (its public URL).
    pub social: &'a str,
    /// The edge's log filter ("info" when empty).
    pub log_level: &'a str,
    /// The Redis topology behind the edge and the core (one server by default).
    pub redis: Kind,
}

pub const PASSWORD: &str = "correct horse battery";

impl AuthStack {
    pub fn start() -> AuthStack {
        Self::start_with(Options::default())
    }

    pub fn start_with(o: Options<'_>) -> AuthStack {
        let pg = Postgres::start();
        pg.psql("postgres", "CREATE DATABASE edge")
            .expect("createdb");
        let redis = Topology::start(o.redis);
        let keys = tempfile::tempdir().expect("tempdir");
        let auth_port = free_port();
        let auth_toml = format!(
            "{redis}\n\
             [auth]\nlisten = \"127.0.0.1:{auth_port}\"\ndatabase_url = \"{db}\"\n\
             issuer = \"https://cinema.test\"\naudience = \"cinema\"\n\
             keys_dir = \"{keys}\"\n{reload}{extra}\n\
             password = {{ memory_kib = 1024, iterations = 1, parallelism = 1, max_concurrent = 4 }}\n",
            redis = redis.conf(),
            db = pg.url("edge"),
            keys = keys.path().display(),
            extra = o.auth_extra,
            reload = if o.auth_extra.contains("keys_reload_interval") {
                ""
            } else {
                "keys_reload_interval = \"200ms\"\n"
            },
        );
        let routes = format!(
            "{auth_toml}\n[[route]]\nname = \"auth\"\npath = \"/auth\"\nupstream = \"auth\"\n\
             [upstream.auth]\nservers = [\"127.0.0.1:{auth_port}\"]\n{}",
            o.routes_extra
        );
        // the admin commands read the same [auth]; a listener makes the dir a valid conf
        let admin_conf = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            admin_conf.path().join("edge.toml"),
            format!(
                "[[listener]]\naddress = \"127.0.0.1:{}\"\n{auth_toml}",
                free_port()
            ),
        )
        .expect("write conf");
        let out = edge_cmd(admin_conf.path(), &["keys", "rotate"], None);
        assert!(out.status.success(), "keys rotate: {}", text(&out));
        let out = edge_cmd(admin_conf.path(), &["migrate"], None);
        assert!(out.status.success(), "migrate: {}", text(&out));
        let social = o.social;
        let level = if o.log_level.is_empty() {
            "info"
        } else {
            o.log_level
        };
        let edge = Edge::start_logged(level, "", &routes, |_, port| {
            social.replace("{edge}", &format!("http://127.0.0.1:{port}"))
        });
        AuthStack {
            edge,
            redis,
            pg,
            admin_conf,
            keys,
            http: client(),
            conf: routes,
            auth_port,
        }
    }

    /// Another edge replica on the same database, Redis and keys (its own embedded core on
    /// its own port).
    pub fn replica(&self) -> Edge {
        let own = format!("127.0.0.1:{}", free_port());
        let conf = self
            .conf
            .replace(&format!("127.0.0.1:{}", self.auth_port), &own);
        Edge::start_logged("info", "", &conf, |_, _| String::new())
    }

    pub fn url(&self, path: &str) -> String {
        self.edge.url(path)
    }

    /// Runs `edge <args>` against this stack's conf; `stdin` is piped in.
    pub fn cmd(&self, args: &[&str], stdin: Option<&str>) -> Output {
        edge_cmd(self.admin_conf.path(), args, stdin)
    }

    /// Creates an account through the CLI with `roles`; returns its id.
    pub fn create_user(&self, email: &str, roles: &[&str]) -> String {
        let mut args = vec!["user", "create", "--email", email, "--password-stdin"];
        for r in roles {
            args.extend(["--role", r]);
        }
        let out = self.cmd(&args, Some(PASSWORD));
        assert!(out.status.success(), "user create: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        stdout
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .expect("user id in output")
            .to_string()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post(
            "/auth/register",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login_raw(&self, email: &str, password: &str, user_agent: &str) -> Response {
        self.http
            .post(self.url("/auth/login"))
            .header("user-agent", user_agent)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns the token pair, failing the test otherwise.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self.login_raw(email, password, "test-client/1.0").await;
        assert_eq!(r.status(), StatusCode::OK, "login of {email}");
        r.json().await.expect("token json")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Ends the session of `access_token` and checks the core said so (204).
    pub async fn logout(&self, access_token: &str) {
        let r = self
            .http
            .post(self.url("/auth/logout"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "logout");
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/auth/refresh", json!({ "refresh_token": refresh_token }))
            .await
    }

    pub fn sql(&self, query: &str) -> String {
        self.pg.psql("edge", query).expect("psql")
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.keys.path().to_path_buf()
    }
}

fn edge_cmd(conf: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(crate::support::edge::binary());
    cmd.args(args)
        .arg("--conf")
        .arg(conf)
        .env_remove("DATABASE_URL")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn edge");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let _ = writeln!(pipe, "{input}");
    }
    child.wait_with_output().expect("edge output")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The claims of a JWT, decoded without verification (the test inspects what was issued).
pub fn claims(jwt: &str) -> (Value, Value) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let part = |i: usize| -> Value {
        let seg = jwt.split('.').nth(i).expect("jwt segment");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).expect("base64url")).expect("json")
    };
    (part(0), part(1))
}

/// An error body: asserts its shape and that it carries the response's request id.
pub async fn error_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["request_id"], id.as_str(), "request id in {body}");
    assert!(body["error"].is_string(), "{body}");
    (status, body)
}
