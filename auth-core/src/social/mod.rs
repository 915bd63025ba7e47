//! Social login: the core as an OAuth 2.0 / OpenID Connect *consumer* of Yandex ID, VK ID,
//! Google, Mail.ru and any OIDC provider. `settings.rs` is the validated conf, `provider.rs`
//! talks to one provider (endpoints in `endpoints.rs`, answers in `token_response.rs` and
//! `profile.rs`, id_tokens in `id_token.rs`) over `outbound.rs`; `flow.rs` keeps a started
//! sign-in in Redis; `service.rs` is the domain (sign in, link, unlink) on `Auth`.

mod cookies;
pub mod endpoints;
pub mod flow;
pub mod id_token;
pub mod outbound;
pub mod profile;
pub mod provider;
pub mod return_to;
pub mod service;
pub mod settings;
pub mod token_response;

pub use service::{Finished, Started};

use outbound::Outbound;
use provider::Provider;
use settings::SocialSettings;

/// The providers in force and the client that calls them.
pub struct Social {
    pub settings: SocialSettings,
    pub providers: Vec<Provider>,
    pub outbound: Outbound,
}

impl Social {
    pub fn new(settings: SocialSettings) -> Result<Social, outbound::OutboundError> {
        let outbound = Outbound::new(&settings)?;
        let providers = settings
            .providers
            .iter()
            .cloned()
            .map(Provider::new)
            .collect();
        Ok(Social {
            settings,
            providers,
            outbound,
        })
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name() == name)
    }

    /// The callback URL registered at the provider.
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!(
            "{}/auth/oauth/{provider}/callback",
            self.settings.public_url.trim_end_matches('/')
        )
    }
}
