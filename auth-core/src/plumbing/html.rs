//! What the edge's and the core's HTML pages share: escaping, and the page language.

/// Escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether a page should be Russian: the first language of `Accept-Language` decides, and
/// anything but Russian gets English.
pub fn prefers_russian(accept_language: Option<&str>) -> bool {
    let first = accept_language
        .and_then(|v| v.split(',').next())
        .map(|t| t.trim().to_ascii_lowercase());
    matches!(first, Some(t) if t == "ru" || t.starts_with("ru-") || t.starts_with("ru;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_language() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(prefers_russian(Some("ru-RU,ru;q=0.9,en;q=0.5")));
        assert!(prefers_russian(Some("ru")));
        assert!(!prefers_russian(Some("en-US,ru;q=0.9")));
        assert!(!prefers_russian(Some("rus")));
        assert!(!prefers_russian(None));
    }
}
