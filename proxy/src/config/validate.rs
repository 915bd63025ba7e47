//! Turns the parsed files into a validated `Config`, collecting every problem with its file
//! and key.

use super::error::{ConfigErrors, Problems};
use super::file::*;
use super::runtime::*;
use auth_core::client_network::ClientNetworks;
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed file and the name it is reported under.
struct Parsed {
    name: String,
    conf: FileConf,
}

pub(super) fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let dir_name = dir.display().to_string();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect(),
        Err(e) => {
            problems.add(&dir_name, "", format!("cannot read the conf dir: {e}"));
            return Err(ConfigErrors(problems.0));
        }
    };
    paths.sort();
    if paths.is_empty() {
        problems.add(&dir_name, "", "no *.toml files in the conf dir");
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Some(conf) = parse_file(&name, &text, &mut problems) {
                    files.push(Parsed { name, conf });
                }
            }
            Err(e) => problems.add(&name, "", format!("cannot read: {e}")),
        }
    }
    // A file that did not parse may hold the missing sections: do not report them twice.
    let all_parsed = files.len() == paths.len();
    let config = validate(dir, &dir_name, files, all_parsed, &mut problems);
    if problems.0.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems.0))
    }
}

/// Parses one file, reporting syntax errors and unknown keys with their key path and line.
fn parse_file(name: &str, text: &str, problems: &mut Problems) -> Option<FileConf> {
    let de = match toml::de::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => {
            problems.add(name, "", syntax_message(text, &e));
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, FileConf>(de) {
        Ok(conf) => Some(conf),
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            problems.add(name, key, syntax_message(text, e.inner()));
            None
        }
    }
}

fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message.to_string(),
    }
}

