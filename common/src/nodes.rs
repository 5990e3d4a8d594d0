//! JSON codecs of the znodes other than the task config (docs/design.md §3, §6, §9).
//!
//! These nodes pass between processes that may run different versions during
//! a rolling upgrade, so their codecs ignore fields they do not know (a node
//! written by a newer version still reads). Only the task config, which a
//! person writes, rejects unknown fields (see [`crate::config`]).

use crate::gtid::GtidSet;
use crate::position::BinlogPos;
use serde::{Deserialize, Serialize};

/// Progress context of a task, `/…/<task>/context` (docs/design.md §6).
///
/// The position is always a transaction boundary, written only after Kafka
/// acknowledged every message before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Binlog file and offset, as the fields `file` and `pos` of the node.
    #[serde(flatten)]
    pub position: BinlogPos,
    /// GTID state at the position (MariaDB `d-s-n[,..]` or a MySQL GTID set).
    pub gtid: Option<GtidSet>,
    /// Source timestamp of the last event replicated (or of the last heartbeat when idle).
    pub event_ts_ms: i64,
    /// Row events replicated so far by this task.
    pub events: u64,
    pub updated_ms: i64,
    /// Sequence number of the instance that wrote it.
    pub epoch: i64,
    /// True when the writer stopped cleanly at this position: nothing after it
    /// reached Kafka, so the next writer needs no duplicate check.
    #[serde(default)]
    pub clean: bool,
    /// Identity of the source server the file/pos belong to
    /// (`server_uuid:<uuid>` on MySQL, `server_id:<n>` on MariaDB), with the
    /// `host:port` it was reached at. A run on another server resumes from
    /// `gtid`, never from file/pos. Absent in contexts of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SourceServer>,
    /// The control's `accept_gap` counter value this context already used
    /// (an operator acceptance of a GTID gap is used once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accepted_gap: u64,
    /// Progress of a snapshot (copy of existing rows), absent when none ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotProgress>,
}

/// The source server a context position belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceServer {
    /// `server_uuid:<uuid>` (MySQL) or `server_id:<n>` (MariaDB).
    pub id: String,
    /// `host:port` it was reached at (informative).
    #[serde(default)]
    pub addr: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Snapshot progress in the context: which tables are copied, and up to
/// which key (the last key of the last chunk Kafka fully acknowledged).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Tables in copy order.
    pub tables: Vec<SnapshotTable>,
    /// Sequence number of the next chunk (orders snapshot message positions).
    pub next_chunk: u64,
    /// Rows delivered by this snapshot so far.
    #[serde(default)]
    pub rows: u64,
    /// When this snapshot began.
    #[serde(default)]
    pub started_ms: i64,
    /// The last on-demand request (control `snapshot.seq`) taken in.
    #[serde(default)]
    pub request: u64,
}

impl SnapshotProgress {
    /// Takes in an on-demand request: each of `tables` (`db.table`) is
    /// copied again from its start. Returns the tables it added.
    pub fn take_request(&mut self, req: &SnapshotRequest, now_ms: i64) -> Vec<String> {
        if req.seq <= self.request {
            return Vec::new();
        }
        self.request = req.seq;
        if self.remaining() == 0 {
            self.started_ms = now_ms;
        }
        let mut added = Vec::new();
        for name in &req.tables {
            let Some((db, table)) = name.split_once('.') else {
                continue;
            };
            let Some(entry) = self
                .tables
                .iter_mut()
                .find(|t| t.database == db && t.table == table)
            else {
                self.tables.push(SnapshotTable {
                    database: db.to_string(),
                    table: table.to_string(),
                    ..Default::default()
                });
                added.push(name.clone());
                continue;
            };
            if entry.done {
                entry.done = false;
                entry.last_key = None;
                entry.rows = 0;
                entry.skipped = None;
                added.push(name.clone());
            }
        }
        added
    }

    /// True when `db.table` is being copied (not done).
    pub fn copying(&self, name: &str) -> bool {
        self.tables
            .iter()
            .any(|t| !t.done && format!("{}.{}", t.database, t.table) == name)
    }
}

impl SnapshotProgress {
    /// The first table not copied yet.
    pub fn current(&self) -> Option<&SnapshotTable> {
        self.tables.iter().find(|t| !t.done)
    }

