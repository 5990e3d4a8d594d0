//! # replicator-server
//!
//! The console of the replication bus (docs/design.md §8, §9): an HTTP API that
//! validates task configs and writes them into the task znodes, where every
//! Core of a task picks them up (live configuration); pauses, resumes,
//! switches over and deletes tasks by writing the znodes Cores watch; and
//! reports status gathered from ZooKeeper. `replicatorctl` is its command
//! line client. The server keeps no state of its own: everything is in
//! ZooKeeper, so any number of servers can run side by side and a restart
//! loses nothing.
//!
//! # Layout
//! - [`validate`]: request checks before anything is written (pure).
//! - [`status`]: task status from raw znode data (pure).
//! - [`snapshot`]: on-demand snapshot requests: checks and the control request (pure).
//! - [`alerts`]: alert listing and the watch's fire/resolve events (pure).
//! - [`metrics`]: Prometheus text (pure) and request counters.
//! - [`store`]: the task znodes: atomic create, versioned update, atomic
//!   delete, control writes; session renewal.
//! - [`api`]: the axum routes, bearer-token check, body limit.
//! - [`console`]: the web console at `/` and `GET /api/v1/cores`.
//! - [`client`]: the HTTP client of `replicatorctl`, errors to exit codes.
//! - [`render`]: tables and times for `replicatorctl` (pure).
//! - [`ctl`]: the `replicatorctl` commands.
//! - [`tail`]: `replicatorctl tail`, a Kafka consumer printing a task's topics.
//! - [`error`]: typed errors.

pub mod alerts;
pub mod api;
pub mod client;
pub mod console;
pub mod ctl;
pub mod error;
pub mod metrics;
pub mod render;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod tail;
pub mod validate;

use error::ServerError;
use replicator_common::secret::Secret;
use replicator_common::zk::ZkOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the server process needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub zk: ZkOptions,
    /// `HOST:PORT` to listen on (port 0: any free port, logged).
    pub listen: String,
    /// Bearer token required on every route but `/healthz`.
    pub token: Option<Secret>,
}

/// Reads a token file: one line, surrounding whitespace ignored.
pub fn read_token_file(path: &str) -> Result<Secret, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServerError::TokenFile {
        path: path.into(),
        reason: e.kind().to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ServerError::TokenFile {
            path: path.into(),
            reason: "it is empty".into(),
        });
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ServerError::TokenFile {
            path: path.into(),
            reason: "the token must be one word without spaces".into(),
        });
    }
    Ok(Secret::new(token))
}

/// Serves the API until `shutdown` is cancelled. Binds first (a busy port
/// fails at once), then waits for ZooKeeper, retrying every second, and
/// logs `listening` with the bound address once requests are served.
pub async fn run(config: ServerConfig, shutdown: CancellationToken) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let store = loop {
        match store::Store::open(config.zk.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open ZooKeeper; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    };
    let state = Arc::new(api::AppState {
        store,
        token: config.token.clone(),
        requests: metrics::RequestCounter::default(),
    });
    tracing::info!(
        addr = %addr,
        root = %config.zk.layout.root(),
        token = config.token.is_some(),
        zk_auth = config.zk.auth.is_some(),
        "listening"
    );
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(ServerError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files() {
        let dir = std::env::temp_dir().join(format!("tok-{}", std::process::id()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        let p = dir.display().to_string();
        assert_eq!(read_token_file(&p).unwrap().expose(), "s3cret");
        std::fs::write(&dir, "\n").unwrap();
        assert!(read_token_file(&p)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        std::fs::write(&dir, "a b").unwrap();
        assert!(read_token_file(&p).is_err());
        std::fs::remove_file(&dir).ok();
        assert!(read_token_file(&p).is_err());
    }
}