fn validate(
    dir: &Path,
    dir_name: &str,
    files: Vec<Parsed>,
    all_parsed: bool,
    p: &mut Problems,
) -> Config {
    let mut server = None;
    let mut log = None;
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    let mut upstreams: BTreeMap<String, (String, UpstreamFile)> = BTreeMap::new();
    let mut redis = None;
    let mut rate_limit = None;
    let mut client_ip = None;
    let mut metrics = None;
    let mut auth = None;
    let mut bot_filter = None;
    let mut tracing = None;
    let mut social = None;
    let mut limits: BTreeMap<String, (String, LimitFile)> = BTreeMap::new();

    for Parsed { name, conf } in files {
        once(&mut redis, &name, "redis", conf.redis, p);
        once(&mut rate_limit, &name, "rate_limit", conf.rate_limit, p);
        once(&mut client_ip, &name, "client_ip", conf.client_ip, p);
        once(&mut metrics, &name, "metrics", conf.metrics, p);
        once(&mut auth, &name, "auth", conf.auth, p);
        once(&mut bot_filter, &name, "bot_filter", conf.bot_filter, p);
        once(&mut tracing, &name, "tracing", conf.tracing, p);
        once(&mut social, &name, "social", conf.social, p);
        for (limit_name, l) in conf.limit {
            if let Some((first, _)) = limits.get(&limit_name) {
                p.add(
                    &name,
                    format!("limit.{limit_name}"),
                    format!("limit \"{limit_name}\" is already defined in {first}"),
                );
            } else {
                limits.insert(limit_name, (name.clone(), l));
            }
        }
        once(&mut server, &name, "server", conf.server, p);
        once(&mut log, &name, "log", conf.log, p);
        for (i, l) in conf.listener.into_iter().enumerate() {
            listeners.push((name.clone(), i, l));
        }
        for (i, r) in conf.route.into_iter().enumerate() {
            routes.push((name.clone(), i, r));
        }
        for (up_name, u) in conf.upstream {
            if let Some((first, _)) = upstreams.get(&up_name) {
                p.add(
                    &name,
                    format!("upstream.{up_name}"),
                    format!("upstream \"{up_name}\" is already defined in {first}"),
                );
            } else {
                upstreams.insert(up_name, (name.clone(), u));
            }
        }
    }

    let server = server_settings(server, p);
    let log = log_settings(log, p);
    if listeners.is_empty() && all_parsed {
        p.add(dir_name, "listener", "no [[listener]] is configured");
    }
    let listeners = listener_specs(dir, listeners, p);
    let upstream_specs: Vec<UpstreamSpec> = upstreams
        .iter()
        .filter_map(|(n, (file, u))| upstream_spec(file, n, u, p))
        .collect();
    let verifies_tokens = auth.is_some();
    let routes = route_specs(routes, &upstreams, &limits, all_parsed, verifies_tokens, p);
    let redis = redis.and_then(|(file, r)| redis_spec(&file, r, p));
    let rate_limit = rate_limit_settings(rate_limit, p);
    let limits: Vec<LimitSpec> = limits
        .iter()
        .filter_map(|(n, (file, l))| limit_spec(file, n, l, p))
        .collect();
    let bot_filter =
        bot_filter.and_then(|(file, b)| super::bot_filter::settings(&file, b, &limits, p));
    let client_ip = client_ip.map_or_else(ClientIpSpec::default, |(file, c)| {
        client_ip_spec(&file, &c, p)
    });
    let metrics_allow = match metrics {
        Some((file, m)) => cidrs(&file, "metrics.allow", &m.allow, p),
        // loopback only by default
        None => ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
    };
    let (mut auth, mut identity) = match auth {
        Some((file, a)) => super::auth::settings(&file, a, redis.as_ref(), p),
        None => (None, None),
    };
    if let Some(core) = auth.as_mut() {
        core.client_networks = client_ip.networks;
    }
    if let Some((file, s)) = social {
        let cookie = identity.as_ref().and_then(|i| i.cookie.as_deref());
        let settings = super::social::settings(&file, s, cookie, p);
        // behind TLS the sign-in sets `__Host-<token_cookie>`: read the token from that name,
        // never from the bare one another subdomain could set
        if let (Some(s), Some(cookie)) =
            (&settings, identity.as_mut().and_then(|i| i.cookie.as_mut()))
        {
            *cookie = s.access_cookie();
        }
        match auth.as_mut() {
            Some(core) if redis.is_some() => core.social = settings,
            // a bad [auth] was reported already; only say what is missing
            _ if identity.is_none() && p.0.iter().any(|e| e.key.starts_with("auth")) => {}
            _ => p.add(
                &file,
                "social",
                "needs the embedded auth core ([auth] with database_url) and [redis] (sign-ins in progress live there)",
            ),
        }
    }
    Config {
        dir: dir.to_path_buf(),
        server,
        log,
        listeners,
        routes,
        upstreams: upstream_specs,
        redis,
        rate_limit,
        limits,
        client_ip,
        metrics_allow,
        auth,
        identity,
        bot_filter,
        tracing: tracing.and_then(|(file, t)| tracing_spec(&file, t, p)),
    }
}

/// Keeps the first file's section and reports any other file that sets it again.
fn once<T>(
    slot: &mut Option<(String, T)>,
    file: &str,
    section: &str,
    value: Option<T>,
    p: &mut Problems,
) {
    let Some(value) = value else { return };
    match slot {
        Some((first, _)) => p.add(
            file,
            section,
            format!("[{section}] is already set in {first}"),
        ),
        None => *slot = Some((file.to_string(), value)),
    }
}

// === sections ===

