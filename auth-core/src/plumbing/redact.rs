//! URLs in logs and errors without their secrets.

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; `redis://:secret@host` →
/// `redis://:***@host`. A URL without a password is returned as it is.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // the authority ends at the first '/', '?' or '#'; a password may hold '@'
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((creds, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
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
            ("not a url", "not a url"),
        ];
        for (raw, shown) in cases {
            assert_eq!(super::url(raw), shown, "{raw}");
            assert!(!super::url(raw).contains("s3cret"));
        }
    }
}
