//! Serde mirror of the TOML files in the conf dir. Nothing here is used on the request path:
//! `validate` turns these into the runtime types of `runtime.rs`. Every struct rejects unknown
//! keys, because service owners make typos and a silently ignored key is a production incident.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One conf file. Every section is optional so owners can split routes and upstreams per
/// service; `validate` checks what must exist once across the whole directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConf {
    pub server: Option<ServerFile>,
    pub log: Option<LogFile>,
    #[serde(default)]
    pub listener: Vec<ListenerFile>,
    #[serde(default)]
    pub route: Vec<RouteFile>,
    #[serde(default)]
    pub upstream: BTreeMap<String, UpstreamFile>,
    pub redis: Option<RedisFile>,
    pub rate_limit: Option<RateLimitFile>,
    #[serde(default)]
    pub limit: BTreeMap<String, LimitFile>,
    pub client_ip: Option<ClientIpFile>,
    pub metrics: Option<MetricsFile>,
    pub auth: Option<AuthFile>,
    pub bot_filter: Option<BotFilterFile>,
    pub tracing: Option<TracingFile>,
    pub social: Option<SocialFile>,
    pub mail: Option<MailFile>,
    pub http: Option<HttpFile>,
    pub forward_auth: Option<ForwardAuthFile>,
    /// `[[issuer]]`: identity providers besides the auth core whose tokens routes may accept.
    #[serde(default)]
    pub issuer: Vec<IssuerFile>,
}

/// `[mail]`: confirmation and reset mails of the embedded auth core, through SMTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFile {
    /// `From:` of every mail: "Cinema <no-reply@cinema.example>".
    pub from: String,
    /// The relay, "host:port" ("smtp.example.com:587").
    pub smtp: String,
    /// "starttls" (default), "tls" (port 465) or "none" (a relay on loopback).
    pub security: Option<String>,
    /// PEM file of a private CA the relay's certificate chains to (besides the public roots).
    pub ca: Option<String>,
    /// Names of environment variables holding the SMTP login (never the values here).
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// Longest wait on the relay per step (default "10s").
    pub timeout: Option<String>,
    /// Attempts before a mail is given up (default 8).
    pub max_attempts: Option<u32>,
    /// Wait after the first failure, doubled each time up to retry_max (defaults "30s", "1h").
    pub retry_base: Option<String>,
    pub retry_max: Option<String>,
    /// How often each replica looks for due mail (default "2s").
    pub poll_interval: Option<String>,
    /// The front end's pages for the links, with `{token}`:
    /// "https://cinema.example/account/confirm?token={token}".
    pub confirm_url: String,
    pub reset_url: String,
    /// Lifetimes of confirmation and reset links (defaults "24h", "30m").
    pub confirm_ttl: Option<String>,
    pub reset_ttl: Option<String>,
}

/// An external token issuer (Keycloak, Google, a partner's IdP).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// What routes call it in `issuers = [...]`.
    pub name: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Accepted `aud` values (any one).
    pub audience: Vec<String>,
    /// Its JWKS; or `discovery = true` to read `jwks_uri` from
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    pub discovery: Option<bool>,
    /// Accepted signature algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384,
    /// EdDSA); a key is used only with the ones its type allows.
    pub algorithms: Vec<String>,
    /// Dotted path of the roles claim (default "roles"; Keycloak: "realm_access.roles").
    pub roles_claim: Option<String>,
    /// Keys are read again this often (default "10m"; at once, rate-limited, for an unknown kid).
    pub refresh: Option<String>,
}

/// `[forward_auth]`: identity decisions for proxies in front of services not behind the edge
/// (nginx `auth_request`, Traefik `forwardAuth`, Envoy `ext_authz`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthFile {
    /// Where decisions are asked, under `/_edge/` (default "/_edge/auth").
    pub path: Option<String>,
    /// Peers allowed to ask (default: loopback only); others get 404.
    pub allow: Option<Vec<String>>,
    /// `[forward_auth.policy.<name>]`, asked for at `<path>/<name>`.
    #[serde(default)]
    pub policy: BTreeMap<String, AccessPolicyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicyFile {
    /// "optional" or "required".
    pub auth: String,
    /// With "required": any one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Whose tokens count (default ["self"]), as for routes.
    pub issuers: Option<Vec<String>>,
    /// With "required": the token's `email_verified` must be true, as for routes.
    pub require_verified_email: Option<bool>,
}