fn server_settings(server: Option<(String, ServerFile)>, p: &mut Problems) -> ServerSettings {
    let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some((file, s)) = server else {
        return ServerSettings {
            threads: default_threads,
            work_stealing: false,
            grace_period: Duration::from_secs(1),
            graceful_shutdown_timeout: Duration::from_secs(5),
            pid_file: "/tmp/edge.pid".into(),
            upgrade_sock: "/tmp/edge_upgrade.sock".into(),
            upstream_keepalive_pool_size: 128,
            watch: true,
            watch_interval: Duration::from_secs(1),
        };
    };
    let threads = s.threads.unwrap_or(default_threads);
    if !(1..=1024).contains(&threads) {
        p.add(&file, "server.threads", "must be between 1 and 1024");
    }
    let f = file.as_str();
    ServerSettings {
        threads,
        work_stealing: s.work_stealing.unwrap_or(false),
        grace_period: duration(
            f,
            "server.grace_period",
            s.grace_period.as_deref(),
            "1s",
            true,
            p,
        ),
        graceful_shutdown_timeout: duration(
            f,
            "server.graceful_shutdown_timeout",
            s.graceful_shutdown_timeout.as_deref(),
            "5s",
            true,
            p,
        ),
        pid_file: s.pid_file.unwrap_or_else(|| "/tmp/edge.pid".into()),
        upgrade_sock: s
            .upgrade_sock
            .unwrap_or_else(|| "/tmp/edge_upgrade.sock".into()),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size.unwrap_or(128),
        watch: s.watch.unwrap_or(true),
        watch_interval: duration(
            f,
            "server.watch_interval",
            s.watch_interval.as_deref(),
            "1s",
            false,
            p,
        ),
    }
}

fn tracing_spec(file: &str, t: super::file::TracingFile, p: &mut Problems) -> Option<TracingSpec> {
    let before = p.0.len();
    let protocol = match t.protocol.as_deref() {
        None | Some("grpc") => OtlpProtocol::Grpc,
        Some("http") => OtlpProtocol::HttpProtobuf,
        Some(other) => {
            p.add(
                file,
                "tracing.protocol",
                format!("\"{other}\" is not one of \"grpc\", \"http\""),
            );
            OtlpProtocol::Grpc
        }
    };
    let endpoint_ok = (t.endpoint.starts_with("http://") || t.endpoint.starts_with("https://"))
        && t.endpoint
            .parse::<http::Uri>()
            .is_ok_and(|u| u.authority().is_some());
    if !endpoint_ok {
        p.add(
            file,
            "tracing.endpoint",
            format!("\"{}\" is not an http(s) URL", t.endpoint),
        );
    }
    let sampling = t.sampling.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling) {
        p.add(file, "tracing.sampling", "must be between 0.0 and 1.0");
    }
    let max_queue = t.max_queue.unwrap_or(2048);
    let max_batch = t.max_batch.unwrap_or(512);
    if max_batch == 0 || max_batch > max_queue {
        p.add(
            file,
            "tracing.max_batch",
            format!("must be between 1 and max_queue ({max_queue})"),
        );
    }
    let spec = TracingSpec {
        endpoint: t.endpoint,
        protocol,
        service_name: t.service_name.unwrap_or_else(|| "edge".into()),
        sampling,
        trust_incoming: cidrs(file, "tracing.trust_incoming", &t.trust_incoming, p),
        max_queue,
        max_batch,
        batch_delay: duration(
            file,
            "tracing.batch_delay",
            t.batch_delay.as_deref(),
            "1s",
            false,
            p,
        ),
        export_timeout: duration(
            file,
            "tracing.export_timeout",
            t.export_timeout.as_deref(),
            "5s",
            false,
            p,
        ),
    };
    (p.0.len() == before).then_some(spec)
}

fn log_settings(log: Option<(String, LogFile)>, p: &mut Problems) -> LogSettings {
    let Some((file, l)) = log else {
        return LogSettings {
            format: LogFormat::Json,
            level: "info".into(),
            access_log: true,
        };
    };
    let format = match l.format.as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("human") => LogFormat::Human,
        Some(other) => {
            p.add(
                &file,
                "log.format",
                format!("\"{other}\" is not one of \"json\", \"human\""),
            );
            LogFormat::Json
        }
    };
    let level = l.level.unwrap_or_else(|| "info".into());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        p.add(&file, "log.level", format!("not a valid filter: {e}"));
    }
    LogSettings {
        format,
        level,
        access_log: l.access_log.unwrap_or(true),
    }
}

