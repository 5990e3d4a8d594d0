//! What `replicatorctl` prints for people, pure: aligned tables, UTC times,
//! short durations, the task list and detail views, alert lines.
//!
//! In: the API's typed answers ([`TaskStatus`], [`Alert`],
//! [`AlertEvent`]) and the current time. Out: text. `--json` bypasses this
//! module and prints the API's JSON as it came.

use crate::alerts::AlertEvent;
use crate::status::{InstanceStatus, TaskStatus};
use replicator_common::civil::civil_from_days;
use replicator_common::nodes::{Alert, AlertState};
use std::fmt::Write;

/// A table with a header row; columns are padded to their widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines; the last column is not padded.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `2024-05-01T10:00:00Z` for milliseconds since the epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `850ms`, `4.2s`, `3m05s`, `2h03m`, `3d04h`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => {
            let s = ms / 1000;
            match s {
                0..=3599 => format!("{}m{:02}s", s / 60, s % 60),
                3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
                _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
            }
        }
    }
}

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

/// Widest PROBLEM cell of `task list`; `task show` and `--json` carry it all.
const PROBLEM_WIDTH: usize = 100;

/// What is wrong with an instance, for people: its definite error, or how
/// long it has been retrying after transient failures and the last one.
pub fn problem(i: &InstanceStatus, now_ms: i64) -> Option<String> {
    if let Some(e) = &i.error {
        return Some(e.clone());
    }
    let r = i.retrying.as_ref()?;
    let attempts = match r.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    Some(format!(
        "retrying for {} ({attempts}): {}",
        duration(now_ms - r.since_ms),
        r.error
    ))
}

