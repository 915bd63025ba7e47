//! The open-files limit: every client connection is a file descriptor, and container runtimes
//! (containerd 2, Docker 25) start processes with a soft limit of 1,024 under a much higher
//! hard one. The edge raises its soft limit to the hard limit at start, as nginx's
//! `worker_rlimit_nofile` lets an operator do.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; logs what it did or why it could not.
pub fn raise_to_hard_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "open-files limit raised"),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "open-files limit could not be raised")
            }
        },
        Ok((soft, _)) => tracing::info!(limit = soft, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "open-files limit unknown"),
    }
}