fn listener_specs(
    dir: &Path,
    listeners: Vec<(String, usize, ListenerFile)>,
    p: &mut Problems,
) -> Vec<ListenerSpec> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (file, i, l) in listeners {
        let key = format!("listener[{i}]");
        let address = match l.address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.add(
                    &file,
                    format!("{key}.address"),
                    format!("\"{}\" is not an ip:port address", l.address),
                );
                continue;
            }
        };
        if !seen.insert(address) {
            p.add(
                &file,
                format!("{key}.address"),
                format!("{address} is used by another listener"),
            );
        }
        let tls = if l.certificate.is_empty() {
            if l.http2.is_some() {
                p.add(
                    &file,
                    format!("{key}.http2"),
                    "HTTP/2 is offered only on TLS listeners (add a [[listener.certificate]])",
                );
            }
            None
        } else {
            if l.redirect_https_port.is_some() {
                p.add(
                    &file,
                    format!("{key}.redirect_https_port"),
                    "only a plain listener can redirect to HTTPS",
                );
            }
            let certificates = l
                .certificate
                .iter()
                .enumerate()
                .filter_map(|(j, c)| {
                    certificate_spec(dir, &file, &format!("{key}.certificate[{j}]"), c, p)
                })
                .collect();
            Some(TlsSpec {
                http2: l.http2.unwrap_or(true),
                certificates,
            })
        };
        out.push(ListenerSpec {
            address,
            tls,
            redirect_https_port: l.redirect_https_port,
        });
    }
    out
}

fn certificate_spec(
    dir: &Path,
    file: &str,
    key: &str,
    c: &CertificateFile,
    p: &mut Problems,
) -> Option<CertificateSpec> {
    let cert = dir.join(&c.cert);
    let key_path = dir.join(&c.key);
    match crate::server::tls::load_pair(&cert, &key_path) {
        Ok(_) => {}
        Err(e) => {
            p.add(file, key, e);
            return None;
        }
    }
    let mut hosts = Vec::with_capacity(c.hosts.len());
    for (k, h) in c.hosts.iter().enumerate() {
        let h = h.to_ascii_lowercase();
        let bare = h.strip_prefix("*.").unwrap_or(&h);
        if !valid_hostname(bare) {
            p.add(
                file,
                format!("{key}.hosts[{k}]"),
                format!("\"{h}\" is not a host name"),
            );
        }
        hosts.push(h);
    }
    Some(CertificateSpec {
        cert,
        key: key_path,
        hosts,
    })
}

