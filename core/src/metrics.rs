//! Prometheus metrics of a Core, served on `--metrics-addr` at `/metrics`.
//!
//! Pipelines report at their commit ticks (never per row); the HTTP side
//! renders a snapshot. Names follow `replicator_<noun>_<unit>[_total]`.

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// 1 while this Core runs the task's pipeline (it is the RUNNING instance).
pub const TASK_RUNNING: &str = "replicator_core_task_running";
/// Row and DDL messages acknowledged by Kafka (from the context's count).
pub const TASK_EVENTS: &str = "replicator_core_task_events_total";
/// Now minus the source time of the last replicated event (heartbeats keep
/// it near zero on an idle source).
pub use replicator_common::telemetry::TASK_LAG_SECONDS as TASK_LAG;
/// Replayed messages dropped because the topic already had them.
pub const TASK_DUPLICATES: &str = "replicator_core_task_duplicates_dropped_total";

/// Rows the task's snapshot delivered (emitted chunks).
pub const SNAPSHOT_ROWS: &str = "replicator_core_snapshot_rows_total";
/// Tables the task's snapshot has still to copy.
pub const SNAPSHOT_TABLES_REMAINING: &str = "replicator_core_snapshot_tables_remaining";

/// ZooKeeper sessions this Core gave up because no reply came for a whole
/// session timeout (`replicator_common::zk_watchdog`).
pub const ZK_SESSIONS_ABANDONED: &str = "replicator_core_zk_sessions_abandoned_total";

static SESSIONS_ABANDONED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a session given up by the watchdog.
pub fn session_abandoned() {
    SESSIONS_ABANDONED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Debug, Default, Clone)]
struct TaskMetrics {
    running: bool,
    events: u64,
    event_ts_ms: i64,
    duplicates: u64,
    snapshot: Option<(u64, usize)>,
}

fn registry() -> &'static Mutex<BTreeMap<String, TaskMetrics>> {
    static R: OnceLock<Mutex<BTreeMap<String, TaskMetrics>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Marks whether this Core runs `task`'s pipeline.
pub fn set_running(task: &str, running: bool) {
    let mut g = registry().lock().expect("metrics lock");
    g.entry(task.to_string()).or_default().running = running;
}

/// Records a committed checkpoint and the duplicates dropped so far by the run.
pub fn record(task: &str, events: u64, event_ts_ms: i64, duplicates: u64) {
    let mut g = registry().lock().expect("metrics lock");
    let m = g.entry(task.to_string()).or_default();
    m.events = events;
    m.event_ts_ms = event_ts_ms;
    m.duplicates = duplicates;
}

/// Records a snapshot's progress (per emitted chunk).
pub fn record_snapshot(task: &str, p: &replicator_common::nodes::SnapshotProgress) {
    let mut g = registry().lock().expect("metrics lock");
    g.entry(task.to_string()).or_default().snapshot = Some((p.rows, p.remaining()));
}

/// The Prometheus text of every task seen.
pub fn render(now_ms: i64) -> String {
    let g = registry().lock().expect("metrics lock");
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, value: &dyn Fn(&TaskMetrics) -> Option<String>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (task, m) in g.iter() {
                if let Some(v) = value(m) {
                    out.push_str(&format!(
                        "{name}{{task=\"{}\"}} {v}\n",
                        task.replace('"', "\\\"")
                    ));
                }
            }
        };
    family(
        TASK_RUNNING,
        "gauge",
        "1 while this core runs the task",
        &|m| Some(u8::from(m.running).to_string()),
    );
    family(
        TASK_EVENTS,
        "counter",
        "messages acknowledged by Kafka",
        &|m| Some(m.events.to_string()),
    );
    family(
        TASK_LAG,
        "gauge",
        "seconds since the last replicated source event",
        &|m| {
            (m.running && m.event_ts_ms > 0)
                .then(|| format!("{:.3}", (now_ms - m.event_ts_ms).max(0) as f64 / 1000.0))
        },
    );
    family(
        TASK_DUPLICATES,
        "counter",
        "replayed messages dropped as already in Kafka",
        &|m| Some(m.duplicates.to_string()),
    );
    family(
        SNAPSHOT_ROWS,
        "counter",
        "rows copied by the task's snapshot",
        &|m| m.snapshot.map(|s| s.0.to_string()),
    );
    family(
        SNAPSHOT_TABLES_REMAINING,
        "gauge",
        "tables the task's snapshot has still to copy",
        &|m| m.snapshot.map(|s| s.1.to_string()),
    );
    out.push_str(&format!(
        "# HELP {ZK_SESSIONS_ABANDONED} ZooKeeper sessions given up after a session timeout without a reply\n\
         # TYPE {ZK_SESSIONS_ABANDONED} counter\n{ZK_SESSIONS_ABANDONED} {}\n",
        SESSIONS_ABANDONED.load(std::sync::atomic::Ordering::Relaxed)
    ));
    out
}

/// Serves `/metrics` (and `/healthz`) on `addr` until `shutdown`, with
/// axum like the Server and the Monitor (it tracks its connections and ends
/// them on shutdown).
pub async fn serve(addr: String, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(replicator_common::now_ms()),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_task_families() {
        set_running("m_t1", true);
        record("m_t1", 42, 1_000, 3);
        let text = render(3_500);
        assert!(
            text.contains("replicator_core_task_running{task=\"m_t1\"} 1"),
            "{text}"
        );
        assert!(text.contains("replicator_core_task_events_total{task=\"m_t1\"} 42"));
        assert!(text.contains("replicator_task_lag_seconds{task=\"m_t1\"} 2.500"));
        assert!(text.contains("replicator_core_task_duplicates_dropped_total{task=\"m_t1\"} 3"));
        assert!(text.contains("# TYPE replicator_core_task_events_total counter"));
        assert!(!text.contains("replicator_core_snapshot_rows_total{task=\"m_t1\"}"));
        record_snapshot(
            "m_t1",
            &replicator_common::nodes::SnapshotProgress {
                tables: vec![Default::default()],
                rows: 7,
                ..Default::default()
            },
        );
        let text = render(3_500);
        assert!(text.contains("replicator_core_snapshot_rows_total{task=\"m_t1\"} 7"));
        assert!(text.contains("replicator_core_snapshot_tables_remaining{task=\"m_t1\"} 1"));
    }
}
