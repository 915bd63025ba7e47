//! Email addresses: normalised once at the door so uniqueness and lookups agree.

use crate::error::Error;

/// Trims, folds compatibility forms (NFKC: full-width `ａｄｍｉｎ` is `admin`) and lower-cases,
/// then checks the shape: one `@`, a local part of 1–64 bytes, a domain with a dot and labels
/// of at most 63 bytes, 254 bytes at most, no whitespace or control characters. A Unicode local part is kept;
/// a Unicode domain is stored in its ASCII (xn--) form, so both spellings are one address.
pub fn normalize(raw: &str) -> Result<String, Error> {
    use unicode_normalization::UnicodeNormalization;
    let invalid = |message| Error::Invalid {
        field: "email",
        message,
    };
    let email = raw.trim().nfkc().collect::<String>().to_lowercase();
    if email.is_empty() {
        return Err(invalid("is required"));
    }
    if email.chars().count() > 254 {
        return Err(invalid("is longer than 254 characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain spaces or control characters"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(invalid("must look like name@example.com"));
    };
    // `bücher.example` and `xn--bcher-kva.example` are one mailbox's domain
    let domain =
        idna::domain_to_ascii(domain).map_err(|_| invalid("must look like name@example.com"))?;
    let domain = domain.as_str();
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    // limits in bytes, as SMTP counts them: an address the relay refuses is no address
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
        return Err(invalid("must look like name@example.com"));
    }
    // an address only, never mailbox syntax: `Ann <ann@example.com>` or `x>@y.z` would be
    // stored as one string and delivered to another (RFC 5322 atext, dots, Unicode letters;
    // domain labels of letters, digits and hyphens)
    let local_ok = local
        .chars()
        .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !local_ok || !labels_ok {
        return Err(invalid(
            "must be an address like name@example.com, without a name or brackets",
        ));
    }
    let email = format!("{local}@{domain}");
    if email.len() > 254 {
        return Err(invalid("is longer than 254 characters"));
    }
    Ok(email)
}

/// 32 hex digits of the address's SHA-256: Redis keys about an address without the address.
pub fn key_digest(email: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(email.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalises_case_and_spaces() {
        assert_eq!(normalize("  Ann@Example.COM ").unwrap(), "ann@example.com");
    }

    #[test]
    fn limits_are_the_ones_smtp_counts_in_bytes() {
        // 40 Cyrillic letters: 40 characters, 80 bytes
        assert!(normalize(&format!("{}@example.com", "я".repeat(40))).is_err());
        assert!(normalize(&format!("{}@example.com", "я".repeat(32))).is_ok());
        assert!(normalize(&format!("u@{}.example", "b".repeat(64))).is_err());
        assert!(normalize(&format!("u@{}.example", "b".repeat(63))).is_ok());
    }

    #[test]
    fn look_alike_compatibility_forms_are_the_plain_address() {
        for typed in [
            "ａｄｍｉｎ@example.com",
            "ＡＤＭＩＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ",
            "admin@ｅｘａｍｐｌｅ.com",
        ] {
            assert_eq!(normalize(typed).unwrap(), "admin@example.com", "{typed}");
        }
        assert_eq!(normalize("ﬁlm@example.com").unwrap(), "film@example.com");
        // another script's letters are another address, not folded
        assert_ne!(normalize("аdmin@example.com").unwrap(), "admin@example.com");
    }

    #[test]
    fn keeps_unicode_and_quotes() {
        // the local part as written, the domain in its ASCII (xn--) form
        assert_eq!(
            normalize("Пользователь@Пример.РФ").unwrap(),
            "пользователь@xn--e1afmkfd.xn--p1ai"
        );
        assert_eq!(
            normalize("pc@bücher.example").unwrap(),
            normalize("PC@xn--bcher-kva.example").unwrap()
        );
        assert_eq!(
            normalize("o'brien+x@example.com").unwrap(),
            "o'brien+x@example.com"
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "a b@example.com",
            "ann@example..com",
            "ann@.example.com",
            "ann\u{0}@example.com",
            "1<viewer@cinema.example>",
            "ceo<evil@example.com",
            "evil@example.com>",
            "\"quoted\"@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "ann@exa_mple.com",
            "ann@-example.com",
            ".ann@example.com",
            "ann.@example.com",
            "a..b@example.com",
            "ann@[127.0.0.1]",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(normalize(&long).is_err());
    }
}