fn route_specs(
    routes: Vec<(String, usize, RouteFile)>,
    upstreams: &BTreeMap<String, (String, UpstreamFile)>,
    limits: &BTreeMap<String, (String, LimitFile)>,
    all_parsed: bool,
    verifies_tokens: bool,
    p: &mut Problems,
) -> Vec<RouteSpec> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut matches: BTreeMap<(Option<String>, String), String> = BTreeMap::new();
    let mut out = Vec::new();
    for (file, i, r) in routes {
        let key = format!("route[{i}]");
        if r.name.is_empty() {
            p.add(&file, format!("{key}.name"), "must not be empty");
        } else if !safe_name(&r.name) {
            // names go into metric labels, log fields and limiter keys as they are
            p.add(
                &file,
                format!("{key}.name"),
                format!(
                    "\"{}\" may only hold letters, digits, '-', '_' and '.' (at most 64)",
                    r.name
                ),
            );
        } else if let Some(first) = names.insert(r.name.clone(), file.clone()) {
            p.add(
                &file,
                format!("{key}.name"),
                format!("route \"{}\" is already defined in {first}", r.name),
            );
        }
        let host = r.host.as_ref().map(|h| h.to_ascii_lowercase());
        if let Some(h) = &host {
            if !valid_hostname(h) {
                p.add(
                    &file,
                    format!("{key}.host"),
                    format!("\"{h}\" is not a host name (no port, no scheme)"),
                );
            }
        }
        let path = match normalize_prefix(&r.path) {
            Ok(path) => path,
            Err(why) => {
                p.add(&file, format!("{key}.path"), why);
                continue;
            }
        };
        if let Some(first) = matches.insert((host.clone(), path.clone()), r.name.clone()) {
            p.add(
                &file,
                format!("{key}.path"),
                format!("route \"{first}\" already matches this host and path"),
            );
        }
        // An upstream may live in a file that failed to parse; only complain when all parsed.
        if !upstreams.contains_key(&r.upstream) && all_parsed {
            let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
            p.add(
                &file,
                format!("{key}.upstream"),
                format!(
                    "unknown upstream \"{}\" (defined: {})",
                    r.upstream,
                    known.join(", ")
                ),
            );
        }
        for (j, l) in r.limits.iter().enumerate() {
            if !limits.contains_key(l) && all_parsed {
                let known: Vec<&str> = limits.keys().map(String::as_str).collect();
                p.add(
                    &file,
                    format!("{key}.limits[{j}]"),
                    format!("unknown limit \"{l}\" (defined: {})", known.join(", ")),
                );
            }
        }
        let auth = match r.auth.as_deref() {
            None | Some("public") => AuthMode::Public,
            Some("optional") => AuthMode::Optional,
            Some("required") => AuthMode::Required,
            Some(other) => {
                p.add(
                    &file,
                    format!("{key}.auth"),
                    format!("\"{other}\" is not one of \"public\", \"optional\", \"required\""),
                );
                AuthMode::Public
            }
        };
        if !r.roles.is_empty() && auth != AuthMode::Required {
            p.add(
                &file,
                format!("{key}.roles"),
                "roles need auth = \"required\"",
            );
        }
        if r.roles.iter().any(|role| role.trim().is_empty()) {
            p.add(
                &file,
                format!("{key}.roles"),
                "a role name must not be empty",
            );
        }
        if auth != AuthMode::Public && !verifies_tokens && all_parsed {
            p.add(
                &file,
                format!("{key}.auth"),
                "verifying tokens needs the [auth] section (the keys of the auth core)",
            );
        }
        out.push(RouteSpec {
            name: r.name,
            host,
            path,
            upstream: r.upstream,
            strip_prefix: r.strip_prefix.unwrap_or(false),
            limits: r.limits,
            auth,
            roles: r.roles,
            matrix_params: r.matrix_params.unwrap_or(false),
        });
    }
    out
}

