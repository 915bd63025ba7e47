//! Where a finished sign-in sends the browser: a path on this site, or a URL whose origin is on
//! the configured allowlist. Anything else is refused at `start`, before the provider is
//! involved, so the callback can never be turned into an open redirect.

use oauth2::url::Url;

pub const MAX_LEN: usize = 2048;

/// The accepted `return_to`, or why not.
pub fn check(value: Option<&str>, allow: &[String]) -> Result<String, &'static str> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok("/".into());
    };
    if v.len() > MAX_LEN {
        return Err("return_to is too long");
    }
    // browsers read `\` as `/` and drop tabs and newlines: "/\evil.test" and "/\t/evil.test"
    // are other hosts to them
    if v.chars().any(|c| c.is_control() || c == '\\') {
        return Err("return_to holds characters a URL must not");
    }
    if v.starts_with('/') {
        if v.starts_with("//") {
            return Err("return_to must be a path on this site or an allowed origin");
        }
        return Ok(v.to_string());
    }
    let url = Url::parse(v).map_err(|_| "return_to is neither a path nor a URL")?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("return_to must be a path on this site or an allowed origin");
    }
    let origin = url.origin().ascii_serialization();
    if allow.iter().any(|a| a.trim_end_matches('/') == origin) {
        Ok(url.to_string())
    } else {
        Err("return_to must be a path on this site or an allowed origin")
    }
}

/// An origin for the allowlist: `scheme://host[:port]`, nothing else.
pub fn valid_origin(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.origin().ascii_serialization() == s.trim_end_matches('/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Vec<String> {
        vec!["https://app.cinema.test".into()]
    }

    #[test]
    fn paths_and_allowed_origins_pass() {
        assert_eq!(check(None, &allow()).unwrap(), "/");
        assert_eq!(
            check(Some("/films/1?x=2#t"), &allow()).unwrap(),
            "/films/1?x=2#t"
        );
        assert_eq!(
            check(Some("https://app.cinema.test/tv"), &allow()).unwrap(),
            "https://app.cinema.test/tv"
        );
    }

    #[test]
    fn open_redirects_are_refused() {
        for bad in [
            "//evil.test/",
            "/\\evil.test",
            "\\\\evil.test",
            "/\t/evil.test",
            "https://evil.test/",
            "https://app.cinema.test.evil.test/",
            "https://app.cinema.test@evil.test/",
            "https://user@app.cinema.test/",
            "http://app.cinema.test/",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.test",
        ] {
            assert!(check(Some(bad), &allow()).is_err(), "{bad} passed");
        }
        assert!(check(Some(&format!("/{}", "a".repeat(MAX_LEN))), &allow()).is_err());
    }

    #[test]
    fn origins() {
        assert!(valid_origin("https://app.cinema.test"));
        assert!(valid_origin("http://127.0.0.1:3000"));
        assert!(!valid_origin("https://app.cinema.test/path"));
        assert!(!valid_origin("app.cinema.test"));
    }
}
