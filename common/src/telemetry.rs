//! Tracing set-up shared by the binaries.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Logs to stderr; level from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The one name of the replication lag metric, in every process that
/// exports it (Core, Server, Monitor): now minus the source time of the
/// task's last replicated event, in seconds as Prometheus recommends.
pub const TASK_LAG_SECONDS: &str = "replicator_task_lag_seconds";