fn client_ip_spec(file: &str, c: &ClientIpFile, p: &mut Problems) -> ClientIpSpec {
    let header = match c.header.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Some("forwarded") => ForwardedHeader::Forwarded,
        Some("x-real-ip") => ForwardedHeader::XRealIp,
        Some(other) => {
            p.add(
                file,
                "client_ip.header",
                format!(
                    "\"{other}\" is not one of \"x-forwarded-for\", \"forwarded\", \"x-real-ip\""
                ),
            );
            ForwardedHeader::XForwardedFor
        }
    };
    let defaults = ClientNetworks::default();
    let mut prefix =
        |key: &str, value: Option<u8>, default: u8, range: std::ops::RangeInclusive<u8>| {
            let v = value.unwrap_or(default);
            if !range.contains(&v) {
                p.add(
                    file,
                    format!("client_ip.{key}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                );
            }
            v
        };
    let networks = ClientNetworks {
        // wider than /16 or /32 would put unrelated clients in one bucket
        ipv4_prefix: prefix("ipv4_prefix", c.ipv4_prefix, defaults.ipv4_prefix, 16..=32),
        ipv6_prefix: prefix("ipv6_prefix", c.ipv6_prefix, defaults.ipv6_prefix, 32..=128),
    };
    ClientIpSpec {
        trusted_proxies: cidrs(file, "client_ip.trusted_proxies", &c.trusted_proxies, p),
        header,
        networks,
    }
}

fn upstream_spec(
    file: &str,
    name: &str,
    u: &UpstreamFile,
    p: &mut Problems,
) -> Option<UpstreamSpec> {
    let key = format!("upstream.{name}");
    let before = p.0.len();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        p.add(
            file,
            &key,
            "upstream names use letters, digits, '-' and '_'",
        );
    }
    if u.servers.is_empty() {
        p.add(file, format!("{key}.servers"), "needs at least one server");
    }
    let mut servers = Vec::with_capacity(u.servers.len());
    for (i, s) in u.servers.iter().enumerate() {
        match resolve(s) {
            Ok(a) if servers.contains(&a) => p.add(
                file,
                format!("{key}.servers[{i}]"),
                format!("{s} is listed twice"),
            ),
            Ok(a) => servers.push(a),
            Err(why) => p.add(file, format!("{key}.servers[{i}]"), why),
        }
    }
    let balance = match (u.balance.as_deref(), u.hash_key.as_deref()) {
        (None | Some("round_robin"), None) => Balance::RoundRobin,
        (None | Some("round_robin"), Some(_)) => {
            p.add(
                file,
                format!("{key}.hash_key"),
                "only used with balance = \"consistent_hash\"",
            );
            Balance::RoundRobin
        }
        (Some("consistent_hash"), Some(k)) => match hash_key(k) {
            Ok(k) => Balance::ConsistentHash(k),
            Err(why) => {
                p.add(file, format!("{key}.hash_key"), why);
                Balance::RoundRobin
            }
        },
        (Some("consistent_hash"), None) => {
            p.add(file, format!("{key}.hash_key"), "consistent_hash needs a hash_key: \"ip\", \"path\", \"header:<name>\" or \"cookie:<name>\"");
            Balance::RoundRobin
        }
        (Some(other), _) => {
            p.add(
                file,
                format!("{key}.balance"),
                format!("\"{other}\" is not one of \"round_robin\", \"consistent_hash\""),
            );
            Balance::RoundRobin
        }
    };
    let d = |field: &str, value: &Option<String>, default: &str, p: &mut Problems| {
        duration(
            file,
            &format!("{key}.{field}"),
            value.as_deref(),
            default,
            false,
            p,
        )
    };
    let connect_timeout = d("connect_timeout", &u.connect_timeout, "1s", p);
    let read_timeout = d("read_timeout", &u.read_timeout, "30s", p);
    let write_timeout = d("write_timeout", &u.write_timeout, "30s", p);
    let idle_timeout = d("idle_timeout", &u.idle_timeout, "60s", p);
    let tls_sni = match (u.tls.unwrap_or(false), &u.sni) {
        (true, Some(sni)) => Some(sni.clone()),
        (true, None) => Some(
            u.servers
                .first()
                .and_then(|s| s.rsplit_once(':'))
                .map_or(String::new(), |(h, _)| h.to_string()),
        ),
        (false, Some(_)) => {
            p.add(file, format!("{key}.sni"), "only used with tls = true");
            None
        }
        (false, None) => None,
    };
    let health_check = u.health_check.as_ref().map(|h| {
        let hk = format!("{key}.health_check");
        if let Some(path) = &h.path {
            if !path.starts_with('/') {
                p.add(file, format!("{hk}.path"), "must start with '/'");
            }
        }
        let threshold = |field: &str, v: Option<usize>, p: &mut Problems| {
            let v = v.unwrap_or(1);
            if v == 0 {
                p.add(file, format!("{hk}.{field}"), "must be at least 1");
            }
            v
        };
        HealthCheckSpec {
            http_path: h.path.clone(),
            interval: duration(
                file,
                &format!("{hk}.interval"),
                h.interval.as_deref(),
                "5s",
                false,
                p,
            ),
            timeout: duration(
                file,
                &format!("{hk}.timeout"),
                h.timeout.as_deref(),
                "1s",
                false,
                p,
            ),
            healthy_threshold: threshold("healthy_threshold", h.healthy_threshold, p),
            unhealthy_threshold: threshold("unhealthy_threshold", h.unhealthy_threshold, p),
        }
    });
    if p.0.len() > before {
        return None;
    }
    Some(UpstreamSpec {
        name: name.to_string(),
        servers,
        balance,
        connect_timeout,
        read_timeout,
        write_timeout,
        idle_timeout,
        retries: u.retries.unwrap_or(1),
        tls_sni,
        health_check,
    })
}