/// `[http]`: what one request may carry, for every route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Largest request body of a route without its own `max_body` (default "1MiB", nginx's
    /// `client_max_body_size`; "off": no limit). Larger → 413.
    pub max_body: Option<String>,
    /// Largest request line plus header block (default "32KiB"). Larger → 431.
    pub max_header_block: Option<String>,
}

/// Headers a route adds, sets or removes (`request_headers`, `response_headers`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRulesFile {
    /// Replaces any value of the header.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Adds a value beside those present.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Removed before `set` and `add` apply.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `[social]`: sign-in with Yandex ID, VK ID, Google, Mail.ru and OpenID Connect providers
/// (docs/social-login.md). Needs the embedded auth core, Redis and `auth.token_cookie`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialFile {
    /// The site's public origin; callbacks are `{public_url}/auth/oauth/{provider}/callback`.
    pub public_url: String,
    /// Origins an absolute `return_to` may point at (relative paths are always allowed).
    #[serde(default)]
    pub return_to_allow: Vec<String>,
    /// Time a user has to finish a sign-in at the provider (default "10m").
    pub flow_ttl: Option<String>,
    /// Linking a provider needs a sign-in at most this old (default "10m").
    pub recent_login: Option<String>,
    /// One call to a provider gives up after this long (default "5s").
    pub http_timeout: Option<String>,
    /// Largest provider answer read, in bytes (default 1048576).
    pub max_response_bytes: Option<usize>,
    /// `[social.provider.<name>]`: `yandex`, `vk`, `google`, `mailru`, or any name with
    /// `kind = "generic_oidc"`.
    #[serde(default)]
    pub provider: BTreeMap<String, SocialProviderFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialProviderFile {
    /// `yandex`, `vk`, `google`, `mailru` or `generic_oidc` (default: the provider's name).
    pub kind: Option<String>,
    pub client_id: String,
    /// Name of the environment variable holding the client secret (never the secret itself).
    pub client_secret_env: Option<String>,
    /// Default: what the kind needs for an id and an email.
    pub scopes: Option<Vec<String>>,
    /// Endpoint overrides (built-in kinds have defaults; tests point them at local servers).
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    /// OpenID Connect discovery document (required for `generic_oidc` unless the endpoints,
    /// `jwks_url` and `issuer` are all set).
    pub discovery_url: Option<String>,
}

/// `[tracing]`: OpenTelemetry traces over OTLP; absent: no tracing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    /// Collector: "http://127.0.0.1:4317" for gRPC, "http://127.0.0.1:4318" for HTTP.
    pub endpoint: String,
    /// "grpc" (default) or "http" (HTTP/protobuf).
    pub protocol: Option<String>,
    /// `service.name` of the spans (default "edge").
    pub service_name: Option<String>,
    /// Share of requests traced, 0.0 to 1.0 (default 1.0); a sampled incoming trace stays sampled.
    pub sampling: Option<f64>,
    /// Socket peers whose incoming `traceparent` is continued (default: none, every request
    /// starts a trace): clients must not choose trace ids or force sampling.
    #[serde(default)]
    pub trust_incoming: Vec<String>,
    /// Spans kept waiting for export (default 2048); more are dropped, never waited for.
    pub max_queue: Option<usize>,
    /// Spans per export (default 512).
    pub max_batch: Option<usize>,
    /// Export at least this often (default "1s").
    pub batch_delay: Option<String>,
    /// One export gives up after this long (default "5s").
    pub export_timeout: Option<String>,
}

/// `[bot_filter]`: the Smart TV bot filter (math challenges for suspicious clients).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotFilterFile {
    /// HMAC key of answers and passes, at least 32 bytes, the same on every replica; when
    /// absent, `EDGE_BOT_FILTER_SECRET`, else a random key per process (passes then work on
    /// this replica only, until it restarts).
    pub secret: Option<String>,
    /// Lifetime of a pass (default "45m").
    pub pass_ttl: Option<String>,
    /// Lifetime of a question (default "2m").
    pub challenge_ttl: Option<String>,
    /// Answers sooner than this after the question are refused as a failure (default "1500ms").
    pub min_answer_time: Option<String>,
    /// Failures per client in `failure_window` before a lockout (default 5).
    pub max_failures: Option<u32>,
    /// Default "10m".
    pub failure_window: Option<String>,
    /// Successive lockout lengths (default ["1m", "5m", "30m"]).
    pub lockouts: Option<Vec<String>>,
    /// A request with this header is an app and gets JSON (as with `Accept: application/json`).
    pub app_header: Option<String>,
    /// Requests per pass, per replica (default "10/s", burst 50): one solved pass cannot serve
    /// a farm.
    pub pass_rate: Option<String>,
    pub pass_burst: Option<u64>,
    /// Cookie that carries the pass (default "edge_pass"); apps send `X-Edge-Pass`.
    pub cookie: Option<String>,
    /// A `[limit.<name>]` policy applied to answers (`POST /_edge/challenge/…`).
    pub answer_limit: Option<String>,
    #[serde(default)]
    pub rule: Vec<BotRuleFile>,
}

