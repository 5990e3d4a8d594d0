//! Prometheus text exposition of the cluster as the monitor sees it, pure.
//!
//! Rendered once per pass from the snapshot and the active alerts, and
//! served as is by `GET /metrics`. Label values are task names
//! (`group/task` for cold tasks), host names and rule names: all
//! `[A-Za-z0-9_./-]`, so they need no escaping.

use crate::alert::Rule;
use crate::snapshot::Snapshot;
use replicator_common::nodes::Alert;
use std::fmt::Write;

/// Gauge, one series per task and state (`running`, `paused`, `not_running`): 1 for the task's state.
pub const TASK_STATE: &str = "replicator_task_state";
/// Gauge: instance nodes of the task.
pub const TASK_INSTANCES: &str = "replicator_task_instances";
/// Gauge: `now - event_ts_ms` of the task's context, in seconds.
pub use replicator_common::telemetry::TASK_LAG_SECONDS;
/// Counter: row events the task replicated (from its context).
pub const TASK_EVENTS_TOTAL: &str = "replicator_task_events_total";
/// Gauge: live cores under `/cores`.
pub const CORES_LIVE: &str = "replicator_cores_live";
/// Gauge, per rule: active alerts.
pub const ALERTS_FIRING: &str = "replicator_alerts_firing";
/// Gauge: 1 when this monitor is the leader.
pub const MONITOR_LEADER: &str = "replicator_monitor_leader";
/// Counter, per channel and outcome (`sent`, `failed`, `dropped`): notifications.
pub const NOTIFICATIONS_TOTAL: &str = "replicator_monitor_notifications_total";

/// Everything the page shows.
pub struct MetricsInput<'a> {
    pub snapshot: &'a Snapshot,
    pub alerts: &'a [Alert],
    pub leader: bool,
    /// `(channel, outcome, count)`.
    pub notifications: Vec<(&'static str, &'static str, u64)>,
    pub now_ms: i64,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text.
pub fn render(m: &MetricsInput<'_>) -> String {
    let mut out = String::new();
    let tasks = &m.snapshot.tasks;
    header(
        &mut out,
        TASK_STATE,
        "gauge",
        "State of each task: 1 for its current state.",
    );
    for t in tasks {
        let state = if t.paused() {
            "paused"
        } else if t.running().is_some() {
            "running"
        } else {
            "not_running"
        };
        for s in ["running", "paused", "not_running"] {
            let _ = writeln!(
                out,
                "{TASK_STATE}{{task=\"{}\",state=\"{s}\"}} {}",
                t.task,
                u8::from(s == state)
            );
        }
    }
    header(
        &mut out,
        TASK_INSTANCES,
        "gauge",
        "Instance nodes of each task.",
    );
    for t in tasks {
        let _ = writeln!(
            out,
            "{TASK_INSTANCES}{{task=\"{}\"}} {}",
            t.task,
            t.instances.len()
        );
    }
    header(
        &mut out,
        TASK_LAG_SECONDS,
        "gauge",
        "Time since the newest event the task replicated.",
    );
    for t in tasks {
        if let Some(p) = t.context.progress().filter(|p| p.event_ts_ms > 0) {
            let lag = (m.now_ms - p.event_ts_ms).max(0) as f64 / 1000.0;
            let _ = writeln!(out, "{TASK_LAG_SECONDS}{{task=\"{}\"}} {lag:.3}", t.task);
        }
    }
    header(
        &mut out,
        TASK_EVENTS_TOTAL,
        "counter",
        "Row events replicated by each task.",
    );
    for t in tasks {
        if let Some(p) = t.context.progress() {
            let _ = writeln!(
                out,
                "{TASK_EVENTS_TOTAL}{{task=\"{}\"}} {}",
                t.task, p.events
            );
        }
    }
    header(
        &mut out,
        CORES_LIVE,
        "gauge",
        "Cores registered under /cores.",
    );
    let _ = writeln!(out, "{CORES_LIVE} {}", m.snapshot.cores.len());
    header(&mut out, ALERTS_FIRING, "gauge", "Active alerts per rule.");
    for r in Rule::ALL {
        let n = m.alerts.iter().filter(|a| a.rule == r.name()).count();
        let _ = writeln!(out, "{ALERTS_FIRING}{{rule=\"{r}\"}} {n}");
    }
    header(
        &mut out,
        MONITOR_LEADER,
        "gauge",
        "1 when this monitor is the leader.",
    );
    let _ = writeln!(out, "{MONITOR_LEADER} {}", u8::from(m.leader));
    header(
        &mut out,
        NOTIFICATIONS_TOTAL,
        "counter",
        "Notifications per channel and outcome.",
    );
    for (channel, outcome, n) in &m.notifications {
        let _ = writeln!(
            out,
            "{NOTIFICATIONS_TOTAL}{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ConfigState, ContextState, TaskSnapshot};
    use replicator_common::nodes::{Desired, Progress};
    use replicator_common::paths::TaskRef;

    #[test]
    fn renders_tasks_alerts_and_counters() {
        let snapshot = Snapshot {
            tasks: vec![TaskSnapshot {
                task: TaskRef::cold("g", "t").unwrap(),
                config: ConfigState::Empty,
                desired: Desired::Running,
                instances: vec![],
                context: ContextState::Valid(Box::new(Progress {
                    position: replicator_common::position::BinlogPos::new("f.000001", 4),
                    gtid: None,
                    event_ts_ms: 1000,
                    events: 42,
                    updated_ms: 1000,
                    epoch: 1,
                    clean: false,
                    server: None,
                    accepted_gap: 0,
                    snapshot: None,
                })),
                source: None,
            }],
            ..Snapshot::default()
        };
        let text = render(&MetricsInput {
            snapshot: &snapshot,
            alerts: &[],
            leader: true,
            notifications: vec![("webhook", "sent", 3)],
            now_ms: 3500,
        });
        for line in [
            "replicator_task_state{task=\"g/t\",state=\"not_running\"} 1",
            "replicator_task_state{task=\"g/t\",state=\"running\"} 0",
            "replicator_task_lag_seconds{task=\"g/t\"} 2.500",
            "replicator_task_events_total{task=\"g/t\"} 42",
            "replicator_alerts_firing{rule=\"stalled\"} 0",
            "replicator_monitor_leader 1",
            "replicator_monitor_notifications_total{channel=\"webhook\",outcome=\"sent\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
