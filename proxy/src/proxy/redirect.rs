//! Plain-HTTP listeners that send every request to HTTPS.

use pingora::http::RequestHeader;

/// `https://host[:port]/path?query` for the request, or None without a usable Host.
pub fn https_location(req: &RequestHeader, https_port: u16) -> Option<String> {
    let host = req.uri.authority().map(|a| a.host()).or_else(|| {
        req.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })?;
    let host = host_without_port(host);
    if host.is_empty()
        || host
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b"-.[]:".contains(&b)))
    {
        return None;
    }
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    Some(if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    })
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, path: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
        r.insert_header("host", host).unwrap();
        r
    }

    #[test]
    fn builds_locations() {
        assert_eq!(
            https_location(&req("a.example:8080", "/x?y=1"), 8443).unwrap(),
            "https://a.example:8443/x?y=1"
        );
        assert_eq!(
            https_location(&req("a.example", "/"), 443).unwrap(),
            "https://a.example/"
        );
        assert_eq!(
            https_location(&req("[::1]:80", "/"), 443).unwrap(),
            "https://[::1]/"
        );
        assert!(https_location(&req("evil.example/@x", "/"), 443).is_none());
    }
}
