//! This process's instance node of one task: registration and state reports.
//!
//! The node is EPHEMERAL_SEQUENTIAL, so it vanishes with the session; its data
//! is the InstanceInfo an operator reads with `zkCli get` (state, since,
//! pid, last definite error, and the streak of transient failures while the
//! task keeps retrying).

use replicator_common::candidacy;
use replicator_common::nodes::{InstanceInfo, InstanceState, Retrying};
use replicator_common::paths::{InstanceName, TaskRef};
use replicator_common::zk::{Zk, ZkClientError, ZkError};

/// An instance node owned by this session.
#[derive(Debug, Clone)]
pub struct Instance {
    zk: Zk,
    path: String,
    /// Child name, `<host>-<seq>`.
    pub name: String,
    pub seq: i64,
    info: InstanceInfo,
}

impl Instance {
    /// Creates the instance node (and the task's parents when missing) as STANDBY.
    pub async fn register(zk: &Zk, task: &TaskRef, host: &str) -> Result<Self, ZkError> {
        zk.ensure_path(&zk.layout().instances(task)).await?;
        Self::create(zk, task, host).await
    }

    /// Creates the instance node as STANDBY under an existing instances node
    /// (NoNode when it is missing: a cold claim must not re-create a task
    /// that was just deleted).
    pub async fn create(zk: &Zk, task: &TaskRef, host: &str) -> Result<Self, ZkError> {
        let layout = zk.layout();
        let info = InstanceInfo {
            host: host.to_string(),
            pid: std::process::id(),
            state: InstanceState::Standby,
            since_ms: replicator_common::now_ms(),
            error: None,
            retrying: None,
        };
        // the host is checked as a name before it becomes part of a path
        layout.instance_prefix(task, host).map_err(|e| {
            ZkError::op(
                "create",
                &e.to_string(),
                ZkClientError::BadArguments(&"bad host"),
            )
        })?;
        let dir = layout.instances(task);
        let data = serde_json::to_vec(&info).expect("instance info serializes");
        let name = candidacy::register(zk, &dir, host, &data).await?;
        let path = format!("{dir}/{name}");
        let seq = InstanceName::parse(&name)
            .expect("a checked host and a sequence number make an instance name")
            .seq;
        Ok(Self {
            zk: zk.clone(),
            path,
            name,
            seq,
            info,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn state(&self) -> InstanceState {
        self.info.state
    }

    /// Reports `state` (and clears any error or retry streak when the state changes).
    pub async fn set_state(&mut self, state: InstanceState) -> Result<(), ZkError> {
        if self.info.state == state {
            return Ok(());
        }
        self.info.state = state;
        self.info.since_ms = replicator_common::now_ms();
        self.info.error = None;
        self.info.retrying = None;
        self.write().await
    }

    /// The current streak of transient failures, if any.
    pub fn retrying(&self) -> Option<&Retrying> {
        self.info.retrying.as_ref()
    }

    /// Records one more transient failure: the streak keeps its start and
    /// counts attempts; the error is the latest.
    pub async fn record_failure(&mut self, error: &str) -> Result<(), ZkError> {
        let now = replicator_common::now_ms();
        let streak = self.info.retrying.get_or_insert_with(|| Retrying {
            error: String::new(),
            since_ms: now,
            attempts: 0,
        });
        streak.error = error.to_string();
        streak.attempts += 1;
        self.write().await
    }

    /// Ends a streak of transient failures (the task made progress again).
    pub async fn clear_failures(&mut self) -> Result<(), ZkError> {
        if self.info.retrying.take().is_none() {
            return Ok(());
        }
        self.write().await
    }

    /// Reports an error (or clears it with `None`).
    pub async fn set_error(&mut self, error: Option<String>) -> Result<(), ZkError> {
        if self.info.error == error {
            return Ok(());
        }
        self.info.error = error;
        self.write().await
    }

    async fn write(&self) -> Result<(), ZkError> {
        let data = serde_json::to_vec(&self.info).expect("instance info serializes");
        self.zk
            .client()
            .set_data(&self.path, &data, None)
            .await
            .map(|_| ())
            .map_err(|e| ZkError::op("set", &self.path, e))
    }

    /// Deletes the node (hand-over); a missing node is fine.
    pub async fn delete(&self) -> Result<(), ZkError> {
        match self.zk.client().delete(&self.path, None).await {
            Ok(()) | Err(ZkClientError::NoNode) => Ok(()),
            Err(e) => Err(ZkError::op("delete", &self.path, e)),
        }
    }
}
