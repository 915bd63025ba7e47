//! URLs in logs and errors without their secrets.

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; `redis://:secret@host` →
/// `redis://:***@host`. A URL without a password is returned as it is.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Credentials end at the last '@'. A password may hold '@', '/', '?' or '#' (DSNs are
    // written by hand), so anything before the last '@' with a ':' in it is masked: a URL
    // with '@' in its query may be masked too much, a password never shown.
    let Some((creds, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "postgres://edge:s3cret@db:5432/auth",
                "postgres://edge:***@db:5432/auth",
            ),
            (
                "redis://:s3cret@10.0.0.1:6379/0",
                "redis://:***@10.0.0.1:6379/0",
            ),
            ("redis://:p@ss@h:1/0", "redis://:***@h:1/0"),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("postgres://edge@db/auth", "postgres://edge@db/auth"),
            (
                "postgres://app:s3cr%40t@db:5432/edge",
                "postgres://app:***@db:5432/edge",
            ),
            ("http://h/p?next=a@b", "http://h/p?next=a@b"),
            ("postgres://edge:pa/ss@db/x", "postgres://edge:***@db/x"),
            ("postgres://edge:pa?s#s@db/x", "postgres://edge:***@db/x"),
            ("not a url", "not a url"),
        ];
        for (raw, shown) in cases {
            assert_eq!(super::url(raw), shown, "{raw}");
            for secret in ["s3cret", "pa/ss", "pa?s", "p@ss"] {
                assert!(!super::url(raw).contains(secret), "{raw}");
            }
        }
    }
}
