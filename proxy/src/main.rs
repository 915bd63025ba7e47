//! `edge`: the cinema's ingress, a Pingora reverse proxy configured by the files in `conf/`.

mod cli;
mod config;
mod filters;
mod observe;
mod proxy;
mod routing;
mod server;

use clap::Parser;
use std::process::ExitCode;

// mimalloc's per-thread free lists cut allocator time on the request path (see
// docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Check { conf } => match config::load(&conf) {
            Ok(c) => {
                println!(
                    "{}: ok ({} listener(s), {} route(s), {} upstream(s))",
                    conf.display(),
                    c.listeners.len(),
                    c.routes.len(),
                    c.upstreams.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
        },
        cli::Command::Health {
            url,
            ready,
            timeout,
        } => cli::health::run(&url, ready, timeout),
        cli::Command::Migrate { conf } => cli::admin::migrate(&conf),
        cli::Command::Keys { action } => cli::admin::keys(action),
        cli::Command::User { action } => cli::admin::user(action),
        cli::Command::Run {
            conf,
            upgrade,
            daemon,
        } => {
            let config = match config::load(&conf) {
                Ok(c) => c,
                Err(errors) => {
                    observe::logs::init_stderr();
                    eprintln!("edge: refusing to start: {errors}");
                    return ExitCode::from(2);
                }
            };
            let tracing = match config.tracing.as_ref().map(observe::traces::Tracing::init) {
                None => None,
                Some(Ok(t)) => Some(std::sync::Arc::new(t)),
                Some(Err(e)) => {
                    observe::logs::init_stderr();
                    eprintln!("edge: refusing to start: {e}");
                    return ExitCode::from(2);
                }
            };
            let _log_guard = observe::logs::init(&config.log, tracing.as_deref());
            match server::run(config, server::Launch { upgrade, daemon }, tracing) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "edge failed to start");
                    eprintln!("edge: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
