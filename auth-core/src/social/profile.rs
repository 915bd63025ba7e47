//! Who the provider says the user is, from each provider's own answer shape. `subject` is the
//! stable account id at the provider, the key of `social_accounts`; the email is a hint for
//! the new account, never a key (see `docs/social-login.md`, "No silent merging").

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub subject: String,
    pub email: Option<String>,
    /// The provider vouches that the user controls the address.
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why an answer is not a profile (logged for the operator; the client sees a 502).
pub type Refusal = String;

/// `GET login.yandex.ru/info?format=json`: `{"id": "...", "default_email": "...", ...}`.
/// Yandex hands out only addresses the user has confirmed.
pub fn yandex(info: &Value) -> Result<Profile, Refusal> {
    Ok(Profile {
        subject: subject(info.get("id"))?,
        email: text(info.get("default_email")),
        email_verified: true,
        name: text(info.get("real_name")).or_else(|| text(info.get("display_name"))),
    })
}

/// `POST id.vk.com/oauth2/user_info`: `{"user": {"user_id": "...", "email": "...", ...}}`;
/// the token answer's `user_id` is the fallback. VK ID shares only confirmed addresses.
pub fn vk(info: &Value, token_user_id: Option<&Value>) -> Result<Profile, Refusal> {
    if let Some(e) = info.get("error") {
        return Err(format!("user_info error: {e}"));
    }
    let user = info.get("user").unwrap_or(&Value::Null);
    let name = match (text(user.get("first_name")), text(user.get("last_name"))) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    Ok(Profile {
        subject: subject(user.get("user_id").or(token_user_id))?,
        email: text(user.get("email")),
        email_verified: true,
        name,
    })
}

/// `GET oauth.mail.ru/userinfo?access_token=...`: `{"id": "...", "email": "...", ...}`, or
/// `{"error": ..., "error_description": ...}` with status 200.
pub fn mailru(info: &Value) -> Result<Profile, Refusal> {
    if let Some(e) = info.get("error") {
        return Err(format!("userinfo error: {e}"));
    }
    Ok(Profile {
        subject: subject(info.get("id"))?,
        // the address is the Mail.ru mailbox itself
        email: text(info.get("email")),
        email_verified: true,
        name: text(info.get("name")),
    })
}

/// OpenID Connect claims (a verified `id_token`, or userinfo): `sub`, and `email` trusted only
/// with `email_verified` (a boolean, or the string "true" some providers send).
pub fn oidc(claims: &Value) -> Result<Profile, Refusal> {
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Profile {
        subject: subject(claims.get("sub"))?,
        email: text(claims.get("email")),
        email_verified: verified,
        name: text(claims.get("name")),
    })
}

/// A non-empty id of at most 255 characters; numbers are taken as their decimal text.
fn subject(v: Option<&Value>) -> Result<String, Refusal> {
    let s = match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("no account id in the provider's answer".into()),
    };
    if s.is_empty() || s.len() > 255 {
        return Err("the provider's account id is empty or too long".into());
    }
    Ok(s)
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yandex_info() {
        let p = yandex(
            &json!({"id": "1000034426", "login": "ivan", "default_email": "ivan@yandex.ru",
            "real_name": "Ivan Ivanov", "client_id": "x"}),
        )
        .unwrap();
        assert_eq!(p.subject, "1000034426");
        assert_eq!(p.email.as_deref(), Some("ivan@yandex.ru"));
        assert!(p.email_verified);
        assert_eq!(p.name.as_deref(), Some("Ivan Ivanov"));
        assert!(yandex(&json!({"login": "ivan"})).is_err());
    }

    #[test]
    fn vk_user_info_with_numeric_or_token_id() {
        let p = vk(
            &json!({"user": {"user_id": "1234567890", "first_name": "Ivan", "last_name": "I", "email": "i@vk.test"}}),
            None,
        )
        .unwrap();
        assert_eq!(p.subject, "1234567890");
        assert_eq!(p.name.as_deref(), Some("Ivan I"));
        let p = vk(&json!({"user": {}}), Some(&json!(42))).unwrap();
        assert_eq!(p.subject, "42");
        assert_eq!(p.email, None);
        assert!(vk(&json!({"error": "invalid_token"}), Some(&json!(42))).is_err());
    }

    #[test]
    fn mailru_error_with_status_200_is_refused() {
        assert!(
            mailru(&json!({"error": "invalid_token", "error_description": "token not found"}))
                .is_err()
        );
        let p = mailru(&json!({"id": "123", "email": "u@mail.ru", "name": "U"})).unwrap();
        assert_eq!(p.subject, "123");
    }

    #[test]
    fn oidc_email_counts_only_when_verified() {
        let p = oidc(&json!({"sub": "s1", "email": "a@b.test"})).unwrap();
        assert!(!p.email_verified);
        let p = oidc(&json!({"sub": "s1", "email": "a@b.test", "email_verified": "true"})).unwrap();
        assert!(p.email_verified);
        assert!(oidc(&json!({"sub": ""})).is_err());
        assert!(oidc(&json!({"sub": "x".repeat(300)})).is_err());
    }
}
