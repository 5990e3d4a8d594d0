//! What the Monitor knows about the cluster at one instant, as plain data.
//!
//! [`crate::collect`] fills a [`Snapshot`] from ZooKeeper (and from the
//! latest source-status samples of [`crate::source`]); [`crate::rules`]
//! evaluates it without any I/O, so every rule is unit-tested on snapshots
//! built by hand. Nothing here talks to a server.

use replicator_common::config::TaskConfig;
use replicator_common::nodes::{Alert, CoreInfo, Desired, InstanceInfo, InstanceState, Progress};
use replicator_common::paths::TaskRef;
use std::collections::BTreeMap;

/// The cluster as seen by one collection pass.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every task, hot and cold, sorted by [`TaskRef`].
    pub tasks: Vec<TaskSnapshot>,
    /// Live cores (`/cores/<host>`); `None` when the node holds no valid CoreInfo.
    pub cores: BTreeMap<String, Option<CoreInfo>>,
    /// Content of `/alerts` (what the leader persisted).
    pub alerts: Vec<Alert>,
}

/// One task.
#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub task: TaskRef,
    pub config: ConfigState,
    /// From the control node; `Running` when it is missing or unreadable (as the Cores read it).
    pub desired: Desired,
    /// Instance nodes, sorted by sequence.
    pub instances: Vec<InstanceSnapshot>,
    pub context: ContextState,
    /// Latest `SHOW MASTER STATUS` of the task's source, when the monitor can query it.
    pub source: Option<SourceStatus>,
}

/// The task node's content.
#[derive(Debug, Clone)]
pub enum ConfigState {
    Valid(Box<TaskConfig>),
    /// Empty node: created by a Core before the Server wrote the config.
    Empty,
    /// Content that does not validate; the reason names every problem (never a password).
    Invalid(String),
}

impl ConfigState {
    pub fn config(&self) -> Option<&TaskConfig> {
        match self {
            ConfigState::Valid(c) => Some(c),
            _ => None,
        }
    }
}

/// The task's progress context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextState {
    Missing,
    /// Present but empty (claimed, nothing written yet) or not a valid Progress.
    Unreadable,
    Valid(Box<Progress>),
}

impl ContextState {
    pub fn progress(&self) -> Option<&Progress> {
        match self {
            ContextState::Valid(p) => Some(p),
            _ => None,
        }
    }
}

/// One instance node `<host>-<seq>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    /// Child name, `<host>-<seq>`.
    pub name: String,
    pub seq: i64,
    /// `None` when the data is not a valid InstanceInfo (being written, or hand-made).
    pub info: Option<InstanceInfo>,
}

impl InstanceSnapshot {
    pub fn state(&self) -> Option<InstanceState> {
        self.info.as_ref().map(|i| i.state)
    }
}

impl TaskSnapshot {
    /// The RUNNING instance (the smallest sequence among those reporting RUNNING).
    pub fn running(&self) -> Option<&InstanceSnapshot> {
        self.instances
            .iter()
            .filter(|i| i.state() == Some(InstanceState::Running))
            .min_by_key(|i| i.seq)
    }

    /// Whether the task is paused by its control node.
    pub fn paused(&self) -> bool {
        self.desired == Desired::Paused
    }
}

/// Where the source's binlog is (`SHOW MASTER STATUS`), sampled at `observed_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    pub file: String,
    pub pos: u64,
    /// MariaDB `@@gtid_binlog_pos` or MySQL `Executed_Gtid_Set`, when known.
    pub gtid: Option<String>,
    pub observed_ms: i64,
}
