//! Alerts in ZooKeeper: `/alerts/<id>` holds the Alert JSON of docs/design.md §9
//! while the alert is active; when it resolves the node is rewritten with
//! state `resolved` and deleted after a linger period (or deleted at once
//! when the linger is 0).
//!
//! Only the leader writes here. The Server's `GET /api/v1/alerts` (and
//! `replicatorctl alerts`) list these nodes; a new leader adopts them.
//! Writes happen before notifications: a leader that dies between the two
//! leaves the alert stored and un-notified rather than notified twice.

use replicator_common::nodes::Alert;
use replicator_common::zk::{Zk, ZkClientError, ZkError};
use zookeeper_client::CreateMode;

/// Reads and writes `/alerts`.
#[derive(Clone, Debug)]
pub struct AlertStore {
    zk: Zk,
}

impl AlertStore {
    pub fn new(zk: Zk) -> Self {
        Self { zk }
    }

    /// Creates `/alerts` when missing.
    pub async fn ensure(&self) -> Result<(), ZkError> {
        self.zk.ensure_path(&self.zk.layout().alerts()).await
    }

    /// Every stored alert (nodes that are not Alert JSON are skipped).
    pub async fn load(&self) -> Result<Vec<Alert>, ZkError> {
        let mut out = Vec::new();
        for id in self.zk.children(&self.zk.layout().alerts()).await? {
            let Ok(path) = self.zk.layout().alert(&id) else {
                continue;
            };
            if let Some((data, _)) = self.zk.get(&path).await? {
                match serde_json::from_slice::<Alert>(&data) {
                    Ok(a) if a.id == id => out.push(a),
                    _ => {
                        tracing::warn!(alert = %id, "ignoring an alert node that is not Alert JSON")
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes (creates or replaces) the alert's node.
    pub async fn put(&self, alert: &Alert) -> Result<(), ZkError> {
        let path = self.zk.layout().alert(&alert.id)?;
        let data = serde_json::to_vec(alert).expect("alert serializes");
        let client = self.zk.client();
        match client.set_data(&path, &data, None).await {
            Ok(_) => Ok(()),
            Err(ZkClientError::NoNode) => {
                match client
                    .create(&path, &data, &self.zk.options(CreateMode::Persistent))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(ZkClientError::NodeExists) => client
                        .set_data(&path, &data, None)
                        .await
                        .map(|_| ())
                        .map_err(|e| ZkError::op("set", &path, e)),
                    Err(e) => Err(ZkError::op("create", &path, e)),
                }
            }
            Err(e) => Err(ZkError::op("set", &path, e)),
        }
    }

    /// Deletes the alert's node; a missing node is fine.
    pub async fn delete(&self, id: &str) -> Result<(), ZkError> {
        let path = self.zk.layout().alert(id)?;
        match self.zk.client().delete(&path, None).await {
            Ok(()) | Err(ZkClientError::NoNode) => Ok(()),
            Err(e) => Err(ZkError::op("delete", &path, e)),
        }
    }
}
