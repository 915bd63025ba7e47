//! `Auth`: the state the domain works on — database pool, Redis, password hasher and the
//! signing keys — and the token plumbing shared by the domain files.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{self, Jwks, KeySet};
use crate::model::{Caller, TokenPair};
use crate::password::Passwords;
use crate::redis_client::SharedRedis;
use crate::token::{self, Claims, TokenError, Verifier};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Keys in force and a verifier built from them, swapped together on reload.
struct Keys {
    set: KeySet,
    verifier: Verifier,
}

pub struct Auth {
    pub(crate) config: Config,
    pub(crate) db: PgPool,
    pub(crate) redis: Option<Arc<SharedRedis>>,
    pub(crate) passwords: Passwords,
    keys: ArcSwap<Keys>,
    /// Open while PostgreSQL is unreachable (see `db_gate.rs`).
    pub(crate) db_gate: crate::db_gate::DbGate,
    pub stats: crate::stats::Stats,
    pub(crate) social: Option<crate::social::Social>,
    /// Woken when this process queues a mail, so its sender does not wait for the next poll.
    pub(crate) mail_queued: tokio::sync::Notify,
}

impl Auth {
    /// Argon2 password verifications so far (`/_edge/metrics`).
    pub fn password_checks(&self) -> u64 {
        self.passwords
            .checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Builds the core without touching the database or Redis: both connect lazily, so the
    /// edge starts (and serves its other routes) while they are down. Must run inside a
    /// Tokio runtime.
    pub fn new(config: Config, now: DateTime<Utc>) -> Result<Arc<Auth>> {
        let redis = config
            .redis
            .as_ref()
            .map(|s| SharedRedis::spawn(s.with_timeout(config.redis_timeout)));
        Auth::with_redis(config, now, redis)
    }

    /// As `new`, with the process's Redis client (the edge's), so the core and the edge share
    /// one set of connections and follow the same failovers.
    pub fn with_redis(
        config: Config,
        now: DateTime<Utc>,
        redis: Option<Arc<SharedRedis>>,
    ) -> Result<Arc<Auth>> {
        let db = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(config.db_timeout)
            .connect_lazy(&config.database_url)
            .map_err(|e| Error::Internal(format!("database url: {e}")))?;
        if config.keys.generate_if_missing {
            keys::ensure(&config.keys.dir, now, config.access_ttl)?;
        }
        let keys = load_keys(&config, now)?;
        let passwords = Passwords::new(&config.password)?;
        let social = match &config.social {
            Some(s) => Some(
                crate::social::Social::new(s.clone())
                    .map_err(|e| Error::Internal(format!("social login: {e}")))?,
            ),
            None => None,
        };
        Ok(Arc::new(Auth {
            config,
            db,
            redis,
            passwords,
            keys: ArcSwap::from_pointee(keys),
            db_gate: crate::db_gate::DbGate::default(),
            stats: crate::stats::Stats::default(),
            social,
            mail_queued: tokio::sync::Notify::new(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-reads the keys directory (after `edge keys rotate`, or as old keys age out).
    pub fn reload_keys(&self, now: DateTime<Utc>) -> Result<()> {
        let fresh = load_keys(&self.config, now)?;
        let old = self.keys.load();
        let changed = old.set.public.iter().map(|k| &k.kid).ne(fresh
            .set
            .public
            .iter()
            .map(|k| &k.kid));
        if changed {
            tracing::info!(
                signing = fresh
                    .set
                    .signer
                    .as_ref()
                    .map(|s| s.kid.as_str())
                    .unwrap_or("-"),
                published = fresh.set.public.len(),
                "signing keys reloaded"
            );
        }
        self.keys.store(Arc::new(fresh));
        Ok(())
    }

    pub fn jwks(&self) -> Jwks {
        self.keys.load().set.jwks()
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<()> {
        crate::migrate::run(&self.db).await
    }

    /// Housekeeping (at start and every few hours): login-history partitions ahead of time,
    /// and sessions that ended more than a day ago deleted with their refresh tokens.
    pub async fn maintain(&self, now: DateTime<Utc>) -> Result<()> {
        let made =
            crate::repo::history::ensure_partitions(&self.db, self.config.history_months_ahead)
                .await?;
        if made > 0 {
            tracing::info!(made, "login history partitions created");
        }
        let day_ago = now - chrono::Duration::days(1);
        let deleted = crate::repo::sessions::delete_ended(&self.db, day_ago).await?;
        if deleted > 0 {
            tracing::info!(deleted, "ended sessions deleted");
        }
        let tokens = crate::repo::account_tokens::delete_old(&self.db, day_ago).await?;
        // sent and failed mails stay a month for the operator's questions
        let mails =
            crate::repo::outbox::delete_done(&self.db, now - chrono::Duration::days(30)).await?;
        if tokens + mails > 0 {
            tracing::info!(
                tokens,
                mails,
                "spent mail tokens and old outbox rows deleted"
            );
        }
        Ok(())
    }

    pub(crate) fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        self.keys.load().verifier.verify(token, now.timestamp())
    }

    /// The caller behind a bearer token: a valid signature and a live session.
    pub(crate) async fn authenticate(&self, token: &str, now: DateTime<Utc>) -> Result<Caller> {
        let claims = self.verify(token, now).map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            Error::Unauthenticated("invalid or expired access token")
        })?;
        let parse = |s: &str| {
            Uuid::parse_str(s).map_err(|_| Error::Unauthenticated("invalid access token"))
        };
        let caller = Caller {
            user_id: parse(&claims.sub)?,
            session_id: parse(&claims.sid)?,
            roles: claims.roles,
        };
        if !crate::repo::sessions::is_live(&self.db, caller.session_id, now).await? {
            return Err(Error::Unauthenticated("session has ended"));
        }
        Ok(caller)
    }

    /// An access token for a session, and its refresh token.
    pub(crate) fn token_pair(
        &self,
        user: Uuid,
        session: Uuid,
        facts: crate::repo::users::TokenFacts,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let keys = self.keys.load();
        let signer = keys
            .set
            .signer
            .as_ref()
            .ok_or_else(|| Error::Internal("no signing key".into()))?;
        let ttl = self.config.access_ttl.as_secs();
        let claims = Claims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            roles: facts.roles,
            email_verified: facts.email_verified,
            iat: now.timestamp(),
            exp: now.timestamp() + ttl as i64,
            nbf: None,
        };
        Ok(TokenPair {
            access_token: token::sign(signer, &claims)?,
            refresh_token,
            token_type: "Bearer",
            expires_in: ttl,
        })
    }

    pub(crate) fn later(&self, now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
    }
}

fn load_keys(config: &Config, now: DateTime<Utc>) -> Result<Keys> {
    let set = keys::load(&config.keys.dir, now, config.access_ttl)?;
    if set.signer.is_none() {
        return Err(Error::Internal(format!(
            "no signing key in {}: run `edge keys rotate`",
            config.keys.dir.display()
        )));
    }
    let verifier = Verifier::from_set(&set, &config.issuer, &config.audience);
    Ok(Keys { set, verifier })
}

impl Auth {
    /// Since when (unix ms) the database is believed down; None while it answers.
    pub fn database_down_since_ms(&self) -> Option<u64> {
        self.db_gate.open_since_ms()
    }

    /// One cheap query, given at most `PROBE_TIMEOUT` (not the pool's acquire timeout).
    pub async fn database_up(&self) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.db);
        matches!(
            tokio::time::timeout(crate::db_gate::PROBE_TIMEOUT, query).await,
            Ok(Ok(_))
        )
    }
}
