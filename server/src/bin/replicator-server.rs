//! `replicator-server`: flags in, [`replicator_server::run`] until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Parser;
use replicator_common::paths::{Layout, DEFAULT_ROOT};
use replicator_common::zk::ZkOptions;
use replicator_server::{read_token_file, ServerConfig};
use std::time::Duration;

/// The console of mysql-replicator: HTTP API over the task znodes.
#[derive(Parser, Debug)]
#[command(name = "replicator-server", version)]
struct Args {
    /// ZooKeeper servers, HOST:PORT[,HOST:PORT].
    #[arg(long, env = "REPLICATOR_ZK")]
    zk: String,
    /// Root znode of the system.
    #[arg(long, env = "REPLICATOR_ROOT", default_value = DEFAULT_ROOT)]
    root: String,
    /// Requested ZooKeeper session timeout.
    #[arg(long, default_value_t = 10_000)]
    zk_session_timeout_ms: u64,
    /// Digest identity USER:PASSWORD (or env REPLICATOR_ZK_AUTH); znodes get creator-only ACLs.
    #[arg(
        long,
        env = "REPLICATOR_ZK_AUTH",
        hide_env_values = true,
        conflicts_with = "zk_auth_file"
    )]
    zk_auth: Option<String>,
    /// File holding the digest identity USER:PASSWORD.
    #[arg(long)]
    zk_auth_file: Option<String>,
    /// Address to serve HTTP on (port 0: any free port, logged at start).
    #[arg(long, env = "REPLICATOR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// File holding the bearer token every API call must present.
    #[arg(long, env = "REPLICATOR_TOKEN_FILE")]
    token_file: Option<String>,
}

fn main() -> anyhow::Result<()> {
    replicator_common::telemetry::init();
    let args = Args::parse();
    let layout = Layout::new(&args.root).context("--root")?;
    let auth = match (&args.zk_auth, &args.zk_auth_file) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("--zk-auth-file {f}"))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    if auth.as_deref().is_some_and(|a| !a.contains(':')) {
        anyhow::bail!("ZooKeeper auth must be USER:PASSWORD");
    }
    let token = args
        .token_file
        .as_deref()
        .map(read_token_file)
        .transpose()?;
    if token.is_none() {
        tracing::warn!("no --token-file: the API is open to anyone who can reach it");
    }
    let config = ServerConfig {
        zk: ZkOptions {
            servers: args.zk,
            layout,
            session_timeout: Duration::from_millis(args.zk_session_timeout_ms),
            auth,
        },
        listen: args.listen,
        token,
    };
    replicator_common::shutdown::block_on(|stop| replicator_server::run(config, stop))
        .context("runtime and signal handlers")??;
    tracing::info!("stopped");
    Ok(())
}
