//! Sessions: refresh-token rotation with reuse detection, logout and logout-all.

use crate::core::Auth;
use crate::error::{Error, Result};
use crate::model::{Caller, SessionList, SessionView, TokenPair};
use crate::refresh::{self, Verdict};
use crate::repo::{sessions, users};
use crate::revocation;
use chrono::{DateTime, Utc};

impl Auth {
    /// Spends a refresh token and returns the next pair. A token spent earlier than the grace
    /// window is a stolen copy being replayed (or the thief's original): the whole session is
    /// revoked, so whichever side holds the live token is logged out too.
    #[tracing::instrument(name = "auth.refresh", skip_all)]
    pub async fn refresh(&self, presented: &str, now: DateTime<Utc>) -> Result<TokenPair> {
        if presented.is_empty() || presented.len() > 256 {
            return Err(Error::InvalidRefresh("invalid refresh token"));
        }
        let hash = refresh::hash(presented);
        let mut tx = self.db.begin().await?;
        let Some(found) = sessions::lock_refresh(&mut tx, &hash).await? else {
            return Err(Error::InvalidRefresh("invalid refresh token"));
        };
        match refresh::judge(&found.stored, now, self.config.refresh_reuse_grace) {
            Verdict::Expired => return Err(Error::InvalidRefresh("refresh token expired")),
            Verdict::Revoked => return Err(Error::InvalidRefresh("session has ended")),
            Verdict::Reuse => {
                sessions::revoke(&mut *tx, found.session_id, now, "refresh_token_reused").await?;
                tx.commit().await?;
                tracing::warn!(session = %found.session_id, user = %found.user_id, "refresh token reused: session revoked");
                self.deny(&[found.session_id]).await;
                return Err(Error::InvalidRefresh(
                    "refresh token reused: session revoked",
                ));
            }
            Verdict::Rotate => sessions::spend(&mut *tx, &hash, now).await?,
            Verdict::Grace => {}
        }
        let (token, new_hash) = refresh::generate();
        let expires_at = self.later(now, self.config.refresh_ttl);
        sessions::add_refresh(&mut *tx, found.session_id, &new_hash, now, expires_at).await?;
        // roles are read afresh: a granted or revoked role applies from the next refresh
        let facts = users::token_facts(&mut *tx, found.user_id).await?;
        tx.commit().await?;
        self.token_pair(found.user_id, found.session_id, facts, token, now)
    }

    /// The caller's signed-in devices.
    #[tracing::instrument(name = "auth.sessions", skip_all)]
    pub async fn sessions(&self, caller: &Caller, now: DateTime<Utc>) -> Result<SessionList> {
        let rows = sessions::live_of(&self.db, caller.user_id, now).await?;
        let items = rows
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.session_id,
                id: s.id,
                device: s.device,
                browser: crate::device::browser_family(s.user_agent.as_deref().unwrap_or("")),
                network: self.config.client_networks.of_text(s.ip.as_deref()),
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect();
        Ok(SessionList { items })
    }

    /// Ends one of the caller's sessions (another device, or this one): its refresh tokens
    /// stop working and its access tokens go on the deny list.
    #[tracing::instrument(name = "auth.end_session", skip_all)]
    pub async fn end_session(
        &self,
        caller: &Caller,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.db.begin().await?;
        users::lock(&mut tx, caller.user_id).await?;
        if !sessions::revoke_of(&mut *tx, caller.user_id, id, now).await? {
            return Err(Error::NotFound("session"));
        }
        tx.commit().await?;
        self.deny(&[id]).await;
        Ok(())
    }

    #[tracing::instrument(name = "auth.logout", skip_all)]
    pub async fn logout(&self, caller: &Caller, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.db.begin().await?;
        users::lock(&mut tx, caller.user_id).await?;
        sessions::revoke(&mut *tx, caller.session_id, now, "logout").await?;
        tx.commit().await?;
        self.deny(&[caller.session_id]).await;
        Ok(())
    }

    #[tracing::instrument(name = "auth.logout_all", skip_all)]
    pub async fn logout_all(&self, caller: &Caller, now: DateTime<Utc>) -> Result<usize> {
        // under the account's lock, like every writer of sessions and credentials: a session
        // being opened meanwhile (a TV's poll on an approval from one of these) is either
        // ended here too or sees its approver ended and is refused
        let mut tx = self.db.begin().await?;
        users::lock(&mut tx, caller.user_id).await?;
        let ended = sessions::revoke_all(&mut *tx, caller.user_id, now, "logout_all").await?;
        tx.commit().await?;
        self.deny(&ended).await;
        Ok(ended.len())
    }

    async fn deny(&self, sids: &[uuid::Uuid]) {
        revocation::deny(
            &self.redis,
            sids,
            self.config.access_ttl,
            self.config.redis_timeout,
        )
        .await;
    }
}