fn redis_spec(file: &str, r: RedisFile, p: &mut Problems) -> Option<RedisSpec> {
    if r.url.starts_with("rediss://") {
        // the redis client is built without TLS: accepting the URL would leave every limit
        // on local buckets without a word
        p.add(
            file,
            "redis.url",
            "rediss:// (TLS) is not supported yet: use redis:// on a private network or a local TLS tunnel",
        );
        return None;
    }
    if !(r.url.starts_with("redis://") || r.url.starts_with("unix://")) {
        p.add(
            file,
            "redis.url",
            format!("\"{}\" is not a redis:// URL", r.url),
        );
        return None;
    }
    let timeout = duration(
        file,
        "redis.timeout",
        r.timeout.as_deref(),
        "10ms",
        false,
        p,
    );
    Some(RedisSpec {
        url: r.url,
        timeout,
    })
}

fn rate_limit_settings(r: Option<(String, RateLimitFile)>, p: &mut Problems) -> RateLimitSettings {
    let d = RateLimitSettings::default();
    let Some((file, r)) = r else { return d };
    let replicas = r.replicas.unwrap_or(d.replicas);
    if replicas == 0 {
        p.add(&file, "rate_limit.replicas", "must be at least 1");
    }
    let breaker_failures = r.breaker_failures.unwrap_or(d.breaker_failures);
    if breaker_failures == 0 {
        p.add(&file, "rate_limit.breaker_failures", "must be at least 1");
    }
    RateLimitSettings {
        replicas: replicas.max(1),
        headers_on_success: r.headers_on_success.unwrap_or(d.headers_on_success),
        breaker_failures: breaker_failures.max(1),
        breaker_cooldown: duration(
            &file,
            "rate_limit.breaker_cooldown",
            r.breaker_cooldown.as_deref(),
            "1s",
            false,
            p,
        ),
        local_capacity: r.local_capacity.unwrap_or(d.local_capacity).max(1),
    }
}

fn limit_spec(file: &str, name: &str, l: &LimitFile, p: &mut Problems) -> Option<LimitSpec> {
    let key = format!("limit.{name}");
    let before = p.0.len();
    let limit_key = match l.key.as_str() {
        "ip" => LimitKey::Ip,
        "user" => LimitKey::User,
        "route" => LimitKey::Route,
        other => {
            match other
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.as_bytes()))
            {
                Some(Ok(h)) => LimitKey::Header(h),
                _ => {
                    p.add(file, format!("{key}.key"), format!("\"{other}\" is not one of \"ip\", \"user\", \"route\", \"header:<name>\""));
                    LimitKey::Ip
                }
            }
        }
    };
    let rate = match parse_rate(&l.rate) {
        Ok(r) => r,
        Err(why) => {
            p.add(file, format!("{key}.rate"), why);
            1.0
        }
    };
    let burst = l.burst.unwrap_or_else(|| rate.ceil() as u64);
    if burst == 0 {
        p.add(file, format!("{key}.burst"), "must be at least 1");
    }
    let cost = l.cost.unwrap_or(1);
    if cost == 0 || cost > burst.max(1) {
        p.add(
            file,
            format!("{key}.cost"),
            format!("must be between 1 and the burst ({burst})"),
        );
    }
    let on_redis_down = match l.on_redis_down.as_deref() {
        None | Some("local") => OnRedisDown::Local,
        Some("deny") => OnRedisDown::Deny,
        Some("allow") => OnRedisDown::Allow,
        Some(other) => {
            p.add(
                file,
                format!("{key}.on_redis_down"),
                format!("\"{other}\" is not one of \"local\", \"deny\", \"allow\""),
            );
            OnRedisDown::Local
        }
    };
    let lease = l.lease.unwrap_or(1);
    if lease < cost || lease > burst.max(1) {
        p.add(
            file,
            format!("{key}.lease"),
            format!("must be between the cost ({cost}) and the burst ({burst})"),
        );
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        || name.is_empty()
    {
        p.add(file, &key, "limit names use letters, digits, '-' and '_'");
    }
    (p.0.len() == before).then(|| LimitSpec {
        name: name.to_string(),
        key: limit_key,
        rate,
        burst,
        cost,
        on_redis_down,
        lease,
    })
}