    /// Tables not copied yet.
    pub fn remaining(&self) -> usize {
        self.tables.iter().filter(|t| !t.done).count()
    }
}

/// One table of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotTable {
    pub database: String,
    pub table: String,
    pub done: bool,
    /// Key of the last acknowledged row, as the source printed it (one entry
    /// per ordering column); `None` before the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key: Option<Vec<RawValue>>,
    /// Rows of this table delivered so far.
    #[serde(default)]
    pub rows: u64,
    /// Row estimate of the source (`information_schema.TABLES.TABLE_ROWS`).
    #[serde(default)]
    pub estimate: u64,
    /// Why the table was not copied (dropped during the copy, a column type
    /// snapshots do not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// How the table is read: absent for key-ordered chunks,
    /// `"single_read"` for a table without a primary key nor a unique NOT
    /// NULL key (one consistent read, streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CopyMode>,
}

/// How a table without a usable key is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyMode {
    /// One `START TRANSACTION WITH CONSISTENT SNAPSHOT` read of the whole
    /// table, streamed in pieces of the chunk size.
    SingleRead,
}

/// A column value as the source sent it: text, or base64 of bytes that
/// are not UTF-8 (`{"b64": "..."}`), or null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    Null,
    Text(String),
    Bytes { b64: String },
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn requests_restart_done_tables_once() {
        let mut p = SnapshotProgress {
            tables: vec![SnapshotTable {
                database: "d".into(),
                table: "t".into(),
                done: true,
                last_key: Some(vec![RawValue::Text("9".into())]),
                rows: 9,
                ..Default::default()
            }],
            next_chunk: 5,
            ..Default::default()
        };
        let req = SnapshotRequest {
            seq: 1,
            tables: vec!["d.t".into(), "d.u".into()],
        };
        assert_eq!(p.take_request(&req, 7), vec!["d.t", "d.u"]);
        assert_eq!(p.remaining(), 2);
        assert_eq!(p.started_ms, 7);
        assert!(p.copying("d.t") && p.copying("d.u"));
        assert_eq!(p.tables[0].last_key, None);
        assert_eq!(p.next_chunk, 5, "chunk numbers keep growing");
        assert!(p.take_request(&req, 8).is_empty(), "handled once");
    }
}

/// State of an instance (docs/design.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InstanceState {
    Running,
    Standby,
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InstanceState::Running => "RUNNING",
            InstanceState::Standby => "STANDBY",
        })
    }
}

/// Data of an instance node `/…/<task>/instances/<host>-<seq>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub host: String,
    pub pid: u32,
    pub state: InstanceState,
    pub since_ms: i64,
    /// The definite error that stopped the task (or why a standby is not ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set while the RUNNING instance keeps failing with transient errors;
    /// cleared once a run commits progress again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<Retrying>,
}

/// A task that keeps failing and retrying from its context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrying {
    /// The last transient error.
    pub error: String,
    /// When the first failure of this streak happened.
    pub since_ms: i64,
    /// Failed runs in this streak.
    pub attempts: u32,
}

/// Desired state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    #[default]
    Running,
    Paused,
}

/// `/…/<task>/control`: what the Server asks of the task's Cores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Control {
    #[serde(default)]
    pub desired: Desired,
    /// Bumped to ask the RUNNING instance to hand over to the next one.
    #[serde(default)]
    pub switchover: u64,
    /// Bumped by an operator to accept the GTID gap a task stopped on after a
    /// source failover (`replicatorctl task accept-gap NAME`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accept_gap: u64,
    /// The latest on-demand snapshot request (re-copy of tables while the
    /// stream goes on); the Core handles each `seq` once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRequest>,
}

/// An on-demand snapshot request in the control node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// Bumped by each request.
    pub seq: u64,
    /// Tables as `db.table`.
    pub tables: Vec<String>,
}

