//! Task status, assembled from raw znode data, pure.
//!
//! In: a [`RawTask`] (the bytes and version of the task node and of its
//! instances, context and control children, as read by [`crate::store`]) and
//! the current time. Out: a [`TaskStatus`], the JSON that `GET /tasks` and
//! `GET /tasks/{name}` return and that `replicatorctl` renders. Malformed
//! znodes (edited by hand, written by an older version) never fail the
//! request: they show up as `UNKNOWN` instances, a missing progress or a
//! `config_error`. The config is always shown through
//! [`TaskConfig::redacted`], so a stored password never leaves the server.

use replicator_common::gtid::GtidSet;
use replicator_common::nodes::{
    Control, CopyMode, Desired, InstanceInfo, Progress, Retrying, SnapshotProgress,
};
use replicator_common::paths::{InstanceName, TaskRef};
use replicator_common::task_node::{parse_task_node, TaskNodeError};
use serde::{Deserialize, Serialize};

/// The znodes of one task as read from ZooKeeper.
#[derive(Debug, Clone)]
pub struct RawTask {
    pub task: TaskRef,
    /// Data of the task node (empty when a Core registered the task before
    /// the Server configured it).
    pub config: Vec<u8>,
    /// Data version of the task node, the task's version in the API.
    pub version: i32,
    /// Instance children and their data (`None`: vanished while reading).
    pub instances: Vec<(String, Option<Vec<u8>>)>,
    pub context: Option<Vec<u8>>,
    pub control: Option<Vec<u8>>,
}

/// One-word summary of a task, for tables and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Summary {
    /// A RUNNING instance without error.
    Running,
    /// Desired state is paused.
    Paused,
    /// The RUNNING instance reports a definite error.
    Failing,
    /// The RUNNING instance keeps failing with transient errors (and retrying).
    Retrying,
    /// Instances exist but none is RUNNING yet.
    Starting,
    /// No instance serves the task.
    Down,
    /// The task node holds no valid config.
    Unconfigured,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).expect("summary serializes");
        f.write_str(s.as_str().unwrap_or("?"))
    }
}

/// One instance of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Child name, `<host>-<seq>`.
    pub id: String,
    pub host: String,
    pub seq: Option<i64>,
    /// `RUNNING`, `STANDBY` or `UNKNOWN` (data not readable).
    pub state: String,
    pub since_ms: Option<i64>,
    pub pid: Option<u32>,
    /// The definite error that stopped the task (or why a standby is not ready).
    pub error: Option<String>,
    /// The streak of transient failures of a RUNNING instance that keeps retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<Retrying>,
}

/// The progress context of a task, with its lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressStatus {
    /// `file:pos`.
    pub position: String,
    pub file: String,
    pub pos: u64,
    pub gtid: Option<GtidSet>,
    pub event_ts_ms: i64,
    /// Now minus the source time of the last event (or heartbeat).
    pub lag_ms: Option<i64>,
    pub events: u64,
    pub updated_ms: i64,
    pub epoch: i64,
    /// Progress of a snapshot, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotStatus>,
}

/// A snapshot's progress for people: what is being copied, how far, how fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    /// `db.table` being copied; `None` when done.
    pub table: Option<String>,
    /// Rows copied of that table and its row estimate (information_schema).
    pub table_rows: u64,
    pub table_estimate: u64,
    /// Rows copied in all, and the estimate of all tables of the snapshot.
    pub rows: u64,
    pub estimate: u64,
    pub tables: usize,
    pub tables_done: usize,
    /// Rows per second since the snapshot began (until the context's last write).
    pub rows_per_s: Option<u64>,
    /// Seconds left at that rate (from the estimate).
    pub eta_s: Option<u64>,
    /// `db.table: reason` of tables not copied.
    pub skipped: Vec<String>,
    /// `db.table` of tables without a usable key, copied in one consistent
    /// read (`mode: single_read` in the context).
    pub single_read: Vec<String>,
}

