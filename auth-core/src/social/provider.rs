//! One configured provider: the authorization URL of a new sign-in, the code exchange (the
//! `oauth2` crate, over our bounded client), and the user's profile in the provider's own
//! shape. Discovery documents and JWKS are cached; every failure is a `ProviderError` that the
//! HTTP layer answers with 502.

use super::endpoints::{self, Discovered, Endpoints};
use super::id_token::{self, IdTokenError};
use super::outbound::{Outbound, OutboundError};
use super::profile::{self, Profile};
use super::settings::{ProviderKind, ProviderSettings};
use super::token_response::ProviderTokens;
use jsonwebtoken::jwk::JwkSet;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, TokenResponse,
    TokenUrl,
};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a discovery document or a JWKS is trusted before it is fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// An unknown `kid` fetches the JWKS again, at most this often (a forged kid costs nothing).
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(10);

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

impl From<OutboundError> for ProviderError {
    fn from(e: OutboundError) -> Self {
        ProviderError(e.to_string())
    }
}

/// What the provider's redirect back to us carried, besides `code` and `state`.
pub struct CallbackExtras<'a> {
    /// VK ID: required again on the code exchange.
    pub device_id: Option<&'a str>,
    pub state: &'a str,
}

pub struct Provider {
    pub settings: ProviderSettings,
    configured: Endpoints,
    discovered: Mutex<Option<(Instant, Endpoints)>>,
    jwks: Mutex<Option<(Instant, JwkSet)>>,
}

impl Provider {
    pub fn new(settings: ProviderSettings) -> Provider {
        let configured = endpoints::configured(settings.kind, &settings.endpoints);
        Provider {
            settings,
            configured,
            discovered: Mutex::new(None),
            jwks: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn kind(&self) -> ProviderKind {
        self.settings.kind
    }

    /// The endpoints in force. `start` passes `need_all = false`: Google (built-in endpoints,
    /// built-in discovery) redirects without any outbound call, discovery waits for the
    /// callback; a discovery URL set in the conf is followed from the start.
    pub async fn endpoints(
        &self,
        out: &Outbound,
        need_all: bool,
    ) -> Result<Endpoints, ProviderError> {
        let Some(url) = &self.configured.discovery else {
            return Ok(self.configured.clone());
        };
        let conf_discovery = self.settings.endpoints.discovery_url.is_some();
        if !need_all && self.configured.authorize.is_some() && !conf_discovery {
            return Ok(self.configured.clone());
        }
        let mut cached = self.discovered.lock().await;
        if let Some((at, e)) = cached.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Ok(e.clone());
            }
        }
        match fetch_json::<Discovered>(out, out.get(url)).await {
            Ok(d) => {
                let e = endpoints::merge(self.kind(), &self.settings.endpoints, &d);
                *cached = Some((Instant::now(), e.clone()));
                Ok(e)
            }
            // Google's endpoints are documented and stable: sign-ins go on without discovery
            Err(err) if self.kind() == ProviderKind::Google => {
                tracing::warn!(provider = self.name(), error = %err, "discovery failed, using Google's documented endpoints");
                Ok(self.configured.clone())
            }
            Err(err) => Err(ProviderError(format!("discovery {url}: {err}"))),
        }
    }

