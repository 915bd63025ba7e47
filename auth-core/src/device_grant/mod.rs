//! OAuth 2.0 Device Authorization Grant (RFC 8628) for Smart TVs: the TV asks for a code
//! (`start`), shows it with a QR code and polls (`poll`); the viewer opens the verification
//! page on a phone, signs in there, and approves or denies (`find`, `decide`). State lives in
//! Redis (`store.rs`); a poll that is still pending costs one Redis round trip and no query.

pub mod code;
pub mod settings;
pub mod store;

use crate::device;
use crate::error::{DeviceError, Error, Result};
use crate::model::{Caller, Client, LoginMethod, TokenPair};
use crate::repo::history;
use crate::social::flow::{binding_hash, random_token};
use crate::throttle;
use crate::Auth;
use chrono::{DateTime, Utc};
use settings::DeviceSettings;
use std::time::Duration;
use uuid::Uuid;

/// RFC 8628 §3.4.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Codes one client network may ask for per window (a TV asks for one per sign-in).
const STARTS_PER_NETWORK: u32 = 20;
const STARTS_WINDOW: Duration = Duration::from_secs(600);
/// Codes one client network may look up on the verification page per window: a viewer types
/// one or two; a guesser needs ~10^8 tries per hit with 100 codes pending (20^8 / 100).
pub const LOOKUPS_PER_NETWORK: u32 = 10;
pub const LOOKUPS_WINDOW: Duration = Duration::from_secs(900);
/// Lookups of one user code, from anywhere, in its lifetime.
pub const LOOKUPS_PER_CODE: u32 = 10;
/// Failed lookups per signed-in account per window: lookups need an account, so spreading
/// guesses over many networks (an IPv6 prefix) still meets this limit.
pub const FAILED_LOOKUPS_PER_ACCOUNT: u32 = 10;
/// Passwords typed on the verification page, per network per window (the edge's login
/// limit is on /auth/login; this one holds even when Redis misbehaves: it fails closed).
pub const PAGE_LOGINS_PER_NETWORK: u32 = 10;
/// The TV's User-Agent kept for the approval page, at most.
const MAX_AGENT: usize = 256;
/// Polls this much early still count as on time (clocks, network jitter).
const POLL_SLACK_MS: u64 = 500;

/// A started authorization, as RFC 8628 §3.2 answers it.
#[derive(Debug, Clone)]
pub struct Started {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// What the approval page shows of the device asking.
#[derive(Debug, Clone)]
pub struct Asking {
    pub user_code: String,
    pub client_name: String,
    pub device_type: &'static str,
    pub browser: &'static str,
    pub network: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// Whether the phone is on the TV's network; when not, the page warns (RFC 8628 §5.4: a
    /// code sent by someone else is the remote phishing the RFC describes).
    pub same_network: bool,
    device_hash: String,
    tv_user_agent: String,
    tv_ip: String,
}

/// The viewer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn from_ms(v: Option<&String>) -> DateTime<Utc> {
    v.and_then(|s| s.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
}

impl Auth {
    pub fn device_settings(&self) -> Result<&DeviceSettings> {
        self.config
            .device
            .as_ref()
            .ok_or(Error::NotFound("endpoint"))
    }

    fn network_of(&self, client: &Client) -> String {
        self.config
            .client_networks
            .of_text(client.ip.as_deref())
            .unwrap_or_else(|| "unknown".into())
    }

    /// RFC 8628 §3.1–3.2: a new device code and user code for a registered TV app.
    #[tracing::instrument(skip_all, name = "device.start", err(level = "info"))]
    pub async fn device_start(
        &self,
        client_id: &str,
        scope: Option<&str>,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<Started> {
        let d = self.device_settings()?;
        if d.client(client_id).is_none() {
            return Err(Error::DeviceGrant(DeviceError::InvalidClient));
        }
        let scope = scope.unwrap_or("");
        if scope.len() > 256 || !scope.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(Error::DeviceGrant(DeviceError::InvalidRequest(
                "scope is not a list of scope tokens",
            )));
        }
        let network = self.network_of(client);
        let timeout = self.config.redis_timeout;
        let key = format!("auth:device:start:{network}");
        if let Some(retry_after) = throttle::hit(
            &self.redis,
            &key,
            STARTS_PER_NETWORK,
            STARTS_WINDOW,
            timeout,
        )
        .await
        {
            return Err(Error::Throttled { retry_after });
        }
        let device_code = random_token();
        let device_hash = binding_hash(&device_code);
        let ttl_ms = d.user_code_ttl.as_millis() as u64;
        let ua: String = client
            .user_agent
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(MAX_AGENT)
            .collect();
        let ua = ua.as_str();
        let ip = client.ip.as_deref().unwrap_or("");
        let tv = format!("{network} {ip}");
        for _ in 0..5 {
            let user_code = code::new_user_code();
            let a = store::NewAuthorization {
                client_id,
                user_code: &user_code,
                scope,
                tv_user_agent: ua,
                tv_network: &tv,
                created_ms: ms(now),
                expires_ms: ms(now) + ttl_ms,
                interval_ms: d.interval.as_millis() as u64,
            };
            if store::create(&self.redis, &device_hash, &a, timeout).await? {
                let shown = code::display(&user_code);
                return Ok(Started {
                    device_code,
                    verification_uri_complete: format!("{}?user_code={shown}", d.verification_uri),
                    user_code: shown,
                    verification_uri: d.verification_uri.clone(),
                    expires_in: d.user_code_ttl.as_secs(),
                    interval: d.interval.as_secs(),
                });
            }
        }
        Err(Error::Internal("no free user code in 5 draws".into()))
    }

