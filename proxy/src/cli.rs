//! Command line: `edge run`, `edge check`.

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
}
