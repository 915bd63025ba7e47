//! The auth core's admin commands: `edge migrate`, `edge keys`, `edge user`. They read the
//! `[auth]` section of the conf dir and talk to the database directly.

use crate::cli::{KeysAction, UserAction};
use crate::config;
use auth_core::Auth;
use chrono::Utc;
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

fn auth_config(conf: &Path) -> Result<auth_core::Config, String> {
    let config = config::load(conf).map_err(|e| e.to_string())?;
    config
        .auth
        .ok_or_else(|| format!("{}: no [auth] section", conf.display()))
}

fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(f)
}

/// An operator at a terminal gets the whole story, unlike an HTTP client: the detail of an
/// internal error (a migration mismatch, a key file) is printed.
fn describe(e: auth_core::Error) -> String {
    e.detail()
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the core for a one-off command (no listener, no background tasks).
fn core(config: auth_core::Config) -> Result<std::sync::Arc<Auth>, String> {
    Auth::new(config, Utc::now()).map_err(describe)
}

pub fn migrate(conf: &Path) -> ExitCode {
    finish(auth_config(conf).and_then(|config| {
        block_on(async move {
            let auth = core(config)?;
            auth.migrate().await.map_err(describe)?;
            auth.maintain(Utc::now()).await.map_err(describe)?;
            println!("migrations applied");
            Ok(())
        })
    }))
}

pub fn keys(action: KeysAction) -> ExitCode {
    finish(match action {
        KeysAction::Rotate { conf } => auth_config(&conf).and_then(|c| {
            let kid =
                auth_core::keys::rotate(&c.keys.dir, Utc::now(), c.access_ttl).map_err(describe)?;
            println!("new signing key {kid} in {}", c.keys.dir.display());
            Ok(())
        }),
        KeysAction::List { conf } => auth_config(&conf).and_then(|c| {
            let set =
                auth_core::keys::load(&c.keys.dir, Utc::now(), c.access_ttl).map_err(describe)?;
            let signing = set.signer.as_ref().map(|s| s.kid.as_str()).unwrap_or("-");
            for k in &set.public {
                let mark = if k.kid == signing {
                    "signing"
                } else {
                    "published"
                };
                println!("{}  {}  {mark}", k.kid, k.created.to_rfc3339());
            }
            Ok(())
        }),
    })
}

pub fn user(action: UserAction) -> ExitCode {
    finish(match action {
        UserAction::Create {
            conf,
            email,
            password_stdin: _,
            roles,
            if_missing,
        } => auth_config(&conf).and_then(|config| {
            let password = read_password()?;
            block_on(async move {
                let auth = core(config)?;
                if if_missing {
                    if let Ok(existing) = auth.find_user(&email).await {
                        println!(
                            "{} exists ({})",
                            existing.email.as_deref().unwrap_or("-"),
                            existing.id
                        );
                        return Ok(());
                    }
                }
                let user = auth
                    .create_user_with_password(&email, &password, &roles, Utc::now())
                    .await
                    .map_err(describe)?;
                println!(
                    "created {} ({}) roles: {}",
                    user.email.as_deref().unwrap_or("-"),
                    user.id,
                    user.roles.join(",")
                );
                Ok(())
            })
        }),
        UserAction::Roles {
            conf,
            email,
            add,
            remove,
        } => auth_config(&conf).and_then(|config| {
            block_on(async move {
                let auth = core(config)?;
                let user = auth.find_user(&email).await.map_err(describe)?;
                for (roles, grant) in [(&add, true), (&remove, false)] {
                    for role in roles {
                        auth.set_role(user.id, role, grant)
                            .await
                            .map_err(|e| format!("{role}: {}", describe(e)))?;
                    }
                }
                let user = auth.find_user(&email).await.map_err(describe)?;
                println!(
                    "{} ({}) roles: {}",
                    user.email.as_deref().unwrap_or("-"),
                    user.id,
                    user.roles.join(",")
                );
                Ok(())
            })
        }),
    })
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("no password on stdin".into());
    }
    Ok(password)
}