    /// RFC 8628 §3.4–3.5: one poll of the TV. Pending polls cost one Redis call and no query.
    #[tracing::instrument(skip_all, name = "device.poll", err(level = "debug"))]
    pub async fn device_poll(
        self: &std::sync::Arc<Self>,
        grant_type: &str,
        device_code: &str,
        client_id: &str,
        client: &Client,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let d = self.device_settings()?;
        if grant_type != GRANT_TYPE {
            return Err(Error::DeviceGrant(DeviceError::UnsupportedGrantType));
        }
        if d.client(client_id).is_none() {
            return Err(Error::DeviceGrant(DeviceError::InvalidClient));
        }
        // only what `random_token` makes is looked up
        if !crate::social::flow::plausible_state(device_code) {
            return Err(Error::DeviceGrant(DeviceError::InvalidGrant));
        }
        let hash = binding_hash(device_code);
        let timeout = self.config.redis_timeout;
        let outcome = store::poll(
            &self.redis,
            &hash,
            client_id,
            ms(now),
            POLL_SLACK_MS,
            timeout,
        )
        .await?;
        let (user, approver) = match outcome {
            store::Poll::Pending => {
                return Err(Error::DeviceGrant(DeviceError::AuthorizationPending))
            }
            store::Poll::SlowDown { interval_ms } => {
                return Err(Error::DeviceGrant(DeviceError::SlowDown {
                    interval: interval_ms / 1000,
                }))
            }
            store::Poll::Denied => return Err(Error::DeviceGrant(DeviceError::AccessDenied)),
            store::Poll::Expired => return Err(Error::DeviceGrant(DeviceError::ExpiredToken)),
            store::Poll::Invalid => return Err(Error::DeviceGrant(DeviceError::InvalidGrant)),
            store::Poll::Approved { user, session } => (user, session),
        };
        let Ok(user_id) = Uuid::parse_str(&user) else {
            return Err(Error::Internal("device authorization holds no user".into()));
        };
        // the approving session must still be live when the TV's is written: a reset or a
        // sign-out everywhere between the approval and this poll revokes the approval too
        let approver = approver.and_then(|s| Uuid::parse_str(&s).ok());
        // the code is spent: finish in a task of its own, so a poll cancelled now (the TV
        // hung up, a timeout upstream) gives the code back instead of losing the approval
        let (tx, rx) = tokio::sync::oneshot::channel();
        let auth = std::sync::Arc::clone(self);
        let client = client.clone();
        tokio::spawn(async move {
            let kind = device::classify(client.user_agent.as_deref().unwrap_or(""));
            let checked = crate::account::Checked {
                password: None,
                session: approver,
            };
            let opened = auth
                .open_session(user_id, kind.as_str(), &client, now, Some(&checked))
                .await;
            // an approval whose session ended is withdrawn for good: not handed back
            let opened = match opened {
                Err(Error::Unauthenticated(_) | Error::InvalidCredentials) => {
                    tracing::info!(user = %user_id, "device sign-in refused: the approving session has ended");
                    let _ = tx.send(Err(Error::DeviceGrant(DeviceError::AccessDenied)));
                    return;
                }
                other => other,
            };
            let failed = opened.is_err();
            if tx.send(opened).is_err() || failed {
                // nobody to hand the tokens to, or no tokens: the next poll tries again
                store::unspend(&auth.redis, &hash, &user, timeout).await;
            }
        });
        rx.await
            .map_err(|_| Error::Internal("device sign-in task ended early".into()))?
    }