    fn client(&self, redirect_uri: &str) -> Result<OAuthClient, ProviderError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| ProviderError(format!("redirect uri: {e}")))?;
        let mut client = OAuthClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_redirect_uri(redirect);
        match &self.settings.client_secret {
            Some(secret) => {
                client = client.set_client_secret(ClientSecret::new(secret.clone()));
                // VK ID wants the client in the body; the others take HTTP Basic
                if self.kind() == ProviderKind::Vk {
                    client = client.set_auth_type(AuthType::RequestBody);
                }
            }
            None => client = client.set_auth_type(AuthType::RequestBody),
        }
        Ok(client)
    }

    /// The URL the browser is sent to: state, PKCE S256 challenge and, for OIDC, the nonce.
    pub fn authorization_url(
        &self,
        e: &Endpoints,
        redirect_uri: &str,
        state: &str,
        pkce_verifier: &str,
        nonce: Option<&str>,
    ) -> Result<String, ProviderError> {
        let authorize = e
            .authorize
            .as_deref()
            .ok_or_else(|| ProviderError("no authorization endpoint".into()))?;
        let auth_url =
            AuthUrl::new(authorize.to_string()).map_err(|e| ProviderError(e.to_string()))?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_string(),
        ));
        let client = self.client(redirect_uri)?.set_auth_uri(auth_url);
        let state = state.to_string();
        let mut req = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.settings.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(n) = nonce {
            req = req.add_extra_param("nonce", n);
        }
        Ok(req.url().0.to_string())
    }

    /// Trades the code for the provider's tokens (with the PKCE verifier).
    pub async fn exchange(
        &self,
        out: &Outbound,
        e: &Endpoints,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        extras: &CallbackExtras<'_>,
    ) -> Result<ProviderTokens, ProviderError> {
        let token = e
            .token
            .as_deref()
            .ok_or_else(|| ProviderError("no token endpoint".into()))?;
        let token_url =
            TokenUrl::new(token.to_string()).map_err(|e| ProviderError(e.to_string()))?;
        let client = self.client(redirect_uri)?.set_token_uri(token_url);
        let mut req = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
        if self.kind() == ProviderKind::Vk {
            // VK ID: the device the code was issued to, and the state, go with the exchange
            let device = extras
                .device_id
                .ok_or_else(|| ProviderError("VK callback without device_id".into()))?;
            req = req
                .add_extra_param("device_id", device)
                .add_extra_param("state", extras.state);
        }
        req.request_async(out).await.map_err(|err| {
            ProviderError(match err {
                RequestTokenError::ServerResponse(r) => {
                    format!("token endpoint refused the code: {}", r.error())
                }
                RequestTokenError::Request(e) => format!("token endpoint: {e}"),
                RequestTokenError::Parse(e, _) => format!("token endpoint answer: {e}"),
                RequestTokenError::Other(s) => format!("token endpoint: {s}"),
            })
        })
    }

    /// The user at the provider: a verified id_token for OIDC providers, the userinfo call in
    /// each provider's own form for the others.
    pub async fn profile(
        &self,
        out: &Outbound,
        e: &Endpoints,
        tokens: &ProviderTokens,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<Profile, ProviderError> {
        let access = tokens.access_token().secret();
        let userinfo = || {
            e.userinfo
                .clone()
                .ok_or_else(|| ProviderError("no userinfo endpoint".into()))
        };
        let refused = |r: profile::Refusal| ProviderError(r);
        match self.kind() {
            ProviderKind::Yandex => {
                // Yandex's own scheme, not Bearer
                let req = out
                    .get(&userinfo()?)
                    .header("authorization", format!("OAuth {access}"));
                profile::yandex(&fetch_json(out, req).await?).map_err(refused)
            }
            ProviderKind::Vk => {
                let form = serde_urlencoded::to_string([
                    ("client_id", self.settings.client_id.as_str()),
                    ("access_token", access),
                ])
                .map_err(|e| ProviderError(e.to_string()))?;
                let req = out
                    .post(&userinfo()?)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
                profile::vk(&fetch_json(out, req).await?, tokens.user_id.as_ref()).map_err(refused)
            }
            ProviderKind::MailRu => {
                let mut url = oauth2::url::Url::parse(&userinfo()?)
                    .map_err(|e| ProviderError(format!("userinfo url: {e}")))?;
                url.query_pairs_mut().append_pair("access_token", access);
                let req = out.get(url.as_str());
                profile::mailru(&fetch_json(out, req).await?).map_err(refused)
            }
            ProviderKind::Google | ProviderKind::GenericOidc => {
                let raw = tokens
                    .id_token
                    .as_deref()
                    .ok_or_else(|| ProviderError("no id_token in the token answer".into()))?;
                let nonce = nonce.ok_or_else(|| ProviderError("flow without nonce".into()))?;
                let claims = self.verify_id_token(out, e, raw, nonce, now).await?;
                profile::oidc(&claims).map_err(refused)
            }
        }
    }

    async fn verify_id_token(
        &self,
        out: &Outbound,
        e: &Endpoints,
        raw: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Value, ProviderError> {
        let expect = id_token::Expect {
            issuers: &e.issuers,
            client_id: &self.settings.client_id,
            nonce,
            now,
        };
        if e.issuers.is_empty() {
            return Err(ProviderError("no issuer configured or discovered".into()));
        }
        let keys = self.jwks(out, e, false).await?;
        match id_token::verify(raw, &keys, &expect) {
            // the provider rotated its keys since we fetched them: once more, fresh
            Err(IdTokenError::UnknownKey(_)) => {
                let keys = self.jwks(out, e, true).await?;
                id_token::verify(raw, &keys, &expect).map_err(|e| ProviderError(e.to_string()))
            }
            other => other.map_err(|e| ProviderError(e.to_string())),
        }
    }

    async fn jwks(
        &self,
        out: &Outbound,
        e: &Endpoints,
        refetch: bool,
    ) -> Result<JwkSet, ProviderError> {
        let url = e
            .jwks
            .as_deref()
            .ok_or_else(|| ProviderError("no jwks endpoint".into()))?;
        let mut cached = self.jwks.lock().await;
        if let Some((at, keys)) = cached.as_ref() {
            let fresh = at.elapsed() < CACHE_FOR;
            if fresh && (!refetch || at.elapsed() < JWKS_REFETCH_AFTER) {
                return Ok(keys.clone());
            }
        }
        let keys: JwkSet = fetch_json(out, out.get(url)).await?;
        *cached = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}

/// A JSON answer with a 2xx status, or why not.
async fn fetch_json<T: serde::de::DeserializeOwned>(
    out: &Outbound,
    req: reqwest::RequestBuilder,
) -> Result<T, ProviderError> {
    let r = out
        .execute(req.header("accept", "application/json"))
        .await?;
    if !r.status().is_success() {
        let head: String = String::from_utf8_lossy(r.body())
            .chars()
            .take(200)
            .collect();
        return Err(ProviderError(format!("status {}: {head}", r.status())));
    }
    serde_json::from_slice(r.body())
        .map_err(|e| ProviderError(format!("answer is not the expected JSON: {e}")))
}
