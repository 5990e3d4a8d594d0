//! `GET /metrics`: Prometheus text exposition, rendered from task statuses,
//! alerts and the server's own request counters (pure apart from the
//! counters, which are atomics).
//!
//! Every scrape reads the task znodes anew, so the numbers are those of
//! ZooKeeper at scrape time; nothing is cached and nothing survives a
//! restart except what ZooKeeper holds.

use crate::status::{Summary, TaskStatus};
use replicator_common::nodes::{Alert, AlertState};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Tasks by kind (`hot`/`cold`) and summary state.
pub const TASKS: &str = "replicator_tasks";
/// Instances of all tasks by state (`RUNNING`, `STANDBY`, `UNKNOWN`).
pub const TASK_INSTANCES: &str = "replicator_task_instances";
/// Per task: now minus the source time of the last replicated event.
pub use replicator_common::telemetry::TASK_LAG_SECONDS;
/// Per task: row events replicated, from the progress context.
pub const TASK_EVENTS_TOTAL: &str = "replicator_task_events_total";
/// Per task: 1 when the desired state is paused.
pub const TASK_PAUSED: &str = "replicator_task_paused";
/// Alerts in `/alerts` by state.
pub const ALERTS: &str = "replicator_alerts";
/// HTTP requests answered by this server, by status code.
pub const SERVER_REQUESTS_TOTAL: &str = "replicator_server_requests_total";

/// Requests answered, by status code.
#[derive(Debug, Default)]
pub struct RequestCounter(Mutex<BTreeMap<u16, u64>>);

impl RequestCounter {
    pub fn count(&self, status: u16) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(status).or_default() += 1;
    }
    pub fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn task_labels(t: &TaskStatus) -> String {
    format!(
        "task=\"{}\",group=\"{}\"",
        escape(&t.name),
        escape(t.group.as_deref().unwrap_or(""))
    )
}

/// The exposition text.
pub fn render(tasks: &[TaskStatus], alerts: &[Alert], requests: &BTreeMap<u16, u64>) -> String {
    let mut out = String::new();
    header(&mut out, TASKS, "gauge", "Tasks by kind and state.");
    const STATES: [Summary; 7] = [
        Summary::Running,
        Summary::Paused,
        Summary::Failing,
        Summary::Retrying,
        Summary::Starting,
        Summary::Down,
        Summary::Unconfigured,
    ];
    for kind in ["hot", "cold"] {
        for state in STATES {
            let n = tasks
                .iter()
                .filter(|t| (t.group.is_none()) == (kind == "hot") && t.state == state)
                .count();
            let _ = writeln!(out, "{TASKS}{{kind=\"{kind}\",state=\"{state}\"}} {n}");
        }
    }
    header(
        &mut out,
        TASK_INSTANCES,
        "gauge",
        "Instances of all tasks by state.",
    );
    for state in ["RUNNING", "STANDBY", "UNKNOWN"] {
        let n: usize = tasks
            .iter()
            .map(|t| t.instances.iter().filter(|i| i.state == state).count())
            .sum();
        let _ = writeln!(out, "{TASK_INSTANCES}{{state=\"{state}\"}} {n}");
    }
    header(
        &mut out,
        TASK_LAG_SECONDS,
        "gauge",
        "Now minus the source time of the last replicated event, in seconds.",
    );
    for t in tasks {
        if let Some(lag) = t.progress.as_ref().and_then(|p| p.lag_ms) {
            let lag = lag as f64 / 1000.0;
            let _ = writeln!(out, "{TASK_LAG_SECONDS}{{{}}} {lag:.3}", task_labels(t));
        }
    }
    header(
        &mut out,
        TASK_EVENTS_TOTAL,
        "counter",
        "Row events replicated, from the progress context.",
    );
    for t in tasks {
        if let Some(p) = &t.progress {
            let _ = writeln!(
                out,
                "{TASK_EVENTS_TOTAL}{{{}}} {}",
                task_labels(t),
                p.events
            );
        }
    }
    header(
        &mut out,
        TASK_PAUSED,
        "gauge",
        "1 when the task's desired state is paused.",
    );
    for t in tasks {
        let paused = u8::from(t.desired == replicator_common::nodes::Desired::Paused);
        let _ = writeln!(out, "{TASK_PAUSED}{{{}}} {paused}", task_labels(t));
    }
    header(&mut out, ALERTS, "gauge", "Alerts by state.");
    for (state, label) in [
        (AlertState::Firing, "firing"),
        (AlertState::Resolved, "resolved"),
    ] {
        let n = alerts.iter().filter(|a| a.state == state).count();
        let _ = writeln!(out, "{ALERTS}{{state=\"{label}\"}} {n}");
    }
    header(
        &mut out,
        SERVER_REQUESTS_TOTAL,
        "counter",
        "HTTP requests answered, by status code.",
    );
    for (code, n) in requests {
        let _ = writeln!(out, "{SERVER_REQUESTS_TOTAL}{{code=\"{code}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{assemble, RawTask};
    use replicator_common::nodes::Severity;
    use replicator_common::paths::TaskRef;

    fn task(name: &str, group: Option<&str>, running: bool) -> TaskStatus {
        let cfg = serde_json::json!({"name": name, "group": group,
            "source": {"host": "db", "user": "u", "server_id": 1}, "sink": {"brokers": "k:1"}});
        let inst = br#"{"host":"h1","pid":1,"state":"RUNNING","since_ms":1}"#.to_vec();
        let raw = RawTask {
            task: match group {
                None => TaskRef::hot(name).unwrap(),
                Some(g) => TaskRef::cold(g, name).unwrap(),
            },
            config: cfg.to_string().into_bytes(),
            version: 0,
            instances: if running {
                vec![("h1-0000000001".into(), Some(inst))]
            } else {
                vec![]
            },
            context: Some(
                br#"{"file":"f","pos":4,"gtid":null,"event_ts_ms":900,"events":5,"updated_ms":1,"epoch":1}"#
                    .to_vec(),
            ),
            control: None,
        };
        assemble(&raw, 1000)
    }

    #[test]
    fn renders_counts_lag_and_requests() {
        let tasks = vec![task("a", None, true), task("b", Some("g"), false)];
        let alerts = vec![Alert {
            id: "1".into(),
            rule: "lag".into(),
            task: Some("a".into()),
            core: None,
            severity: Severity::Warning,
            state: AlertState::Firing,
            since_ms: 1,
            message: "m".into(),
        }];
        let mut req = BTreeMap::new();
        req.insert(200, 3);
        req.insert(404, 1);
        let text = render(&tasks, &alerts, &req);
        for line in [
            "replicator_tasks{kind=\"hot\",state=\"running\"} 1",
            "replicator_tasks{kind=\"cold\",state=\"down\"} 1",
            "replicator_tasks{kind=\"hot\",state=\"down\"} 0",
            "replicator_task_instances{state=\"RUNNING\"} 1",
            "replicator_task_instances{state=\"STANDBY\"} 0",
            "replicator_task_lag_seconds{task=\"a\",group=\"\"} 0.100",
            "replicator_task_events_total{task=\"b\",group=\"g\"} 5",
            "replicator_alerts{state=\"firing\"} 1",
            "replicator_server_requests_total{code=\"404\"} 1",
            "# TYPE replicator_task_events_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn counter_counts() {
        let c = RequestCounter::default();
        c.count(200);
        c.count(200);
        c.count(401);
        assert_eq!(c.snapshot().get(&200), Some(&2));
        assert_eq!(c.snapshot().get(&401), Some(&1));
    }
}