/// `/cores/<host>`: a live Core and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreInfo {
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub groups: Vec<String>,
    /// Tasks this Core runs, as `task` (hot) or `group/task` (cold).
    pub tasks: Vec<String>,
    pub load: u32,
    pub heartbeat_ms: i64,
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Alert lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// `/alerts/<id>` (docs/design.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    pub severity: Severity,
    pub state: AlertState,
    pub since_ms: i64,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_matches_the_design() {
        let p: Progress = serde_json::from_str(
            r#"{"file": "mysql-bin.000003", "pos": 4711, "gtid": "0-1-42", "event_ts_ms": 1,
                "events": 2, "updated_ms": 3, "epoch": 4}"#,
        )
        .unwrap();
        assert_eq!(p.position, BinlogPos::new("mysql-bin.000003", 4711));
        assert_eq!(p.gtid, Some("0-1-42".parse().unwrap()));
        assert!(!p.clean);
        // a field of a newer version is ignored, a missing required one is not
        let newer: Progress = serde_json::from_str(
            r#"{"file": "x", "pos": 1, "gtid": null, "event_ts_ms": 0, "events": 0,
                "updated_ms": 0, "epoch": 1, "junk": {"a": 1}}"#,
        )
        .unwrap();
        assert_eq!(newer.position.pos, 1);
        assert!(serde_json::from_str::<Progress>(r#"{"file": "x", "pos": 1}"#).is_err());
        // an old context has no server identity and no accepted gap
        assert_eq!(newer.server, None);
        assert_eq!(newer.accepted_gap, 0);
        let with_server = Progress {
            server: Some(SourceServer {
                id: "server_id:2".into(),
                addr: "db2:3306".into(),
            }),
            accepted_gap: 3,
            ..newer.clone()
        };
        let text = serde_json::to_string(&with_server).unwrap();
        assert!(
            text.contains(r#""server":{"id":"server_id:2","addr":"db2:3306"}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Progress>(&text).unwrap(),
            with_server
        );
        assert!(!serde_json::to_string(&newer).unwrap().contains("server"));
    }

    /// The context node is the on-disk contract: these bytes are what
    /// every earlier version wrote (file and pos as top-level fields, the
    /// GTID set as the server's text), so old and new Cores read each other.
    #[test]
    fn progress_bytes_are_unchanged() {
        let mysql = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-120:125";
        let cases = [
            (
                r#"{"file":"mysql-bin.000003","pos":4711,"gtid":"0-1-42,1-2-7","event_ts_ms":1,"events":2,"updated_ms":3,"epoch":4,"clean":true,"server":{"id":"server_id:2","addr":"db2:3306"},"accepted_gap":3}"#.to_string(),
                "0-1-42,1-2-7",
            ),
            (
                format!(
                    r#"{{"file":"binlog.000001","pos":4,"gtid":"{mysql}","event_ts_ms":0,"events":0,"updated_ms":0,"epoch":1,"clean":false}}"#
                ),
                mysql,
            ),
            (
                r#"{"file":"","pos":0,"gtid":null,"event_ts_ms":0,"events":0,"updated_ms":0,"epoch":1,"clean":false,"snapshot":{"tables":[{"database":"d","table":"t","done":false,"last_key":["7",null,{"b64":"AA=="}],"rows":1,"estimate":9}],"next_chunk":2,"rows":1,"started_ms":5,"request":0}}"#.to_string(),
                "",
            ),
        ];
        for (bytes, gtid) in cases {
            let p: Progress = serde_json::from_str(&bytes).unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), bytes);
            assert_eq!(
                p.gtid.as_ref().map(ToString::to_string).unwrap_or_default(),
                gtid
            );
        }
        // a GTID that is not one is a bad context, not a silent None
        let bad = r#"{"file":"f.1","pos":4,"gtid":"0-1","event_ts_ms":0,"events":0,"updated_ms":0,"epoch":1}"#;
        assert!(serde_json::from_str::<Progress>(bad).is_err());
    }

    #[test]
    fn instance_and_control_codecs() {
        let i = InstanceInfo {
            host: "h1".into(),
            pid: 7,
            state: InstanceState::Running,
            since_ms: 5,
            error: None,
            retrying: None,
        };
        let s = serde_json::to_string(&i).unwrap();
        assert_eq!(s, r#"{"host":"h1","pid":7,"state":"RUNNING","since_ms":5}"#);
        let c: Control = serde_json::from_str(r#"{"desired": "paused"}"#).unwrap();
        assert_eq!(
            c,
            Control {
                desired: Desired::Paused,
                switchover: 0,
                accept_gap: 0,
                snapshot: None,
            }
        );
        assert!(serde_json::from_str::<Control>(r#"{"desired": "sleeping"}"#).is_err());
    }
}
