//! ZooKeeper helpers on [`Stack`]: sessions through `replicator_common::zk`,
//! the same helper the processes use, or raw `zookeeper_client` sessions.
//!
//! Give each test its own root ([`crate::unique_root`]) so tests sharing one
//! ZooKeeper never see each other's nodes.

use crate::Stack;
use replicator_common::paths::Layout;
use replicator_common::zk::{connect, Zk, ZkOptions};
use std::time::Duration;

/// Session timeout of the sessions these helpers open.
pub const TEST_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

impl Stack {
    /// Options for a session of the replicator's own helper under `root`
    /// (for example from [`crate::unique_root`]); no auth, 10 s sessions.
    pub fn zk_options(&self, root: &str) -> ZkOptions {
        ZkOptions {
            servers: self.zk_connect().to_string(),
            layout: Layout::new(root).unwrap_or_else(|e| panic!("bad root {root}: {e}")),
            session_timeout: TEST_SESSION_TIMEOUT,
            auth: None,
        }
    }

    /// A session under `root`, as the processes open it. Panics when
    /// ZooKeeper cannot be reached.
    pub async fn zk(&self, root: &str) -> Zk {
        connect(&self.zk_options(root))
            .await
            .unwrap_or_else(|e| panic!("ZooKeeper session: {e}"))
    }

    /// A plain `zookeeper_client` session (no root, no ACL policy).
    pub async fn zk_client(&self) -> zookeeper_client::Client {
        zookeeper_client::Client::connector()
            .with_session_timeout(TEST_SESSION_TIMEOUT)
            .connect(self.zk_connect())
            .await
            .unwrap_or_else(|e| panic!("ZooKeeper session to {}: {e}", self.zk_connect()))
    }
}
