//! The token endpoint's answer, as every provider we support sends it. RFC 6749 makes
//! `token_type` required, but Mail.ru leaves it out: here it defaults to `bearer` instead of
//! failing the sign-in. The fields some providers add are kept: `id_token` (OpenID Connect),
//! VK's `user_id` and `email`.

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, Serialize)]
pub struct ProviderTokens {
    access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "token_type")]
    token_type: BasicTokenType,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    /// The granted scopes are not read (the profile call shows what was shared).
    #[serde(skip)]
    scopes: Option<Vec<Scope>>,
    #[serde(default)]
    pub id_token: Option<String>,
    /// VK ID: the account id, a number or a string.
    #[serde(default)]
    pub user_id: Option<serde_json::Value>,
    /// VK: the email the user shared, when the `email` scope was granted.
    #[serde(default)]
    pub email: Option<String>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

/// `Bearer`, `bearer` or `BEARER` alike; anything else is kept as sent.
fn token_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BasicTokenType, D::Error> {
    let s = String::deserialize(d)?;
    Ok(match s.to_ascii_lowercase().as_str() {
        "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(s),
    })
}

impl TokenResponse for ProviderTokens {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_ru_answer_without_token_type_is_a_bearer_token() {
        let t: ProviderTokens =
            serde_json::from_str(r#"{"access_token":"abc","refresh_token":"r","expires_in":3600}"#)
                .unwrap();
        assert_eq!(t.access_token().secret(), "abc");
        assert_eq!(t.token_type(), &BasicTokenType::Bearer);
        assert_eq!(t.expires_in(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn vk_fields_are_kept_and_token_type_is_case_insensitive() {
        let t: ProviderTokens = serde_json::from_str(
            r#"{"access_token":"a","token_type":"Bearer","user_id":1234,"email":"v@vk.test","state":"s","id_token":"x.y.z"}"#,
        )
        .unwrap();
        assert_eq!(t.token_type(), &BasicTokenType::Bearer);
        assert_eq!(t.user_id, Some(serde_json::json!(1234)));
        assert_eq!(t.email.as_deref(), Some("v@vk.test"));
        assert_eq!(t.id_token.as_deref(), Some("x.y.z"));
    }

    #[test]
    fn an_answer_without_access_token_is_refused() {
        assert!(serde_json::from_str::<ProviderTokens>(r#"{"token_type":"bearer"}"#).is_err());
    }
}