/// `s` on one line, cut to `max` characters with a trailing `…`.
fn clip(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The table of `task list`; PROBLEM is the RUNNING instance's [`problem`].
pub fn task_list(tasks: &[TaskStatus], now_ms: i64) -> String {
    let mut t = Table::new(&[
        "NAME", "GROUP", "STATE", "RUNNING", "STANDBY", "POSITION", "LAG", "EVENTS", "VERSION",
        "PROBLEM",
    ]);
    for s in tasks {
        let standby = s.instances.iter().filter(|i| i.state == "STANDBY").count();
        t.row(vec![
            s.name.clone(),
            or_dash(s.group.clone()),
            s.state.to_string(),
            or_dash(s.running().map(|i| i.host.clone())),
            standby.to_string(),
            or_dash(s.progress.as_ref().map(|p| p.position.clone())),
            or_dash(s.progress.as_ref().and_then(|p| p.lag_ms).map(duration)),
            or_dash(s.progress.as_ref().map(|p| p.events.to_string())),
            s.version.to_string(),
            or_dash(
                s.running()
                    .and_then(|i| problem(i, now_ms))
                    .map(|p| clip(&p, PROBLEM_WIDTH)),
            ),
        ]);
    }
    if tasks.is_empty() {
        return "no tasks\n".into();
    }
    t.render()
}

/// The view of `task show`.
pub fn task_detail(s: &TaskStatus, now_ms: i64) -> String {
    let mut out = String::new();
    let desired = serde_json::to_value(s.desired)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut kv = Table::new(&["Task:", &s.name]);
    kv.row(vec![
        "Group:".into(),
        s.group.clone().unwrap_or_else(|| "- (hot standby)".into()),
    ]);
    kv.row(vec!["State:".into(), s.state.to_string()]);
    kv.row(vec![
        "Desired:".into(),
        format!("{desired} (switchovers requested: {})", s.switchover),
    ]);
    kv.row(vec!["Version:".into(), s.version.to_string()]);
    match &s.progress {
        Some(p) => {
            kv.row(vec!["Position:".into(), p.position.clone()]);
            kv.row(vec![
                "GTID:".into(),
                or_dash(p.gtid.as_ref().map(ToString::to_string)),
            ]);
            kv.row(vec![
                "Event time:".into(),
                match p.lag_ms {
                    Some(lag) => format!("{} (lag {})", utc(p.event_ts_ms), duration(lag)),
                    None => "-".into(),
                },
            ]);
            kv.row(vec!["Events:".into(), p.events.to_string()]);
            if let Some(sn) = &p.snapshot {
                kv.row(vec!["Snapshot:".into(), snapshot_line(sn)]);
                for sk in &sn.skipped {
                    kv.row(vec!["".into(), format!("not copied: {sk}")]);
                }
                for t in &sn.single_read {
                    kv.row(vec![
                        "".into(),
                        format!("{t}: no usable key, copied in one consistent read"),
                    ]);
                }
            }
            kv.row(vec![
                "Updated:".into(),
                format!(
                    "{} ({} ago)",
                    utc(p.updated_ms),
                    duration(now_ms - p.updated_ms)
                ),
            ]);
        }
        None => kv.row(vec!["Position:".into(), "- (no progress yet)".into()]),
    }
    out.push_str(&kv.render());
    out.push('\n');
    if s.instances.is_empty() {
        out.push_str("no instances: no Core serves this task\n");
    } else {
        let mut t = Table::new(&["INSTANCE", "HOST", "STATE", "SINCE", "PID", "ERROR"]);
        for i in &s.instances {
            t.row(vec![
                i.id.clone(),
                i.host.clone(),
                i.state.clone(),
                or_dash(
                    i.since_ms
                        .map(|ms| format!("{} ({} ago)", utc(ms), duration(now_ms - ms))),
                ),
                or_dash(i.pid.map(|p| p.to_string())),
                or_dash(problem(i, now_ms)),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push('\n');
    match (&s.config, &s.config_error) {
        (Some(cfg), _) => {
            out.push_str("Config (password redacted):\n");
            out.push_str(&serde_json::to_string_pretty(cfg).unwrap_or_default());
            out.push('\n');
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "Config: {e}");
        }
        (None, None) => out.push_str("Config: -\n"),
    }
    out
}

fn subject(a: &Alert) -> String {
    match (&a.task, &a.core) {
        (Some(t), Some(c)) => format!("task={t} core={c}"),
        (Some(t), None) => format!("task={t}"),
        (None, Some(c)) => format!("core={c}"),
        (None, None) => "-".into(),
    }
}

fn severity(a: &Alert) -> String {
    serde_json::to_value(a.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The table of `alerts`.
pub fn alert_table(alerts: &[Alert], now_ms: i64) -> String {
    if alerts.is_empty() {
        return "no alerts\n".into();
    }
    let mut t = Table::new(&[
        "ID", "SEVERITY", "STATE", "RULE", "SUBJECT", "SINCE", "MESSAGE",
    ]);
    for a in alerts {
        t.row(vec![
            a.id.clone(),
            severity(a),
            match a.state {
                AlertState::Firing => "FIRING".into(),
                AlertState::Resolved => "resolved".into(),
            },
            a.rule.clone(),
            subject(a),
            format!("{} ago", duration(now_ms - a.since_ms)),
            a.message.clone(),
        ]);
    }
    t.render()
}

/// One line of `alerts --watch`.
pub fn alert_event(e: &AlertEvent, now_ms: i64) -> String {
    let (what, alert) = match e {
        AlertEvent::Fired { alert } => ("FIRING  ", alert),
        AlertEvent::Resolved { alert } => ("RESOLVED", alert),
        AlertEvent::Cleared { id } => return format!("{} CLEARED  ({id})", utc(now_ms)),
    };
    format!(
        "{} {what} {} {} {} ({}): {}",
        utc(now_ms),
        severity(alert),
        alert.rule,
        subject(alert),
        alert.id,
        alert.message
    )
}

/// `copying d.t: 41,000 of ~1,000,000 rows (4%), 1 of 3 tables done, 34,000 rows/s, ETA 28s`.
pub fn snapshot_line(s: &crate::status::SnapshotStatus) -> String {
    let rate = s
        .rows_per_s
        .map(|r| format!(", {r} rows/s"))
        .unwrap_or_default();
    match &s.table {
        None => format!(
            "done: {} rows, {} of {} tables{rate}",
            s.rows, s.tables_done, s.tables
        ),
        Some(t) => {
            let pct = (s.rows * 100)
                .checked_div(s.estimate)
                .map(|p| format!(" ({}%)", p.min(100)))
                .unwrap_or_default();
            let eta = s
                .eta_s
                .map(|e| format!(", ETA {}", duration(e as i64 * 1000)))
                .unwrap_or_default();
            format!(
                "copying {t} ({} of ~{} rows), {} of ~{} rows in all{pct}, {} of {} tables done{rate}{eta}",
                s.table_rows, s.table_estimate, s.rows, s.estimate, s.tables_done, s.tables
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{assemble, RawTask};
    use replicator_common::nodes::Severity;
    use replicator_common::paths::TaskRef;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["A", "LONG HEADER", "C"]);
        t.row(vec!["xxxx".into(), "y".into(), "z".into()]);
        assert_eq!(t.render(), "A     LONG HEADER  C\nxxxx  y            z\n");
    }

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_709_164_800_000), "2024-02-29T00:00:00Z");
        assert_eq!(utc(951_782_400_000 - 1000), "2000-02-28T23:59:59Z");
        assert_eq!(utc(4_102_444_800_000), "2100-01-01T00:00:00Z");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(4200), "4.2s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(7_380_000), "2h03m");
        assert_eq!(duration(273_600_000), "3d04h");
        assert_eq!(duration(-5), "0ms");
    }

    fn status() -> TaskStatus {
        status_with(br#"{"host":"h1","pid":7,"state":"RUNNING","since_ms":0}"#)
    }

    /// The task of [`status`] with `running` as its RUNNING instance's node data.
    fn status_with(running: &[u8]) -> TaskStatus {
        let cfg = serde_json::json!({"name": "orders",
            "source": {"host": "db", "user": "u", "password": "hunter2", "server_id": 1},
            "sink": {"brokers": "k:1"}});
        assemble(
            &RawTask {
                task: TaskRef::hot("orders").unwrap(),
                config: cfg.to_string().into_bytes(),
                version: 2,
                instances: vec![("h1-0000000001".into(), Some(running.to_vec()))],
                context: Some(
                    br#"{"file":"mysql-bin.000001","pos":400,"gtid":"0-1-9","event_ts_ms":1000,"events":3,"updated_ms":1000,"epoch":1}"#
                        .to_vec(),
                ),
                control: None,
            },
            2000,
        )
    }

    #[test]
    fn task_views() {
        let list = task_list(&[status()], 2000);
        let lines: Vec<&str> = list.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{list}");
        assert!(
            lines[1].contains("orders") && lines[1].contains("running"),
            "{list}"
        );
        assert!(lines[1].contains("mysql-bin.000001:400"), "{list}");
        assert!(lines[1].contains("1.0s"), "{list}");
        assert_eq!(task_list(&[], 0), "no tasks\n");
        let detail = task_detail(&status(), 61_000);
        for want in [
            "Task:",
            "orders",
            "RUNNING",
            "0-1-9",
            "lag 1.0s",
            "\"password\": \"***\"",
        ] {
            assert!(detail.contains(want), "missing {want} in\n{detail}");
        }
        assert!(!detail.contains("hunter2"));
    }

    #[test]
    fn a_snapshot_names_tables_not_copied_and_tables_read_at_once() {
        let cfg = serde_json::json!({"name": "orders",
            "source": {"host": "db", "user": "u", "password": "p", "server_id": 1},
            "sink": {"brokers": "k:1"}});
        let context = serde_json::json!({"file": "mysql-bin.000001", "pos": 400,
            "event_ts_ms": 1000, "events": 3, "updated_ms": 11_000, "epoch": 1,
            "snapshot": {"next_chunk": 4, "rows": 30, "started_ms": 1000, "tables": [
                {"database": "d", "table": "gone", "done": true, "skipped": "dropped during the copy"},
                {"database": "d", "table": "nokey", "done": true, "rows": 20, "estimate": 20,
                 "mode": "single_read"},
                {"database": "d", "table": "big", "done": false, "rows": 10, "estimate": 100,
                 "last_key": ["10"]}]}});
        let s = assemble(
            &RawTask {
                task: TaskRef::hot("orders").unwrap(),
                config: cfg.to_string().into_bytes(),
                version: 2,
                instances: vec![(
                    "h1-0000000001".into(),
                    Some(br#"{"host":"h1","pid":7,"state":"RUNNING","since_ms":0}"#.to_vec()),
                )],
                context: Some(context.to_string().into_bytes()),
                control: None,
            },
            12_000,
        );
        let detail = task_detail(&s, 12_000);
        for want in [
            "copying d.big (10 of ~100 rows), 30 of ~120 rows in all (25%), 2 of 3 tables done, 3 rows/s",
            "not copied: d.gone: dropped during the copy",
            "d.nokey: no usable key, copied in one consistent read",
        ] {
            assert!(detail.contains(want), "missing {want} in\n{detail}");
        }
        assert!(!detail.contains("d.big: no usable key"), "{detail}");
    }

    #[test]
    fn a_retrying_task_says_why_and_since_when() {
        // as a newer Core writes it, with a field this version does not know
        let s = status_with(
            br#"{"host":"h1","pid":7,"state":"RUNNING","since_ms":0,"zone":"b",
                 "retrying":{"error":"no reachable broker in `127.0.0.1:1`","since_ms":20000,"attempts":7}}"#,
        );
        let now = 150_000;
        let want = "retrying for 2m10s (7 attempts): no reachable broker in `127.0.0.1:1`";
        let list = task_list(std::slice::from_ref(&s), now);
        let lines: Vec<&str> = list.lines().collect();
        assert!(lines[0].ends_with("VERSION  PROBLEM"), "{list}");
        assert!(lines[1].contains("  retrying  "), "{list}");
        assert!(lines[1].ends_with(want), "{list}");
        let detail = task_detail(&s, now);
        assert!(detail.contains("retrying"), "{detail}");
        let row = detail.lines().find(|l| l.starts_with("h1-")).unwrap();
        assert!(row.ends_with(want), "{detail}");
        // a definite error is the problem as it is; a long one is clipped in the list
        let long = "x".repeat(300);
        let s = status_with(
            format!(
                r#"{{"host":"h1","pid":7,"state":"RUNNING","since_ms":0,"error":"binlog gone:\n{long}"}}"#
            )
            .as_bytes(),
        );
        let list = task_list(std::slice::from_ref(&s), now);
        let row = list.lines().nth(1).unwrap();
        assert!(row.contains("failing"), "{list}");
        let cell = &row[row.find("binlog gone").unwrap()..];
        assert_eq!(cell.chars().count(), PROBLEM_WIDTH, "{cell}");
        assert!(
            cell.starts_with("binlog gone: xxx") && cell.ends_with('…'),
            "{cell}"
        );
        assert!(task_detail(&s, now).contains(&long));
        // a healthy task has no problem
        assert!(task_list(&[status()], now)
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(" -"));
    }

    #[test]
    fn alert_views() {
        let a = Alert {
            id: "lag-orders".into(),
            rule: "lag".into(),
            task: Some("orders".into()),
            core: None,
            severity: Severity::Critical,
            state: AlertState::Firing,
            since_ms: 0,
            message: "lag is 90 s".into(),
        };
        let table = alert_table(std::slice::from_ref(&a), 90_000);
        assert!(
            table.contains("FIRING") && table.contains("task=orders"),
            "{table}"
        );
        assert!(table.contains("1m30s ago"), "{table}");
        let line = alert_event(&AlertEvent::Fired { alert: a }, 0);
        assert_eq!(
            line,
            "1970-01-01T00:00:00Z FIRING   critical lag task=orders (lag-orders): lag is 90 s"
        );
        assert_eq!(alert_table(&[], 0), "no alerts\n");
    }
}