    /// The authorization behind a code the viewer typed. Failed lookups are counted per
    /// network and per account, lookups of one code from anywhere: all fail closed.
    #[tracing::instrument(skip_all, name = "device.find", err(level = "info"))]
    pub async fn device_find(
        &self,
        typed: &str,
        phone: &Client,
        caller: &Caller,
    ) -> Result<Asking> {
        let d = self.device_settings()?;
        let timeout = self.config.redis_timeout;
        let network = self.network_of(phone);
        let by_network = format!("auth:device:lookup:{network}");
        let by_account = format!("auth:device:lookup-acct:{}", caller.user_id);
        throttle::over_strict(
            &self.redis,
            &by_network,
            LOOKUPS_PER_NETWORK,
            LOOKUPS_WINDOW,
            timeout,
        )
        .await?;
        throttle::over_strict(
            &self.redis,
            &by_account,
            FAILED_LOOKUPS_PER_ACCOUNT,
            LOOKUPS_WINDOW,
            timeout,
        )
        .await?;
        let failed = || async {
            throttle::hit_strict(&self.redis, &by_network, u32::MAX, LOOKUPS_WINDOW, timeout)
                .await?;
            throttle::hit_strict(&self.redis, &by_account, u32::MAX, LOOKUPS_WINDOW, timeout).await
        };
        let Some(code) = code::normalize(typed) else {
            failed().await?;
            return Err(Error::Invalid {
                field: "user_code",
                message: "is not a code of the form XXXX-XXXX",
            });
        };
        let per_code = format!("auth:device:lookup-code:{code}");
        throttle::hit_strict(
            &self.redis,
            &per_code,
            LOOKUPS_PER_CODE,
            d.user_code_ttl,
            timeout,
        )
        .await?;
        let Some(found) = store::find(&self.redis, &code, timeout).await? else {
            failed().await?;
            return Err(Error::NotFound("code"));
        };
        let f = &found.fields;
        if f.get("status").map(String::as_str) != Some("pending") {
            return Err(Error::Conflict("this code was already used"));
        }
        let client_id = f.get("client").cloned().unwrap_or_default();
        let ua = f.get("tv_ua").cloned().unwrap_or_default();
        let tv = f.get("tv_net").cloned().unwrap_or_default();
        let (tv_network, ip) = tv.split_once(' ').unwrap_or((tv.as_str(), ""));
        Ok(Asking {
            user_code: code::display(&code),
            client_name: d
                .client(&client_id)
                .map_or_else(|| client_id.clone(), |c| c.name.clone()),
            device_type: device::classify(&ua).as_str(),
            browser: device::browser_family(&ua),
            network: tv_network.to_string(),
            created: from_ms(f.get("created_ms")),
            expires: from_ms(f.get("expires_ms")),
            same_network: tv_network == network,
            device_hash: found.device_hash.clone(),
            tv_user_agent: ua.clone(),
            tv_ip: ip.to_string(),
        })
    }

    /// A password typed on the verification page: the core's login, behind a per-network
    /// limit of its own that fails closed.
    pub async fn device_page_login(
        &self,
        creds: &crate::model::Credentials,
        phone: &Client,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let key = format!("auth:device:login:{}", self.network_of(phone));
        throttle::hit_strict(
            &self.redis,
            &key,
            PAGE_LOGINS_PER_NETWORK,
            LOOKUPS_WINDOW,
            self.config.redis_timeout,
        )
        .await?;
        self.login(creds, phone, now).await
    }

    /// The viewer approves or denies: once, by one account. An approval is a sign-in of the
    /// TV: login history records it (method `device`, the TV's device type and address).
    #[tracing::instrument(skip_all, name = "device.decide", err(level = "info"))]
    pub async fn device_decide(
        &self,
        caller: &Caller,
        asking: &Asking,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let user = caller.user_id.to_string();
        let approve = decision == Decision::Approve;
        let outcome = store::decide(
            &self.redis,
            &asking.device_hash,
            approve,
            &user,
            &caller.session_id.to_string(),
            ms(now),
            self.config.redis_timeout,
        )
        .await?;
        match outcome {
            store::Decided::Done => {}
            store::Decided::AlreadyDecided => {
                return Err(Error::Conflict("this code was already used"))
            }
            store::Decided::Expired | store::Decided::Unknown => {
                return Err(Error::NotFound("code"))
            }
        }
        if approve {
            let tv = Client {
                ip: (!asking.tv_ip.is_empty()).then(|| asking.tv_ip.clone()),
                user_agent: (!asking.tv_user_agent.is_empty())
                    .then(|| asking.tv_user_agent.clone()),
            };
            let mut attempt =
                history::Attempt::new(LoginMethod::Device, asking.device_type, &tv, now);
            attempt.user_id = Some(caller.user_id);
            attempt.success = true;
            history::record(&self.db, &attempt).await?;
        }
        Ok(())
    }
}
