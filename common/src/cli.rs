//! Command-line flags every process shares (docs/design.md §9): how to reach
//! ZooKeeper and under which root.

use crate::paths::{Layout, PathError, DEFAULT_ROOT};
use crate::zk::ZkOptions;
use std::time::Duration;

/// `--zk`, `--root`, `--zk-session-timeout-ms`, `--zk-auth`.
#[derive(clap::Args, Debug, Clone)]
pub struct ZkArgs {
    /// ZooKeeper servers, HOST:PORT[,HOST:PORT].
    #[arg(long, env = "REPLICATOR_ZK")]
    pub zk: String,
    /// Root znode of the system.
    #[arg(long, env = "REPLICATOR_ROOT", default_value = DEFAULT_ROOT)]
    pub root: String,
    /// Requested ZooKeeper session timeout; a crashed process is replaced after about this long.
    #[arg(long, default_value_t = 10_000)]
    pub zk_session_timeout_ms: u64,
    /// Digest identity USER:PASSWORD (or env REPLICATOR_ZK_AUTH); znodes get creator-only ACLs.
    #[arg(long, env = "REPLICATOR_ZK_AUTH", hide_env_values = true)]
    pub zk_auth: Option<String>,
}

impl ZkArgs {
    /// Session options, with the root validated.
    pub fn options(&self) -> Result<ZkOptions, PathError> {
        Ok(ZkOptions {
            servers: self.zk.clone(),
            layout: Layout::new(&self.root)?,
            session_timeout: Duration::from_millis(self.zk_session_timeout_ms),
            auth: self.zk_auth.clone(),
        })
    }
}
