//! Validated configuration. These types never derive `Deserialize`: the only way to get one is
//! through `validate`, so everything the request path reads has already been checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole conf dir, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub dir: PathBuf,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub listeners: Vec<ListenerSpec>,
    pub routes: Vec<RouteSpec>,
    pub upstreams: Vec<UpstreamSpec>,
    pub redis: Option<RedisSpec>,
    pub rate_limit: RateLimitSettings,
    pub limits: Vec<LimitSpec>,
    pub client_ip: ClientIpSpec,
    /// Clients allowed to read /_edge/metrics.
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// The embedded auth core, when `[auth]` has a database.
    pub auth: Option<auth_core::Config>,
    /// Token verification at the edge, when `[auth]` is set.
    pub identity: Option<IdentitySpec>,
    pub bot_filter: Option<BotFilterSpec>,
    pub tracing: Option<TracingSpec>,
    pub http: HttpSettings,
    pub forward_auth: Option<ForwardAuthSpec>,
    pub issuers: Vec<IssuerSpec>,
}

/// The name routes give the embedded or remote auth core in `issuers`.
pub const SELF_ISSUER: &str = "self";

/// An external issuer, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerSpec {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub keys: IssuerKeys,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// The roles claim's path, e.g. ["realm_access", "roles"].
    pub roles_claim: Vec<String>,
    pub refresh: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IssuerKeys {
    Jwks(String),
    /// The issuer's discovery document names the JWKS.
    Discovery,
}

/// `[forward_auth]`: the decision endpoint and its named policies.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAuthSpec {
    /// Under `/_edge/`, no trailing '/'.
    pub path: String,
    pub allow: Vec<ipnet::IpNet>,
    pub policies: std::collections::BTreeMap<String, AccessPolicy>,
}

/// What a caller's token must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessPolicy {
    pub auth: AuthMode,
    /// Any of these (empty: any valid token).
    pub roles: Vec<String>,
    /// `SELF_ISSUER` and `[[issuer]]` names.
    pub issuers: Vec<String>,
    /// The token's `email_verified` claim must be true.
    pub require_verified_email: bool,
}

/// The HTTP version spoken to a pool's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    #[default]
    H1,
    /// HTTP/2 over TLS, offered alone by ALPN (a server that selects no protocol is spoken
    /// to in HTTP/1.1, as Pingora does; one that only speaks h1 fails the handshake).
    H2,
    /// HTTP/2 over plain TCP with prior knowledge.
    H2c,
}

/// `[http]`: limits on every request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// The default of routes without their own `max_body`; None: no limit.
    pub max_body: Option<u64>,
    /// Request line plus headers, in bytes.
    pub max_header_block: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body: Some(DEFAULT_MAX_BODY),
            max_header_block: DEFAULT_MAX_HEADER_BLOCK,
        }
    }
}

/// nginx's `client_max_body_size`.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// Below Envoy's 60 KiB, above nginx's 8 KiB per line: large cookies still fit.
pub const DEFAULT_MAX_HEADER_BLOCK: usize = 32 << 10;

/// Who the client is: the socket peer, or what a trusted proxy's header says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientIpSpec {
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub header: ForwardedHeader,
    pub networks: auth_core::client_network::ClientNetworks,
    /// Whether trusted proxies set `X-Forwarded-Proto` and `X-Forwarded-Host` themselves
    /// (otherwise the edge writes its own view, whatever arrives).
    pub proxies_set_proto_host: bool,
}

/// The forwarding header read from trusted proxies; the others are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, which load balancers append to.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
    /// `X-Real-IP`: one address, set (not appended) by the proxy in front.
    XRealIp,
}

/// OpenTelemetry export.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSpec {
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub service_name: String,
    pub sampling: f64,
    pub trust_incoming: Vec<ipnet::IpNet>,
    pub max_queue: usize,
    pub max_batch: usize,
    pub batch_delay: Duration,
    pub export_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// The Smart TV bot filter.