/// "50/s", "600/m", "10000/h" → requests per second.
pub(super) fn parse_rate(text: &str) -> Result<f64, String> {
    let err = || format!("\"{text}\" is not a rate like \"50/s\", \"600/m\" or \"10000/h\"");
    let (n, unit) = text.split_once('/').ok_or_else(err)?;
    let n: f64 = n.trim().parse().map_err(|_| err())?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    if !(n > 0.0 && n.is_finite()) {
        return Err(format!("\"{text}\": the rate must be above zero"));
    }
    let rate = n / per;
    if rate > 1_000_000.0 {
        return Err(format!("\"{text}\": above one million per second"));
    }
    Ok(rate)
}

/// IP addresses or CIDRs, each problem reported as `key[i]`.
pub(super) fn cidrs(file: &str, key: &str, list: &[String], p: &mut Problems) -> Vec<ipnet::IpNet> {
    list.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let parsed = t
                .parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => Some(net),
                Err(_) => {
                    p.add(
                        file,
                        format!("{key}[{i}]"),
                        format!("\"{t}\" is not an IP address or CIDR"),
                    );
                    None
                }
            }
        })
        .collect()
}

// === values ===

pub(super) fn duration(
    file: &str,
    key: &str,
    value: Option<&str>,
    default: &str,
    zero_ok: bool,
    p: &mut Problems,
) -> Duration {
    let text = value.unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() && !zero_ok => {
            p.add(file, key, "must be longer than zero");
            d
        }
        Ok(d) => d,
        Err(e) => {
            p.add(
                file,
                key,
                format!("\"{text}\" is not a duration like \"500ms\" or \"5s\": {e}"),
            );
            Duration::ZERO
        }
    }
}

/// "/api/v1/" and "/api/v1" are the same prefix; keep one form so matching is a plain compare.
/// Letters, digits, `-`, `_`, `.`; at most 64.
fn safe_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn normalize_prefix(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("\"{path}\" must start with '/'"));
    }
    if path
        .bytes()
        .any(|b| b <= b' ' || b == b'?' || b == b'#' || b >= 0x7f)
    {
        return Err(format!(
            "\"{path}\" must not contain spaces, control characters, '?' or '#'"
        ));
    }
    if path.contains("//") || path.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!(
            "\"{path}\" must not contain empty, '.' or '..' segments"
        ));
    }
    // requests are matched in canonical form: a prefix in another form would never match
    match crate::proxy::canonical_path::canonicalize(path) {
        Ok(c) if c.path == path => {}
        Ok(c) => {
            return Err(format!(
                "\"{path}\" is not in canonical form: write \"{}\" (README, Routing)",
                c.path
            ))
        }
        Err(e) => return Err(format!("\"{path}\": {e}")),
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn hash_key(k: &str) -> Result<HashKey, String> {
    match k {
        "ip" => Ok(HashKey::ClientIp),
        "user" => Ok(HashKey::User),
        "path" => Ok(HashKey::Path),
        _ => {
            if let Some(h) = k.strip_prefix("header:") {
                http::HeaderName::from_bytes(h.as_bytes())
                    .map(HashKey::Header)
                    .map_err(|_| format!("\"{h}\" is not a header name"))
            } else if let Some(c) = k.strip_prefix("cookie:").filter(|c| !c.is_empty()) {
                Ok(HashKey::Cookie(c.to_string()))
            } else {
                Err(format!(
                    "\"{k}\" is not one of \"ip\", \"user\", \"path\", \"header:<name>\", \"cookie:<name>\""
                ))
            }
        }
    }
}

/// Upstream servers may be named ("movies:8081" in compose); names are resolved when the
/// config is loaded, so a reload picks up DNS changes.
fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if s.rsplit_once(':')
        .is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!("\"{s}\" is not host:port"));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("\"{s}\" resolves to no address")),
        Err(e) => Err(format!("cannot resolve \"{s}\": {e}")),
    }
}
