//! Helpers of the infrastructure-fault tests (`zk_ensemble.rs`,
//! `partition.rs`, `source_crash.rs`, `broker_restart.rs`,
//! `leader_move.rs`): a task streaming under writes, watching it recover
//! through a fault (and a ZooKeeper session that may itself be failing
//! over), and the figures each test prints (recovery time, rows, lost,
//! duplicated).
//!
//! Every poll is bounded by its timeout; ZooKeeper errors while polling
//! (the ensemble is electing, the link is cut) count as "not recovered yet",
//! never as a failure of the test.

use super::{Scenario, Writer};
use replicator_common::nodes::{InstanceInfo, InstanceState, Progress};
use replicator_common::zk::Zk;
use replicator_tests::{Message, Process, Stack};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds (the clock the Core stamps `updated_ms` with).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The task's instances and context, or `None` when ZooKeeper does not
/// answer now.
pub async fn observe(s: &Scenario, zk: &Zk) -> Option<(Vec<InstanceInfo>, Option<Progress>)> {
    let task = s.task_ref();
    let dir = s.layout.instances(&task);
    let mut instances = Vec::new();
    for c in zk.children(&dir).await.ok()? {
        if let Some((data, _)) = zk.get(&format!("{dir}/{c}")).await.ok()? {
            if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&data) {
                instances.push(info);
            }
        }
    }
    let context = match zk.get(&s.layout.context(&task)).await.ok()? {
        Some((data, _)) => serde_json::from_slice::<Progress>(&data).ok(),
        None => None,
    };
    Some((instances, context))
}

/// Host of the single RUNNING instance, if there is exactly one.
pub fn single_running(instances: &[InstanceInfo]) -> Option<String> {
    let running: Vec<_> = instances
        .iter()
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    (running.len() == 1).then(|| running[0].host.clone())
}

/// Waits until the task has exactly one RUNNING instance and its context
/// was written after `fault_ms` (wall clock) at a position past
/// `pos_before`: Kafka acknowledged new transactions. Returns the time from
/// `fault_at` and the RUNNING host; panics after `timeout`.
pub async fn wait_recovered(
    s: &Scenario,
    zk: &Zk,
    fault_at: Instant,
    fault_ms: i64,
    pos_before: Option<(String, u64)>,
    timeout: Duration,
) -> (Duration, String) {
    let deadline = fault_at + timeout;
    let mut last = None;
    loop {
        if let Some((instances, context)) = observe(s, zk).await {
            if let (Some(host), Some(ctx)) = (single_running(&instances), &context) {
                let moved = pos_before
                    .as_ref()
                    .is_none_or(|(f, p)| (&ctx.position.file, ctx.position.pos) != (f, *p));
                if ctx.updated_ms > fault_ms && moved {
                    return (fault_at.elapsed(), host);
                }
            }
            last = Some((instances, context));
        }
        assert!(
            Instant::now() < deadline,
            "the task did not recover within {timeout:?}; last seen: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `fault` and waits (up to `timeout`, [`wait_recovered`]) until the
/// task produces again past the position it had before: returns what
/// `fault` returned, the time from the fault's start to the recovery, and
/// the RUNNING host.
pub async fn recover_from<T>(
    s: &Scenario,
    timeout: Duration,
    fault: impl Future<Output = T>,
) -> (T, Duration, String) {
    let before = position(s, &s.zk).await;
    let (fault_at, fault_ms) = (Instant::now(), now_ms());
    let out = fault.await;
    let (took, host) = wait_recovered(s, &s.zk, fault_at, fault_ms, before, timeout).await;
    (out, took, host)
}

/// The start of a fault test: a new scenario `prefix` whose RUNNING Core
/// `h1` (session `session_ms`) streams the rows of a writer committing
/// 5-row transactions every 10 ms, which has been writing for 2 s.
pub async fn running_under_writes(
    stack: &'static Stack,
    prefix: &str,
    session_ms: u64,
) -> (Scenario, Process, Writer) {
    let s = Scenario::new(stack, prefix).await;
    let core = s
        .running_core("h1", session_ms, Duration::from_secs(30))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 5, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    (s, core, writer)
}

/// The context position now, if readable.
pub async fn position(s: &Scenario, zk: &Zk) -> Option<(String, u64)> {
    let (_, ctx) = observe(s, zk).await?;
    ctx.map(|c| (c.position.file, c.position.pos))
}

/// What a fault test reports: rows committed, and of their inserts how
/// many never arrived and how many arrived more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub rows: i64,
    pub lost: i64,
    pub duplicated: i64,
}

/// Counts the inserts of ids `1..=n` in `messages`.
pub fn tally(messages: &[Message], n: i64) -> Tally {
    tally_ids(messages, &(1..=n).collect::<Vec<_>>())
}

/// Counts the inserts of `ids` in `messages` (ids outside `ids` count as
/// duplicated: nothing else may arrive).
pub fn tally_ids(messages: &[Message], ids: &[i64]) -> Tally {
    let mut seen: HashMap<i64, i64> = HashMap::new();
    for m in messages {
        let v = m.value_json();
        if v["type"] != "insert" {
            continue;
        }
        let id = v["after"]["id"].as_i64().expect("id");
        if id != 0 {
            *seen.entry(id).or_default() += 1;
        }
    }
    let mut t = Tally {
        rows: ids.len() as i64,
        lost: 0,
        duplicated: 0,
    };
    for id in ids {
        match seen.remove(id) {
            None => t.lost += 1,
            Some(k) => t.duplicated += k - 1,
        }
    }
    t.duplicated += seen.values().sum::<i64>();
    t
}

/// Prints one line a script can collect: `FAULT-FIGURES fault=.. ..`.
pub fn print_figures(fault: &str, recoveries: &[Duration], t: Tally) {
    let ms: Vec<String> = recoveries
        .iter()
        .map(|d| d.as_millis().to_string())
        .collect();
    eprintln!(
        "FAULT-FIGURES fault={fault} recovery_ms={} rows={} lost={} duplicated={}",
        ms.join(","),
        t.rows,
        t.lost,
        t.duplicated
    );
}

/// A writer that survives its server going away: each transaction inserts
/// `rows` new ids; a failed statement or commit drops the connection and
/// the writer reconnects (capped backoff). Ids are never reused, so a
/// transaction whose commit failed may or may not exist: the table says.
pub struct CrashWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<CrashWriterReport>,
}

/// What a [`CrashWriter`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashWriterReport {
    /// Transactions whose commit returned OK.
    pub committed: i64,
    /// Transactions that failed (their rows may or may not exist).
    pub failed: i64,
    /// Highest id ever tried.
    pub last_id: i64,
}

