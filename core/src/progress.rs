//! Progress context: where a task resumes (docs/design.md §6).
//!
//! Flow in: [`Checkpoint`]s of transactions whose every message Kafka
//! acknowledged (from the sink's delivery tracker). Flow out: version-checked
//! `setData` of `/…/<task>/context`. The first write of a new RUNNING
//! instance claims the context (its epoch, `clean: false`); any later
//! `BadVersion` means another instance took over: the writer is fenced and
//! must stop producing at once. A write unanswered within the lease (2/3 of
//! the session timeout: ZooKeeper cut off) ends as `LeaseLost` instead of
//! waiting for a reconnection. After a crash the context is simply behind
//! what reached Kafka; the duplicate check on resume covers the gap.

use crate::error::{ConfigError, TaskError, TransientError};
use replicator_common::gtid::GtidSet;
use replicator_common::nodes::{Progress, SnapshotProgress, SourceServer};
use replicator_common::position::BinlogPos;
use replicator_common::zk::{Zk, ZkClientError};
use std::sync::Arc;

/// A transaction boundary: resume point after a fully acknowledged transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub pos: BinlogPos,
    /// The GTID state after the transaction (MariaDB: newest per domain;
    /// MySQL: the executed set); `None` on a source without GTIDs.
    pub gtid: Option<GtidSet>,
    pub event_ts_ms: i64,
    pub events: u64,
    /// Snapshot progress reached with this checkpoint (shared: every
    /// transaction's checkpoint carries it).
    pub snapshot: Option<Arc<SnapshotProgress>>,
}

impl Checkpoint {
    pub fn from_progress(p: &Progress) -> Self {
        Self {
            pos: p.position.clone(),
            gtid: p.gtid.clone(),
            event_ts_ms: p.event_ts_ms,
            events: p.events,
            snapshot: p.snapshot.clone().map(Arc::new),
        }
    }

    /// The context node for this checkpoint.
    pub fn to_progress(&self, epoch: i64, clean: bool) -> Progress {
        Progress {
            position: self.pos.clone(),
            gtid: self.gtid.clone(),
            event_ts_ms: self.event_ts_ms,
            events: self.events,
            updated_ms: replicator_common::now_ms(),
            epoch,
            clean,
            server: None,
            accepted_gap: 0,
            snapshot: self.snapshot.as_deref().cloned(),
        }
    }
}

/// What the context node holds.
#[derive(Debug)]
pub enum Stored {
    /// No context yet (new task) or an empty node.
    Empty {
        version: i32,
    },
    Valid {
        progress: Progress,
        version: i32,
    },
    /// Edited by hand into something that does not parse: a definite error.
    Invalid(ConfigError),
}

/// Reads the context node at `path`, creating it empty when absent.
pub async fn read(zk: &Zk, path: &str) -> Result<Stored, TaskError> {
    zk.create_if_absent(path, b"").await?;
    let (data, version) = zk
        .get(path)
        .await?
        .ok_or_else(|| TransientError::ContextVanished {
            path: path.to_string(),
        })?;
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Stored::Empty { version });
    }
    match serde_json::from_slice::<Progress>(&data) {
        Ok(progress) => Ok(Stored::Valid { progress, version }),
        Err(source) => Ok(Stored::Invalid(ConfigError::Context {
            path: path.to_string(),
            source,
        })),
    }
}

/// Version-checked writer of one task's context.
pub struct ContextWriter {
    zk: Zk,
    path: String,
    version: i32,
    epoch: i64,
    last: Option<Checkpoint>,
    /// The source server positions belong to, and the accepted gap counter.
    server: Option<SourceServer>,
    accepted_gap: u64,
}

impl ContextWriter {
    pub fn new(zk: Zk, path: String, version: i32, epoch: i64) -> Self {
        Self {
            zk,
            path,
            version,
            epoch,
            last: None,
            server: None,
            accepted_gap: 0,
        }
    }

    /// Every later write records `server` as the source of its positions and
    /// `accepted_gap` as the last gap acceptance used.
    pub fn set_source(&mut self, server: SourceServer, accepted_gap: u64) {
        self.server = Some(server);
        self.accepted_gap = accepted_gap;
    }

    /// Writes `cp` unless it is what was written last (or `force`).
    pub async fn write(
        &mut self,
        cp: &Checkpoint,
        clean: bool,
        force: bool,
    ) -> Result<(), TaskError> {
        if !force && !clean && self.last.as_ref() == Some(cp) {
            return Ok(());
        }
        let mut progress = cp.to_progress(self.epoch, clean);
        progress.server = self.server.clone();
        progress.accepted_gap = self.accepted_gap;
        let data = serde_json::to_vec(&progress).expect("progress serializes");
        // A request to a server this process cannot reach waits for a
        // reconnection that may never come in time (a partition): bound it
        // by the lease, whose lapse it means.
        let bound = self.zk.session_timeout() * 2 / 3;
        let set = self
            .zk
            .client()
            .set_data(&self.path, &data, Some(self.version));
        let Ok(result) = tokio::time::timeout(bound, set).await else {
            tracing::warn!(path = %self.path, waited_ms = bound.as_millis() as u64,
                "context write unanswered within the lease; stopping");
            return Err(TaskError::LeaseLost);
        };
        match result {
            Ok(stat) => {
                self.version = stat.version;
                self.last = Some(cp.clone());
                Ok(())
            }
            Err(ZkClientError::BadVersion) => {
                let seen = self
                    .zk
                    .get(&self.path)
                    .await
                    .ok()
                    .flatten()
                    .map(|(_, v)| v)
                    .unwrap_or(-1);
                Err(TaskError::Fenced {
                    expected: self.version,
                    seen,
                })
            }
            Err(source) => Err(TransientError::ContextWrite {
                path: self.path.clone(),
                source,
            }
            .into()),
        }
    }

    pub fn last(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }
}
