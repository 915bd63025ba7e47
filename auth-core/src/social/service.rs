//! Social sign-in, link and unlink on `Auth`. The flow: `start` stores a flow under a fresh
//! state and sends the browser to the provider; `callback` takes the flow back (once), checks
//! that it belongs to this browser and this provider, trades the code, reads the profile, and
//! signs the user in (or links the identity to the signed-in account).

use super::flow::{self, Flow};
use super::profile::Profile;
use super::provider::{CallbackExtras, Provider, ProviderError};
use super::{return_to, Social};
use crate::core::Auth;
use crate::device;
use crate::email;
use crate::error::{Error, Result};
use crate::model::{Caller, Client, TokenPair};
use crate::repo::social::{self as repo, Linked, NewLink};
use crate::repo::{history, sessions, users};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A started flow: where to send the user, and the secret that binds the flow to them.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
    /// Goes into the flow cookie (browsers) or back to the app in JSON.
    pub binding: String,
    pub expires_in: u64,
    pub json: bool,
}

/// How a callback ended.
pub enum Finished {
    SignedIn {
        pair: TokenPair,
        return_to: String,
        json: bool,
    },
    Linked {
        provider: String,
        return_to: String,
        json: bool,
    },
}

/// The query of the provider's redirect back to us (other parameters, such as VK's `type` or
/// Google's `scope`, are ignored).
#[derive(serde::Deserialize, Default, Debug, utoipa::IntoParams)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// RFC 6749 4.1.2.1: the provider's refusal (`access_denied`, ...).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// VK ID: the device the code was issued to.
    pub device_id: Option<String>,
    /// RFC 9207: the issuer that sends this response, checked when the provider sends it.
    pub iss: Option<String>,
}

const STATE_REFUSED: &str = "unknown, used or expired sign-in state: start again";

impl Auth {
    fn social(&self) -> Result<&Social> {
        self.social.as_ref().ok_or(Error::NotFound("social login"))
    }

    fn social_provider(&self, name: &str) -> Result<(&Social, &Provider)> {
        let social = self.social()?;
        let provider = social.provider(name).ok_or(Error::NotFound("provider"))?;
        Ok((social, provider))
    }

    /// Starts a sign-in (or, with `link`, a link to that account from that session) with
    /// `provider`.
    #[tracing::instrument(name = "auth.oauth_start", skip_all, fields(provider = name))]
    pub async fn oauth_start(
        &self,
        name: &str,
        return_to: Option<&str>,
        json: bool,
        link: Option<&Caller>,
    ) -> Result<Started> {
        let (social, provider) = self.social_provider(name)?;
        let return_to =
            return_to::check(return_to, &social.settings.return_to_allow).map_err(|message| {
                Error::Invalid {
                    field: "return_to",
                    message,
                }
            })?;
        let endpoints = provider
            .endpoints(&social.outbound, false)
            .await
            .map_err(|e| provider_error(name, e))?;
        let state = flow::random_token();
        let binding = flow::random_token();
        let pkce_verifier = flow::random_token();
        let nonce = provider.kind().is_oidc().then(flow::random_token);
        let authorization_url = provider
            .authorization_url(
                &endpoints,
                &social.redirect_uri(name),
                &state,
                &pkce_verifier,
                nonce.as_deref(),
            )
            .map_err(|e| provider_error(name, e))?;
        let record = Flow {
            provider: name.to_string(),
            pkce_verifier,
            nonce,
            return_to,
            json,
            binding: flow::binding_hash(&binding),
            link_user: link.map(|c| c.user_id),
            link_session: link.map(|c| c.session_id),
        };
        let ttl = social.settings.flow_ttl;
        flow::save(&self.redis, &state, &record, ttl, self.config.redis_timeout).await?;
        Ok(Started {
            authorization_url,
            state,
            binding,
            expires_in: ttl.as_secs(),
            json,
        })
    }