/// One rule; the first rule whose every condition holds decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotRuleFile {
    pub name: String,
    /// Regex on User-Agent.
    pub user_agent: Option<String>,
    /// Path prefixes (any).
    #[serde(default)]
    pub path: Vec<String>,
    /// Client CIDRs (any).
    #[serde(default)]
    pub client: Vec<String>,
    /// Header name → regex on its value (all).
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    /// Holds when the client (network prefix + User-Agent) sends more than this.
    pub rate: Option<BotRateFile>,
    /// Holds when the client failed at least this many challenges in the failure window.
    pub failed_challenges: Option<u32>,
    /// "allow", "challenge" or "deny".
    pub action: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotRateFile {
    pub requests: u64,
    pub window: String,
}

/// `[auth]`: the embedded auth core (`database_url`), or only the keys of a core running
/// elsewhere (`jwks_url`). Absent: no token verification in this edge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// JWKS of an auth core running elsewhere; set instead of `database_url`.
    pub jwks_url: Option<String>,
    /// Cookie read for the access token when there is no `Authorization` header.
    pub token_cookie: Option<String>,
    /// Loopback address the core listens on; route `/auth` to it (default "127.0.0.1:8090").
    pub listen: Option<String>,
    /// "postgres://user@host:port/db"; when absent, the `DATABASE_URL` environment variable.
    pub database_url: Option<String>,
    /// Apply the migrations when the edge starts (default false: run `edge migrate`).
    pub migrate_on_start: Option<bool>,
    /// Database pool size (default 10).
    pub db_max_connections: Option<u32>,
    /// Longest wait for a database connection before answering 503 (default "2s").
    pub db_timeout: Option<String>,
    /// `iss` of access tokens, e.g. "https://cinema.example".
    pub issuer: String,
    /// `aud` of access tokens, e.g. "cinema".
    pub audience: String,
    /// Access token lifetime (default "15m").
    pub access_ttl: Option<String>,
    /// Session (refresh token) lifetime (default "30d").
    pub refresh_ttl: Option<String>,
    /// Window in which a just-spent refresh token is honoured again (default "10s").
    pub refresh_reuse_grace: Option<String>,
    /// Directory of signing keys, written by `edge keys rotate` (embedded core).
    pub keys_dir: Option<String>,
    /// Create the first key when the directory is empty (default false).
    pub generate_keys: Option<bool>,
    /// How often the keys (directory or JWKS) are read again (default "10s").
    pub keys_reload_interval: Option<String>,
    /// Monthly login-history partitions kept ready ahead (default 3).
    pub history_months_ahead: Option<u32>,
    pub password: Option<AuthPasswordFile>,
    pub throttle: Option<AuthThrottleFile>,
    /// Sign-in on TVs by a code approved on a phone (RFC 8628).
    pub device: Option<AuthDeviceFile>,
}

/// `[auth.device]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDeviceFile {
    /// TV apps allowed to ask for codes: `{ id = "…", name = "…" }`.
    pub clients: Vec<AuthDeviceClientFile>,
    /// How long a code waits for approval (default "10m").
    pub user_code_ttl: Option<String>,
    /// Least time between polls (default "5s").
    pub interval: Option<String>,
    /// Where viewers enter the code, absolute ("https://cinema.example/activate"); its path
    /// is served by the core: route it to the `auth` upstream.
    pub verification_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDeviceClientFile {
    pub id: String,
    pub name: String,
}

/// Argon2id parameters (defaults: the OWASP minimum, m=19456 KiB, t=2, p=1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPasswordFile {
    pub memory_kib: Option<u32>,
    pub iterations: Option<u32>,
    pub parallelism: Option<u32>,
    /// Hashes computed at once (default 2): bounds memory to max_concurrent x memory_kib.
    pub max_concurrent: Option<usize>,
}

