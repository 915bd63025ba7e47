//! Value types shared by the sections: rates, durations, CIDR lists, names, path prefixes,
//! host names, hash keys. Each parses one way and says what it expected.

use super::error::Problems;
use super::runtime::*;
use std::time::Duration;

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
pub(super) fn safe_name(name: &str) -> bool {
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

pub(super) fn valid_hostname(h: &str) -> bool {
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

pub(super) fn hash_key(k: &str) -> Result<HashKey, String> {
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

/// Whether `url` is an absolute `http://` or `https://` URL with a host; otherwise reports
/// the key. The one URL rule of the conf (JWKS, OTLP endpoint, provider endpoints).
pub(super) fn http_url(file: &str, key: &str, url: &str, p: &mut Problems) -> bool {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .parse::<http::Uri>()
            .is_ok_and(|u| u.authority().is_some());
    if !ok {
        p.add(file, key, format!("\"{url}\" is not an http(s) URL"));
    }
    ok
}

/// Whether `name` is a cookie name (an RFC 6265 token); otherwise reports the key. The one
/// cookie-name rule of the conf (token cookie, bot filter pass).
pub(super) fn cookie_name(file: &str, key: &str, name: &str, p: &mut Problems) -> bool {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let ok = !name.is_empty() && name.chars().all(token_char);
    if !ok {
        p.add(file, key, format!("\"{name}\" is not a cookie name"));
    }
    ok
}

/// A setting that is one of a few words. Each enum lists its words once, the default first;
/// `choice` parses them all the same way and names the choices when a word is wrong. (Not
/// serde enums: a wrong word there fails the whole file, and the other problems in it would
/// go unreported.)
pub(super) trait Choice: Copy + 'static {
    const WORDS: &'static [(&'static str, Self)];
}

/// The value `text` names; the default when absent or wrong (a wrong word is reported).
pub(super) fn choice<T: Choice>(
    file: &str,
    key: impl Into<String>,
    text: Option<&str>,
    p: &mut Problems,
) -> T {
    let default = T::WORDS[0].1;
    let Some(text) = text else { return default };
    if let Some(&(_, value)) = T::WORDS.iter().find(|(word, _)| *word == text) {
        return value;
    }
    let words: Vec<String> = T::WORDS.iter().map(|(w, _)| format!("\"{w}\"")).collect();
    p.add(
        file,
        key,
        format!("\"{text}\" is not one of {}", words.join(", ")),
    );
    default
}

impl Choice for UpstreamProtocol {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("h1", UpstreamProtocol::H1),
        ("h2", UpstreamProtocol::H2),
        ("h2c", UpstreamProtocol::H2c),
    ];
}

impl Choice for AuthMode {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("public", AuthMode::Public),
        ("optional", AuthMode::Optional),
        ("required", AuthMode::Required),
    ];
}

impl Choice for OnRedisDown {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("local", OnRedisDown::Local),
        ("deny", OnRedisDown::Deny),
        ("allow", OnRedisDown::Allow),
    ];
}

impl Choice for BotAction {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("allow", BotAction::Allow),
        ("challenge", BotAction::Challenge),
        ("deny", BotAction::Deny),
    ];
}

impl Choice for ForwardedHeader {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("x-forwarded-for", ForwardedHeader::XForwardedFor),
        ("forwarded", ForwardedHeader::Forwarded),
        ("x-real-ip", ForwardedHeader::XRealIp),
    ];
}

impl Choice for LogFormat {
    const WORDS: &'static [(&'static str, Self)] =
        &[("json", LogFormat::Json), ("human", LogFormat::Human)];
}

impl Choice for OtlpProtocol {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("grpc", OtlpProtocol::Grpc),
        ("http", OtlpProtocol::HttpProtobuf),
    ];
}

/// "1MiB", "512KiB", "2GiB" or a plain number of bytes; "off" is `None` (no limit).
pub(super) fn byte_size(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let err =
        || format!("\"{text}\" is not a size like \"1MiB\", \"64KiB\", \"1048576\" or \"off\"");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| err())?;
    // binary units only: "MB" means 10^6 to some readers and 2^20 to others
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(err()),
    };
    n.checked_mul(mult).map(Some).ok_or_else(err)
}

/// A `byte_size` under `key`, with its default; reported (and the default kept) when wrong.
pub(super) fn size_setting(
    file: &str,
    key: &str,
    value: Option<&str>,
    default: Option<u64>,
    p: &mut Problems,
) -> Option<u64> {
    match value.map(byte_size) {
        None => default,
        Some(Ok(size)) => size,
        Some(Err(e)) => {
            p.add(file, key, e);
            default
        }
    }
}

/// A route's `request_headers` / `response_headers`: names and values parsed once; names the
/// edge writes itself (`reserved`) refused.
pub(super) fn header_rules(
    file: &str,
    key: &str,
    rules: Option<&super::file::HeaderRulesFile>,
    reserved: &[&str],
    p: &mut Problems,
) -> crate::proxy::header_rules::HeaderRules {
    use http::{HeaderName, HeaderValue};
    let Some(rules) = rules else {
        return Default::default();
    };
    let name = |list: &str, text: &str, p: &mut Problems| -> Option<HeaderName> {
        let at = format!("{key}.{list}.{text}");
        let Ok(name) = HeaderName::from_bytes(text.as_bytes()) else {
            p.add(file, at, format!("\"{text}\" is not a header name"));
            return None;
        };
        // CGI, WSGI and PHP read `x_user_id` as X-User-Id: a lookalike is the same header
        let dashed = name.as_str().replace('_', "-");
        if reserved.contains(&dashed.as_str()) {
            p.add(
                file,
                at,
                format!("\"{name}\" is written by the edge itself and cannot be changed by a rule"),
            );
            return None;
        }
        Some(name)
    };
    let pairs = |list: &str, map: &std::collections::BTreeMap<String, String>, p: &mut Problems| {
        let mut out = Vec::new();
        for (n, v) in map {
            let Some(n) = name(list, n, p) else { continue };
            match HeaderValue::from_str(v) {
                Ok(v) => out.push((n, v)),
                Err(_) => p.add(
                    file,
                    format!("{key}.{list}.{n}"),
                    "the value holds a character a header cannot carry (control characters, line breaks)",
                ),
            }
        }
        out.into_boxed_slice()
    };
    let set = pairs("set", &rules.set, p);
    let add = pairs("add", &rules.add, p);
    let remove = rules
        .remove
        .iter()
        .filter_map(|n| name("remove", n, p))
        .collect();
    crate::proxy::header_rules::HeaderRules { remove, set, add }
}

/// `http://127.0.0.1…`, `http://[::1]…` or `http://localhost…`.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}