    /// Starts linking `provider` to the caller's account: only from a recent sign-in, so a
    /// stolen access token alone cannot attach the thief's provider account.
    #[tracing::instrument(name = "auth.oauth_link", skip_all, fields(provider = name))]
    pub async fn oauth_link(
        &self,
        caller: &Caller,
        name: &str,
        return_to: Option<&str>,
        json: bool,
        now: DateTime<Utc>,
    ) -> Result<Started> {
        let social = self.social()?;
        let opened = sessions::opened_at(&self.db, caller.session_id)
            .await?
            .ok_or(Error::Unauthenticated("session has ended"))?;
        let recent = chrono::Duration::from_std(social.settings.recent_login)
            .unwrap_or(chrono::Duration::zero());
        if now - opened > recent {
            return Err(Error::Forbidden(
                "linking needs a recent sign-in: sign in again, then link",
            ));
        }
        let account = users::by_id(&self.db, caller.user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        self.may_link(&account)?;
        self.oauth_start(name, return_to, json, Some(caller)).await
    }

    /// The provider's redirect back. `cookie` and `header` are the binding secret as a browser
    /// (flow cookie) or an app (`X-OAuth-Flow`) presents it.
    #[tracing::instrument(name = "auth.oauth_callback", skip_all, fields(provider = name))]
    pub async fn oauth_callback(
        &self,
        name: &str,
        params: &CallbackParams,
        cookie: Option<&str>,
        header: Option<&str>,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<Finished> {
        let result = self
            .finish_callback(name, params, cookie, header, client, now)
            .await;
        self.stats.social_logins.record(&result);
        result
    }

    async fn finish_callback(
        &self,
        name: &str,
        params: &CallbackParams,
        cookie: Option<&str>,
        header: Option<&str>,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<Finished> {
        let (social, provider) = self.social_provider(name)?;
        let state = params
            .state
            .as_deref()
            .ok_or(Error::OAuthFlow("the provider's answer has no state"))?;
        if !flow::plausible_state(state) {
            return Err(Error::OAuthFlow(STATE_REFUSED));
        }
        // read once: whatever happens next, this state cannot be used again
        let f = flow::take(&self.redis, state, self.config.redis_timeout)
            .await?
            .ok_or(Error::OAuthFlow(STATE_REFUSED))?;
        // mix-up defence: a state from a flow with provider A must not finish at provider B
        if f.provider != name {
            return Err(Error::OAuthFlow(
                "this sign-in was started with another provider",
            ));
        }
        let secret = if f.json { header } else { cookie };
        if !flow::bound_to(&f, secret) {
            return Err(Error::OAuthFlow(
                "this sign-in was started in another browser or app: start again",
            ));
        }
        if let Some(error) = &params.error {
            tracing::info!(
                provider = name,
                error,
                description = params.error_description.as_deref(),
                "provider refused the sign-in"
            );
            return Err(Error::ProviderDenied(clip(error)));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or(Error::OAuthFlow("the provider's answer has no code"))?;
        let endpoints = provider
            .endpoints(&social.outbound, true)
            .await
            .map_err(|e| provider_error(name, e))?;
        if let Some(iss) = &params.iss {
            if !endpoints.issuers.is_empty() && !endpoints.issuers.contains(iss) {
                return Err(Error::OAuthFlow(
                    "the answer comes from another issuer than the one this sign-in started with",
                ));
            }
        }
        let extras = CallbackExtras {
            device_id: params.device_id.as_deref(),
            state,
        };
        let redirect_uri = social.redirect_uri(name);
        let tokens = provider
            .exchange(
                &social.outbound,
                &endpoints,
                &redirect_uri,
                code,
                &f.pkce_verifier,
                &extras,
            )
            .await
            .map_err(|e| provider_error(name, e))?;
        let profile = provider
            .profile(
                &social.outbound,
                &endpoints,
                &tokens,
                f.nonce.as_deref(),
                now.timestamp(),
            )
            .await
            .map_err(|e| provider_error(name, e))?;
        match f.link_user {
            Some(user) => {
                self.link_identity(name, &profile, user, f.link_session, now)
                    .await?;
                Ok(Finished::Linked {
                    provider: name.to_string(),
                    return_to: f.return_to,
                    json: f.json,
                })
            }
            None => Ok(Finished::SignedIn {
                pair: self.social_sign_in(name, &profile, client, now).await?,
                return_to: f.return_to,
                json: f.json,
            }),
        }
    }

    /// The account of this provider identity, or a new one. An email that belongs to an
    /// existing account is never linked on its own (pre-account takeover: whoever controls a
    /// provider account with that address would get in): the user is told to sign in and link.
    async fn social_sign_in(
        &self,
        name: &str,
        profile: &Profile,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let device = device::classify(client.user_agent.as_deref().unwrap_or(""));
        let mut attempt = history::Attempt::new(
            crate::model::LoginMethod::Social { provider: name },
            device.as_str(),
            client,
            now,
        );
        let user = match repo::find(&self.db, name, &profile.subject).await? {
            Some(user) => user,
            None => {
                let email = profile
                    .email
                    .as_deref()
                    .and_then(|e| email::normalize(e).ok());
                if let Some(e) = &email {
                    if users::credential(&self.db, e).await?.is_some() {
                        attempt.failure_reason =
                            Some(crate::model::FailureReason::EmailBelongsToAnotherAccount);
                        history::record(&self.db, &attempt).await?;
                        return Err(Error::AccountExists(
                            "an account with this email exists: sign in to it, then link this provider from your account",
                        ));
                    }
                }
                // only an address the provider vouches for is claimed for the new account
                let claimed = email.filter(|_| profile.email_verified);
                self.create_social_user(name, profile, claimed.as_deref(), now)
                    .await?
            }
        };
        attempt.user_id = Some(user);
        let pair = self
            .open_session(user, device.as_str(), client, now, None)
            .await?;
        attempt.success = true;
        history::record(&self.db, &attempt).await?;
        tracing::info!(provider = name, user = %user, "signed in with a provider");
        Ok(pair)
    }

    async fn create_social_user(
        &self,
        name: &str,
        profile: &Profile,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let mut tx = self.db.begin().await?;
        match email {
            // no password: the provider is the way in (has_password = false)
            // the provider vouched for the address: confirmed from the start
            Some(e) => users::insert(
                &mut tx,
                &users::NewUser {
                    id,
                    email: e,
                    email_verified: true,
                    lang: "en",
                    now,
                },
                None,
            )
            .await
            .map_err(|err| {
                match err {
                    // registered between our check and this insert
                    Error::Conflict(_) => Error::AccountExists(
                        "an account with this email exists: sign in to it, then link this provider from your account",
                    ),
                    other => other,
                }
            })?,
            None => users::insert_without_email(&mut tx, id, now).await?,
        }
        repo::link(
            &mut *tx,
            &NewLink {
                provider: name,
                subject: &profile.subject,
                user_id: id,
                email: profile.email.as_deref(),
                now,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(provider = name, user = %id, "account created through a provider");
        Ok(id)
    }

    /// Anyone can sign up with an address they do not own; until it is confirmed, the
    /// account must not gain a way in that a password reset by the address's owner would
    /// leave behind (the squatter's own provider account). Without `[mail]` no address can be
    /// confirmed, and nothing is held back.
    fn may_link(&self, account: &users::User) -> Result<()> {
        if self.config.mail.is_some() && account.email.is_some() && !account.email_verified {
            return Err(Error::Forbidden(
                "confirm your email before linking a provider account",
            ));
        }
        Ok(())
    }

    /// Links under the account's lock, while the session that started the flow is still
    /// live: a reset or a sign-out everywhere after the flow began voids it.
    async fn link_identity(
        &self,
        name: &str,
        profile: &Profile,
        user: Uuid,
        session: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let checked = crate::account::Checked {
            password: None,
            session,
        };
        let account = crate::account::still_holds(&mut tx, user, &checked, now).await?;
        self.may_link(&account)?;
        if let Some(owner) = repo::find(&mut *tx, name, &profile.subject).await? {
            return Err(Error::Conflict(if owner == user {
                "this provider account is already linked to your account"
            } else {
                "this provider account is linked to another account"
            }));
        }
        repo::link(
            &mut *tx,
            &NewLink {
                provider: name,
                subject: &profile.subject,
                user_id: user,
                email: profile.email.as_deref(),
                now,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(provider = name, user = %user, "provider linked");
        Ok(())
    }

    #[tracing::instrument(name = "auth.social_accounts", skip_all)]
    pub async fn social_accounts(&self, caller: &Caller) -> Result<Vec<Linked>> {
        repo::list(&self.db, caller.user_id).await
    }

    /// Unlinks `provider`, unless it is the last way into the account (no password, no
    /// other provider): that would lock the user out for good.
    #[tracing::instrument(name = "auth.unlink", skip_all, fields(provider = name))]
    pub async fn unlink_social(&self, caller: &Caller, name: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let user = users::lock(&mut tx, caller.user_id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let linked = repo::list(&mut *tx, user.id).await?;
        if !linked.iter().any(|l| l.provider == name) {
            return Err(Error::NotFound("linked provider"));
        }
        let has_password = match &user.email {
            Some(e) => users::credential(&mut *tx, e)
                .await?
                .is_some_and(|c| c.password_hash.is_some()),
            None => false,
        };
        if !has_password && linked.len() == 1 {
            return Err(Error::Conflict(
                "this is the last way to sign in to this account: set a password or link another provider first",
            ));
        }
        repo::unlink(&mut *tx, user.id, name).await?;
        tx.commit().await?;
        tracing::info!(provider = name, user = %user.id, "provider unlinked");
        Ok(())
    }
}

fn provider_error(name: &str, e: ProviderError) -> Error {
    Error::Provider {
        provider: name.to_string(),
        detail: e.0,
    }
}

/// A provider's error code echoed back, kept short and printable.
fn clip(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}
