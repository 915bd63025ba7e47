//! Command line: `edge run`, `edge check`, `edge health`, and the auth core's admin commands
//! (`migrate`, `keys`, `user`).

pub mod admin;
pub mod health;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "edge",
    version,
    about = "Edge reverse proxy of the online cinema (Pingora)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve traffic with the configuration in the conf dir.
    Run {
        /// Directory holding the *.toml conf files.
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
        /// Take over the listening sockets of a running edge, which is then told to quit with
        /// SIGQUIT: a binary upgrade without dropping connections.
        #[arg(long)]
        upgrade: bool,
        /// Detach and run in the background.
        #[arg(long)]
        daemon: bool,
    },
    /// Validate the conf dir, print every problem with its file and key, and exit.
    Check {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
    },
    /// Ask a running edge whether it is alive (`/_edge/health`) or ready (`/_edge/ready`):
    /// exit 0 on 200, 1 otherwise. For container health checks, without curl in the image.
    Health {
        /// The edge's base URL (a listener of it).
        #[arg(long, env = "EDGE_HEALTH_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Ask `/_edge/ready` (from an address in `[metrics] allow`) instead.
        #[arg(long)]
        ready: bool,
        /// Give up after this long (e.g. "2s", "500ms").
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Apply the auth core's database migrations and create login-history partitions.
    Migrate {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
    },
    /// Manage the auth core's signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage accounts of the auth core.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Add a signing key; it signs from now on, the previous one stays published until its
    /// tokens expire. Running edges pick it up within `auth.keys_reload_interval`.
    Rotate {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
    },
    /// Print the published keys (JWKS) and which one signs.
    List {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum UserAction {
    /// Create an account; the password is read from standard input.
    Create {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
        #[arg(long)]
        email: String,
        /// Read the password from stdin (one line), so it stays out of shell history and `ps`.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Roles to grant (repeatable), e.g. `--role admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Succeed without changes if the email is already registered.
        #[arg(long)]
        if_missing: bool,
    },
    /// Show an account's roles, granting `--add` and revoking `--remove` first.
    Roles {
        #[arg(long, env = "EDGE_CONF", default_value = "conf")]
        conf: PathBuf,
        #[arg(long)]
        email: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
}