/// Login attempts counted in Redis before the password is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthThrottleFile {
    /// Attempts on one account from one client network per window (default 10); past it
    /// that network gets 429 for that account, other networks do not.
    pub per_account: Option<u32>,
    /// Attempts from one client network per window, any account (default 50).
    pub per_ip: Option<u32>,
    /// Default "15m".
    pub window: Option<String>,
    /// Each failure on an account past `per_account`, from any network, delays its next
    /// attempts by this much (default "200ms"), up to `slowdown_max` (default "2s").
    pub slowdown_step: Option<String>,
    pub slowdown_max: Option<String>,
}

/// `/_edge/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Client CIDRs allowed to scrape (default: loopback only).
    pub allow: Vec<String>,
}

/// The Redis shared by every edge replica and the auth core: one server, Sentinel or Cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    /// "standalone" (default), "sentinel" or "cluster".
    pub mode: Option<String>,
    /// "redis://host:port/db" or "rediss://…" (TLS): one server.
    pub url: Option<String>,
    /// Seed nodes (cluster), sentinels (sentinel), or the one server.
    pub urls: Option<Vec<String>>,
    /// The master's name known to the sentinels (sentinel mode).
    pub master_name: Option<String>,
    /// ACL user of the data nodes.
    pub username: Option<String>,
    /// Name of the environment variable holding the password (never the password itself).
    pub password_env: Option<String>,
    /// TLS material for `rediss://` URLs, paths relative to the conf dir.
    pub tls: Option<RedisTlsFile>,
    /// Longest wait for one Redis answer before the request goes on without it (default "10ms").
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTlsFile {
    /// PEM CA to trust instead of the system's roots (a private CA).
    pub ca: Option<String>,
    /// PEM client certificate and key, for servers that require one.
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    /// Edge replicas sharing the Redis; local fallback buckets get rate / replicas (default 1).
    pub replicas: Option<u32>,
    /// RateLimit-* headers on allowed responses too (default true).
    pub headers_on_success: Option<bool>,
    /// Consecutive Redis failures that open the circuit (default 3).
    pub breaker_failures: Option<u32>,
    /// How long the circuit stays open before one probe (default "1s").
    pub breaker_cooldown: Option<String>,
    /// Keys remembered locally as denied or as fallback buckets (default 100000).
    pub local_capacity: Option<u64>,
}

/// A named token-bucket policy that routes list in `limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    /// "ip", "user" (the JWT subject; the IP when anonymous), "route" or "header:<name>".
    pub key: String,
    /// "50/s", "600/m", "10000/h".
    pub rate: String,
    /// Bucket size: requests allowed at once after a quiet period (default: one second of rate).
    pub burst: Option<u64>,
    /// Tokens one request takes (default 1).
    pub cost: Option<u64>,
    /// "local" (default), "deny" or "allow" while Redis is unreachable.
    pub on_redis_down: Option<String>,
    /// Tokens one Redis call may take for later requests of the same key on this replica:
    /// "auto" (default: sized from the key's local rate), "off", or a number of tokens.
    /// See "leases" in the README.
    pub lease: Option<LeaseFile>,
}