impl SnapshotStatus {
    /// The status of `p` as written at `updated_ms`.
    pub fn of(p: &SnapshotProgress, updated_ms: i64) -> SnapshotStatus {
        let current = p.current();
        let estimate: u64 = p.tables.iter().map(|t| t.estimate.max(t.rows)).sum();
        let elapsed_ms = (updated_ms - p.started_ms).max(0) as u64;
        let rows_per_s = (elapsed_ms >= 1000 && p.rows > 0).then(|| p.rows * 1000 / elapsed_ms);
        let eta_s = match (current, rows_per_s) {
            (None, _) => Some(0),
            (Some(_), Some(r)) if r > 0 => Some(estimate.saturating_sub(p.rows) / r),
            _ => None,
        };
        SnapshotStatus {
            table: current.map(|t| format!("{}.{}", t.database, t.table)),
            table_rows: current.map_or(0, |t| t.rows),
            table_estimate: current.map_or(0, |t| t.estimate),
            rows: p.rows,
            estimate,
            tables: p.tables.len(),
            tables_done: p.tables.len() - p.remaining(),
            rows_per_s,
            eta_s,
            skipped: p
                .tables
                .iter()
                .filter_map(|t| {
                    t.skipped
                        .as_ref()
                        .map(|r| format!("{}.{}: {r}", t.database, t.table))
                })
                .collect(),
            single_read: p
                .tables
                .iter()
                .filter(|t| t.mode == Some(CopyMode::SingleRead))
                .map(|t| format!("{}.{}", t.database, t.table))
                .collect(),
        }
    }
}

/// Everything the API tells about a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub name: String,
    pub group: Option<String>,
    /// ZooKeeper data version of the task node; send it back in `If-Match`.
    pub version: i32,
    pub state: Summary,
    pub desired: Desired,
    pub switchover: u64,
    /// Ordered by sequence: the first one runs.
    pub instances: Vec<InstanceStatus>,
    pub progress: Option<ProgressStatus>,
    /// The config with the password replaced by `***`.
    pub config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

impl TaskStatus {
    /// The RUNNING instance, if any.
    pub fn running(&self) -> Option<&InstanceStatus> {
        self.instances.iter().find(|i| i.state == "RUNNING")
    }
}

/// Builds the status of a task from its znodes at time `now_ms`.
pub fn assemble(raw: &RawTask, now_ms: i64) -> TaskStatus {
    let (config, config_error) = match parse_task_node(&raw.config, &raw.task) {
        Ok(mut cfg) => {
            // the serde-only default start cannot be serialized: name it
            cfg.source.start = cfg.source.start.normalized();
            (Some(cfg.redacted()), None)
        }
        Err(e) => (None, Some(config_problem(&e))),
    };
    let control = raw
        .control
        .as_deref()
        .filter(|d| !is_blank(d))
        .and_then(|d| serde_json::from_slice::<Control>(d).ok())
        .unwrap_or_default();
    let mut instances: Vec<InstanceStatus> = raw
        .instances
        .iter()
        .filter_map(|(id, data)| data.as_ref().map(|d| instance(id, d)))
        .collect();
    instances.sort_by_key(|i| (i.seq.unwrap_or(i64::MAX), i.id.clone()));
    let progress = raw
        .context
        .as_deref()
        .and_then(|d| serde_json::from_slice::<Progress>(d).ok())
        .map(|p| ProgressStatus {
            position: p.position.to_string(),
            lag_ms: (p.event_ts_ms > 0).then(|| (now_ms - p.event_ts_ms).max(0)),
            file: p.position.file,
            pos: p.position.pos,
            gtid: p.gtid,
            event_ts_ms: p.event_ts_ms,
            events: p.events,
            updated_ms: p.updated_ms,
            epoch: p.epoch,
            snapshot: p
                .snapshot
                .as_ref()
                .map(|sp| SnapshotStatus::of(sp, p.updated_ms)),
        });
    let mut status = TaskStatus {
        name: raw.task.name().to_string(),
        group: raw.task.group().map(str::to_string),
        version: raw.version,
        state: Summary::Down,
        desired: control.desired,
        switchover: control.switchover,
        instances,
        progress,
        config,
        config_error,
    };
    status.state = summarize(&status);
    status
}

fn summarize(s: &TaskStatus) -> Summary {
    if s.config.is_none() {
        return Summary::Unconfigured;
    }
    if s.desired == Desired::Paused {
        return Summary::Paused;
    }
    match s.running() {
        Some(r) if r.error.is_some() => Summary::Failing,
        Some(r) if r.retrying.is_some() => Summary::Retrying,
        Some(_) => Summary::Running,
        None if s.instances.is_empty() => Summary::Down,
        None => Summary::Starting,
    }
}

fn is_blank(d: &[u8]) -> bool {
    d.iter().all(u8::is_ascii_whitespace)
}