#[derive(Debug, Clone, PartialEq)]
pub struct BotFilterSpec {
    pub secret: Option<Vec<u8>>,
    pub pass_ttl: Duration,
    pub challenge_ttl: Duration,
    pub min_answer_time: Duration,
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockouts: Vec<Duration>,
    pub app_header: Option<http::HeaderName>,
    pub pass_rate: f64,
    pub pass_burst: u64,
    pub cookie: String,
    /// Name of the `[limit.*]` policy applied to answers.
    pub answer_limit: Option<String>,
    pub rules: Vec<BotRuleSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BotRuleSpec {
    pub name: String,
    /// Regex sources, checked at validation and compiled with the runtime.
    pub user_agent: Option<String>,
    pub paths: Vec<String>,
    pub clients: Vec<ipnet::IpNet>,
    pub headers: Vec<(http::HeaderName, String)>,
    /// (requests, window): holds above that rate.
    pub rate: Option<(u64, Duration)>,
    pub failed_challenges: Option<u32>,
    pub action: BotAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotAction {
    Allow,
    Challenge,
    Deny,
}

/// How the edge verifies access tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentitySpec {
    pub keys: KeysFrom,
    pub issuer: String,
    pub audience: String,
    /// Keys are read again this often (and at once, rate-limited, on an unknown `kid`).
    pub refresh_every: Duration,
    /// Cookie holding the access token, read when there is no `Authorization` header.
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeysFrom {
    /// The embedded core's key directory.
    Dir { dir: PathBuf, token_ttl: Duration },
    /// A core running elsewhere publishes its keys at this JWKS URL.
    Jwks { url: String },
}

/// The shared Redis client's settings live in the auth core, which owns the client.
pub type RedisSpec = auth_core::redis_client::RedisSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    pub replicas: u32,
    pub headers_on_success: bool,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub local_capacity: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            replicas: 1,
            headers_on_success: true,
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(1),
            local_capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    pub name: String,
    pub key: LimitKey,
    /// Requests per second.
    pub rate: f64,
    pub burst: u64,
    pub cost: u64,
    pub on_redis_down: OnRedisDown,
    pub lease: LeaseSetting,
}

/// How many tokens one Redis call takes for later requests of the key on this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseSetting {
    /// Sized from the key's observed local rate and the bucket's remaining tokens.
    Auto,
    /// One Redis call per request.
    Off,
    /// Always ask for this many (between the cost and the burst).
    Tokens(u64),
}

/// What a policy counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    Ip,
    User,
    Route,
    Header(http::HeaderName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisDown {
    Local,
    Deny,
    Allow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub threads: usize,
    pub work_stealing: bool,
    pub grace_period: Duration,
    pub graceful_shutdown_timeout: Duration,
    pub pid_file: String,
    pub upgrade_sock: String,
    pub upstream_keepalive_pool_size: usize,
    pub watch: bool,
    pub watch_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections_per_client: u32,
    pub client_read_buffer: usize,
    /// HTTP/2 with prior knowledge on plain listeners.
    pub h2c: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Human,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub access_log: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    pub address: SocketAddr,
    pub tls: Option<TlsSpec>,
    pub redirect_https_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsSpec {
    pub http2: bool,
    /// Non-empty; the first is the default certificate.
    pub certificates: Vec<CertificateSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateSpec {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Lowercased SNI names; "*.x" matches one label.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: String,
    /// Lowercased, no port.
    pub host: Option<String>,
    /// Starts with '/', no trailing '/' unless it is "/".
    pub path: String,
    pub upstream: String,
    pub strip_prefix: bool,
    pub limits: Vec<String>,
    pub auth: AuthMode,
    /// Any of these roles, when not empty (only with `AuthMode::Required`).
    pub roles: Vec<String>,
    /// The token's `email_verified` must be true (only with `AuthMode::Required`).
    pub require_verified_email: bool,
    /// `;` parameters in path segments are passed on (otherwise 400).
    pub matrix_params: bool,
    /// Largest request body in bytes (route's or `[http]`'s); None: no limit.
    pub max_body: Option<u64>,
    /// Whose tokens count: `SELF_ISSUER` and `[[issuer]]` names.
    pub issuers: Vec<String>,
    pub request_headers: crate::proxy::header_rules::HeaderRules,
    pub response_headers: crate::proxy::header_rules::HeaderRules,
}

/// What a route asks of the caller's access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Tokens are ignored; the request goes upstream anonymous.
    #[default]
    Public,
    /// No token or an expired one: anonymous. A forged or malformed one: 401.
    Optional,
    /// A valid token is required (401 otherwise), with one of `roles` if any (403 otherwise).
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    pub name: String,
    pub servers: Vec<SocketAddr>,
    pub balance: Balance,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub retries: usize,
    /// SNI when the pool speaks TLS.
    pub tls_sni: Option<String>,
    pub protocol: UpstreamProtocol,
    pub health_check: Option<HealthCheckSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    ConsistentHash(HashKey),
}

/// What a consistent-hash pool hashes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    /// The verified token's subject (anonymous requests hash on an empty key).
    User,
    Path,
    Header(http::HeaderName),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    /// None: a TCP connect check.
    pub http_path: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: usize,
    pub unhealthy_threshold: usize,
}