impl CrashWriter {
    pub fn start(
        stack: &'static replicator_tests::Stack,
        db: &str,
        table: &str,
        rows: i64,
        pause: Duration,
    ) -> CrashWriter {
        use mysql_async::prelude::Queryable;
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let sql_table = format!("`{db}`.`{table}`");
        let url = stack.mysql_url();
        let handle = tokio::spawn(async move {
            let mut report = CrashWriterReport::default();
            let mut conn: Option<mysql_async::Conn> = None;
            let mut backoff = Duration::from_millis(50);
            while !s.load(Ordering::SeqCst) {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => {
                        let opts = mysql_async::Opts::from_url(&url).expect("mysql url");
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            mysql_async::Conn::new(opts),
                        )
                        .await
                        {
                            Ok(Ok(c)) => {
                                backoff = Duration::from_millis(50);
                                conn.insert(c)
                            }
                            _ => {
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(1));
                                continue;
                            }
                        }
                    }
                };
                let first = report.last_id + 1;
                report.last_id += rows;
                let values: Vec<String> = (first..first + rows)
                    .map(|id| format!("({id}, {}, {first}, 'crash')", id - first))
                    .collect();
                let sql = format!(
                    "INSERT INTO {sql_table} (id, v, txn, note) VALUES {}",
                    values.join(",")
                );
                let result = tokio::time::timeout(Duration::from_secs(10), async {
                    let mut tx = c.start_transaction(Default::default()).await?;
                    tx.query_drop(sql).await?;
                    tx.commit().await
                })
                .await;
                match result {
                    Ok(Ok(())) => report.committed += 1,
                    _ => {
                        report.failed += 1;
                        conn = None;
                    }
                }
                tokio::time::sleep(pause).await;
            }
            report
        });
        CrashWriter { stop, handle }
    }

    /// Stops and says what happened.
    pub async fn finish(self) -> CrashWriterReport {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.await.expect("writer task")
    }
}