/// `lease = "auto" | "off" | N`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "\"auto\", \"off\" or a number of tokens between the cost and the burst"
)]
pub enum LeaseFile {
    Tokens(u64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIpFile {
    /// Peers whose forwarding header is believed (CIDRs).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The one header read from trusted proxies: "x-forwarded-for" (default), "forwarded"
    /// or "x-real-ip".
    pub header: Option<String>,
    /// Clients are counted (limits, login throttle, bot filter) per network of this prefix
    /// length: 32 (default) for IPv4, 64 (default) for IPv6.
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    /// The trusted proxies always set X-Forwarded-Proto and X-Forwarded-Host (default false:
    /// many balancers pass a client's values through, so the edge writes its own).
    pub proxies_set_proto_host: Option<bool>,
}

/// Pingora server settings. Changing them takes a binary upgrade, not a reload.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Worker threads of the proxy service (default: number of CPUs).
    pub threads: Option<usize>,
    /// Tokio work stealing between worker threads (default: false; it costs CPU per request).
    pub work_stealing: Option<bool>,
    /// How long a shutting-down edge keeps accepting before it stops listening (default "1s").
    pub grace_period: Option<String>,
    /// How long in-flight requests get to finish after that (default "5s").
    pub graceful_shutdown_timeout: Option<String>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    /// Idle upstream connections kept for reuse, across all pools (default 128).
    pub upstream_keepalive_pool_size: Option<usize>,
    /// Poll the conf dir for changes and reload (default true). SIGHUP always reloads.
    pub watch: Option<bool>,
    /// How often the conf dir is polled (default "1s").
    pub watch_interval: Option<String>,
    /// How long an idle client keep-alive connection waits for its next request (default
    /// "75s", nginx's `keepalive_timeout`; "0s" closes after each response).
    pub keepalive_timeout: Option<String>,
    /// Open connections one client network may hold (default 256; 0: no limit).
    pub max_connections_per_client: Option<u32>,
    /// Bytes of read buffer per client connection (default 4096; Pingora's own is 64 KiB,
    /// which an idle keep-alive connection holds the whole time).
    pub client_read_buffer: Option<usize>,
    /// Accept HTTP/2 with prior knowledge (h2c) on plain listeners beside HTTP/1.1 (default
    /// false): gRPC clients inside the network speak it.
    pub h2c: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// "json" (default) or "human".
    pub format: Option<String>,
    /// A tracing filter such as "info" or "info,edge=debug" (default "info"; RUST_LOG wins).
    pub level: Option<String>,
    /// One line per request (default true).
    pub access_log: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub address: String,
    /// TLS certificates; the first one is served when the client sends no matching SNI.
    #[serde(default)]
    pub certificate: Vec<CertificateFile>,
    /// Offer HTTP/2 by ALPN (TLS listeners only; default true).
    pub http2: Option<bool>,
    /// Answer every request on this plain listener with a redirect to HTTPS on this port.
    pub redirect_https_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    /// PEM certificate chain, relative to the conf dir.
    pub cert: String,
    /// PEM private key, relative to the conf dir.
    pub key: String,
    /// SNI names this certificate answers for ("*.example.com" allowed).
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    /// Host to match (port ignored, case-insensitive); absent means any host.
    pub host: Option<String>,
    /// Path prefix matched on segment boundaries: "/api" matches "/api" and "/api/x", not "/apix".
    pub path: String,
    pub upstream: String,
    /// Remove the matched prefix before forwarding (default false).
    pub strip_prefix: Option<bool>,
    /// Names of `[limit.<name>]` policies; every one must allow the request.
    #[serde(default)]
    pub limits: Vec<String>,
    /// "public" (default: tokens ignored), "optional" (anonymous or a valid token) or
    /// "required" (a valid token).
    pub auth: Option<String>,
    /// Roles of which the token must carry at least one; needs auth = "required".
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token must say the account's email is confirmed (`email_verified`); needs
    /// auth = "required". Refused: 403 `email_not_verified`.
    pub require_verified_email: Option<bool>,
    /// Accept `;` parameters in path segments (default false: 400), for services that use
    /// matrix parameters. Servers that strip them before routing see another path than the
    /// edge decided on, so only turn this on for a service that does not.
    pub matrix_params: Option<bool>,
    /// Largest request body (default: `[http] max_body`; "off": no limit).
    pub max_body: Option<String>,
    /// Whose tokens the route accepts: "self" (the auth core, the default) and `[[issuer]]`
    /// names.
    pub issuers: Option<Vec<String>>,
    /// Rules for the request sent upstream.
    pub request_headers: Option<HeaderRulesFile>,
    /// Rules for the upstream's response sent to the client.
    pub response_headers: Option<HeaderRulesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// "host:port" of each server.
    pub servers: Vec<String>,
    /// "round_robin" (default) or "consistent_hash".
    pub balance: Option<String>,
    /// With consistent_hash: "ip", "user" (the verified subject), "path", "header:<name>" or "cookie:<name>".
    pub hash_key: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub write_timeout: Option<String>,
    /// How long an idle pooled upstream connection is kept.
    pub idle_timeout: Option<String>,
    /// Further servers tried when connecting fails (default 1).
    pub retries: Option<usize>,
    /// Speak TLS to the servers.
    pub tls: Option<bool>,
    /// SNI and certificate name when `tls` (default: the host part of the first server).
    pub sni: Option<String>,
    /// "h1" (default), "h2" (over TLS, by ALPN) or "h2c" (plain HTTP/2, prior knowledge):
    /// gRPC services need h2 or h2c.
    pub protocol: Option<String>,
    pub health_check: Option<HealthCheckFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    /// HTTP path to GET; without it the check only opens a TCP connection.
    pub path: Option<String>,
    /// Default "5s".
    pub interval: Option<String>,
    /// Default "1s".
    pub timeout: Option<String>,
    /// Consecutive successes to mark a server up (default 1).
    pub healthy_threshold: Option<usize>,
    /// Consecutive failures to mark a server down (default 1).
    pub unhealthy_threshold: Option<usize>,
}
