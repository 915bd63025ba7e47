//! Roles and grants: admin-only endpoints and the `edge user` CLI.

use crate::core::Auth;
use crate::error::{Error, Result};
use crate::model::{Caller, NewRole, UserView};
use crate::repo::roles::{self, Role};
use crate::repo::users;
use uuid::Uuid;

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("the admin role is required"))
    }
}

/// Role names: lower-case ASCII letters, digits, `-`, `_`; 2–32 characters from a letter.
pub fn check_role_name(name: &str) -> Result<()> {
    let ok = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "name",
            message: "2-32 of a-z, 0-9, '-', '_', starting with a letter",
        })
    }
}

impl Auth {
    #[tracing::instrument(skip_all, name = "admin.list_roles", err(level = "info"))]
    pub async fn list_roles(&self, caller: &Caller) -> Result<Vec<Role>> {
        require_admin(caller)?;
        roles::list(&self.db).await
    }

    #[tracing::instrument(name = "auth.create_role", skip_all)]
    pub async fn create_role(&self, caller: &Caller, req: &NewRole) -> Result<Role> {
        require_admin(caller)?;
        check_role_name(&req.name)?;
        if req.description.chars().count() > 200 {
            return Err(Error::Invalid {
                field: "description",
                message: "must be at most 200 characters",
            });
        }
        // PostgreSQL text cannot hold NUL; other control characters have no place in a label
        if req.description.chars().any(char::is_control) {
            return Err(Error::Invalid {
                field: "description",
                message: "must not contain control characters",
            });
        }
        roles::create(&self.db, &req.name, &req.description).await
    }

    #[tracing::instrument(name = "auth.delete_role", skip_all)]
    pub async fn delete_role(&self, caller: &Caller, name: &str) -> Result<()> {
        require_admin(caller)?;
        match roles::builtin(&self.db, name).await? {
            None => Err(Error::NotFound("role")),
            Some(true) => Err(Error::Conflict("built-in roles cannot be deleted")),
            Some(false) => roles::delete(&self.db, name).await,
        }
    }

    #[tracing::instrument(name = "auth.grant_role", skip_all)]
    pub async fn grant_role(&self, caller: &Caller, user: Uuid, role: &str) -> Result<()> {
        require_admin(caller)?;
        self.set_role(user, role, true).await
    }

    #[tracing::instrument(name = "auth.revoke_role", skip_all)]
    pub async fn revoke_role(&self, caller: &Caller, user: Uuid, role: &str) -> Result<()> {
        require_admin(caller)?;
        self.set_role(user, role, false).await
    }

    /// Grants or revokes without an HTTP caller (the CLI). Idempotent. The change reaches
    /// access tokens at the next refresh.
    #[tracing::instrument(skip_all, name = "admin.set_role", err(level = "info"))]
    pub async fn set_role(&self, user: Uuid, role: &str, grant: bool) -> Result<()> {
        if users::by_id(&self.db, user).await?.is_none() {
            return Err(Error::NotFound("user"));
        }
        if roles::builtin(&self.db, role).await?.is_none() {
            return Err(Error::NotFound("role"));
        }
        if grant {
            users::grant(&self.db, user, role).await?;
        } else {
            users::revoke(&self.db, user, role).await?;
        }
        Ok(())
    }

    /// The account of an email, for the CLI.
    #[tracing::instrument(skip_all, name = "admin.find_user", err(level = "info"))]
    pub async fn find_user(&self, email: &str) -> Result<UserView> {
        let email = crate::email::normalize(email)?;
        let credential = users::credential(&self.db, &email)
            .await?
            .ok_or(Error::NotFound("user"))?;
        self.profile(credential.user_id).await
    }

    /// Creates an account with a password checked against the policy (the CLI).
    #[tracing::instrument(
        skip_all,
        name = "admin.create_user_with_password",
        err(level = "info")
    )]
    pub async fn create_user_with_password(
        &self,
        email: &str,
        password: &str,
        roles: &[String],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<UserView> {
        let email = crate::email::normalize(email)?;
        crate::password::check_policy(password)?;
        let hash = self.passwords.hash(password).await?;
        self.create_user(&email, Some(&hash), roles, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::check_role_name;

    #[test]
    fn role_names() {
        for ok in ["admin", "moderator", "content-editor", "tier_2"] {
            assert!(check_role_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Admin",
            "2fa",
            "rm -rf",
            "роль",
            &"a".repeat(33),
            "x'; DROP",
        ] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }
}