/// What the status says about a task node without a usable config.
fn config_problem(e: &TaskNodeError) -> String {
    match e {
        TaskNodeError::Empty => "not configured: a Core registered this task before it was \
                                 created; create it with POST /api/v1/tasks"
            .into(),
        e => e.to_string(),
    }
}

fn instance(id: &str, data: &[u8]) -> InstanceStatus {
    let parsed = InstanceName::parse(id);
    let seq = parsed.as_ref().map(|n| n.seq);
    match serde_json::from_slice::<InstanceInfo>(data) {
        Ok(info) => InstanceStatus {
            id: id.to_string(),
            host: info.host,
            seq,
            state: info.state.to_string(),
            since_ms: Some(info.since_ms),
            pid: Some(info.pid),
            error: info.error,
            retrying: info.retrying,
        },
        Err(_) => InstanceStatus {
            id: id.to_string(),
            host: parsed.map(|n| n.host).unwrap_or_default(),
            seq,
            state: "UNKNOWN".into(),
            since_ms: None,
            pid: None,
            error: None,
            retrying: None,
        },
    }
}

#[cfg(test)]
mod snapshot_status_tests {
    use super::*;
    use replicator_common::nodes::SnapshotTable;

    #[test]
    fn progress_rate_and_eta() {
        let p = SnapshotProgress {
            tables: vec![
                SnapshotTable {
                    database: "d".into(),
                    table: "a".into(),
                    done: true,
                    rows: 1000,
                    estimate: 900,
                    ..Default::default()
                },
                SnapshotTable {
                    database: "d".into(),
                    table: "b".into(),
                    rows: 3000,
                    estimate: 10_000,
                    mode: Some(CopyMode::SingleRead),
                    ..Default::default()
                },
                SnapshotTable {
                    database: "d".into(),
                    table: "c".into(),
                    done: true,
                    skipped: Some("no key".into()),
                    ..Default::default()
                },
            ],
            rows: 4000,
            started_ms: 10_000,
            ..Default::default()
        };
        let s = SnapshotStatus::of(&p, 12_000);
        assert_eq!(s.table.as_deref(), Some("d.b"));
        assert_eq!((s.table_rows, s.table_estimate), (3000, 10_000));
        assert_eq!((s.rows, s.estimate), (4000, 11_000));
        assert_eq!((s.tables_done, s.tables), (2, 3));
        assert_eq!(s.rows_per_s, Some(2000));
        assert_eq!(s.eta_s, Some(3), "7000 rows left at 2000 rows/s");
        assert_eq!(s.skipped, vec!["d.c: no key"]);
        assert_eq!(s.single_read, vec!["d.b"]);
        let just_started = SnapshotStatus::of(&p, 10_500);
        assert_eq!((just_started.rows_per_s, just_started.eta_s), (None, None));
        let mut done = p.clone();
        done.tables[1].done = true;
        assert_eq!(SnapshotStatus::of(&done, 12_000).eta_s, Some(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw() -> RawTask {
        let cfg = json!({"name": "orders",
            "source": {"host": "db", "user": "repl", "password": "hunter2", "server_id": 7},
            "sink": {"brokers": "k:9092"}});
        RawTask {
            task: TaskRef::hot("orders").unwrap(),
            config: cfg.to_string().into_bytes(),
            version: 3,
            instances: vec![
                (
                    "h2-0000000007".into(),
                    Some(br#"{"host":"h2","pid":12,"state":"STANDBY","since_ms":50}"#.to_vec()),
                ),
                (
                    "h1-0000000002".into(),
                    Some(br#"{"host":"h1","pid":11,"state":"RUNNING","since_ms":40}"#.to_vec()),
                ),
                ("gone-0000000009".into(), None),
            ],
            context: Some(
                br#"{"file":"mysql-bin.000003","pos":4711,"gtid":"0-1-42","event_ts_ms":1000,
                    "events":17,"updated_ms":1200,"epoch":2,"clean":false}"#
                    .to_vec(),
            ),
            control: Some(br#"{"desired":"running","switchover":4}"#.to_vec()),
        }
    }

    #[test]
    fn assembles_a_running_task() {
        let s = assemble(&raw(), 1500);
        assert_eq!(s.state, Summary::Running);
        assert_eq!(s.version, 3);
        assert_eq!(s.switchover, 4);
        assert_eq!(s.instances.len(), 2);
        assert_eq!(s.instances[0].host, "h1", "ordered by sequence");
        assert_eq!(s.running().unwrap().pid, Some(11));
        let p = s.progress.as_ref().unwrap();
        assert_eq!(p.position, "mysql-bin.000003:4711");
        assert_eq!(p.lag_ms, Some(500));
        assert_eq!(p.events, 17);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(s.config.as_ref().unwrap()["source"]["password"], "***");
        // the status round-trips for replicatorctl
        let back: TaskStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn summaries() {
        let mut r = raw();
        r.control = Some(br#"{"desired":"paused","switchover":0}"#.to_vec());
        assert_eq!(assemble(&r, 0).state, Summary::Paused);
        let mut r = raw();
        r.instances[1].1 = Some(
            br#"{"host":"h1","pid":11,"state":"RUNNING","since_ms":40,"error":"binlog gone"}"#
                .to_vec(),
        );
        let s = assemble(&r, 0);
        assert_eq!(s.state, Summary::Failing);
        assert_eq!(s.running().unwrap().error.as_deref(), Some("binlog gone"));
        let mut r = raw();
        r.instances.remove(1);
        assert_eq!(assemble(&r, 0).state, Summary::Starting);
        r.instances.clear();
        assert_eq!(assemble(&r, 0).state, Summary::Down);
    }

    #[test]
    fn a_running_instance_that_keeps_failing_is_retrying() {
        // written by a newer Core: a field this version does not know is ignored
        let mut r = raw();
        r.instances[1].1 = Some(
            br#"{"host":"h1","pid":11,"state":"RUNNING","since_ms":40,
                 "retrying":{"error":"no reachable broker in `k:9092`","since_ms":100,"attempts":7},
                 "cpu":{"load":0.5}}"#
                .to_vec(),
        );
        let s = assemble(&r, 0);
        assert_eq!(s.state, Summary::Retrying);
        let streak = s.running().unwrap().retrying.as_ref().unwrap();
        assert_eq!(streak.attempts, 7);
        assert_eq!(streak.since_ms, 100);
        assert!(streak.error.contains("no reachable broker"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "retrying");
        assert_eq!(json["instances"][0]["retrying"]["attempts"], 7);
        assert!(
            json["instances"][1].get("retrying").is_none(),
            "absent when there is no streak: {json}"
        );
        // a definite error wins
        r.instances[1].1 = Some(
            br#"{"host":"h1","pid":11,"state":"RUNNING","since_ms":40,"error":"binlog gone",
                 "retrying":{"error":"timeout","since_ms":100,"attempts":2}}"#
                .to_vec(),
        );
        assert_eq!(assemble(&r, 0).state, Summary::Failing);
        // a streak on a standby does not make the task retrying
        let mut r = raw();
        r.instances[0].1 = Some(
            br#"{"host":"h2","pid":12,"state":"STANDBY","since_ms":50,
                 "retrying":{"error":"timeout","since_ms":100,"attempts":2}}"#
                .to_vec(),
        );
        assert_eq!(assemble(&r, 0).state, Summary::Running);
    }

    #[test]
    fn tolerates_missing_and_malformed_nodes() {
        let mut r = raw();
        r.config = Vec::new();
        r.context = Some(b"garbage".to_vec());
        r.control = Some(b"".to_vec());
        r.instances = vec![("h9-0000000001".into(), Some(b"{".to_vec()))];
        let s = assemble(&r, 0);
        assert_eq!(s.state, Summary::Unconfigured);
        assert!(s.config.is_none());
        assert!(s.config_error.as_ref().unwrap().contains("not configured"));
        assert!(s.progress.is_none());
        assert_eq!(s.desired, Desired::Running);
        assert_eq!(s.instances[0].state, "UNKNOWN");
        assert_eq!(s.instances[0].host, "h9");
        let mut r = raw();
        r.config = br#"{"name": "other", "source": {}, "sink": {}}"#.to_vec();
        assert!(assemble(&r, 0).config_error.is_some());
    }

    #[test]
    fn lag_is_unknown_before_the_first_event_and_never_negative() {
        let mut r = raw();
        r.context = Some(
            br#"{"file":"f","pos":4,"gtid":null,"event_ts_ms":0,"events":0,"updated_ms":1,"epoch":1}"#
                .to_vec(),
        );
        assert_eq!(assemble(&r, 10).progress.unwrap().lag_ms, None);
        assert_eq!(
            assemble(&raw(), 10).progress.unwrap().lag_ms,
            Some(0),
            "clock skew"
        );
    }
}
