//! What the benchmark binaries (`src/bin/bench_*.rs`) share: the `orders`
//! table they seed, handing a Core one task, waiting on that task's context,
//! and the Core's peak memory.

use crate::{unique_name, Process, Stack};
use replicator_common::paths::TaskRef;
use replicator_common::zk::Zk;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A database of its own (named from `prefix`) with the benchmarks'
/// `orders` table; returns the database's name.
pub async fn create_orders(stack: &Stack, prefix: &str) -> String {
    let db = stack.create_database(prefix).await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, \
             note VARCHAR(32), amount DECIMAL(10,2), created DATETIME(3))"
        ))
        .await;
    db
}

/// The `source` of a task reading `db` from the stack's MariaDB as replica
/// `server_id`; `extra` (an object) is merged in.
pub fn source(stack: &Stack, server_id: u32, db: &str, extra: Value) -> Value {
    let mut source = json!({"host": stack.mysql_host(), "port": stack.mysql_port(),
        "user": stack.mysql_user(), "password": stack.mysql_password(),
        "server_id": server_id, "include": [format!("{db}\\..*")]});
    for (key, value) in extra.as_object().into_iter().flatten() {
        source[key] = value.clone();
    }
    source
}

/// A Core (host `bench`, under `root`) running only a new task named from
/// `prefix` with `source` and `sink`, started once it logs "replication
/// starts"; also the task, for its context.
pub async fn start_task(
    stack: &Stack,
    zk: &Zk,
    root: &str,
    prefix: &str,
    (source, sink): (Value, Value),
    core_args: &[&str],
    env: &[(&str, &str)],
) -> (Process, TaskRef) {
    let task = unique_name(prefix);
    let task_ref = TaskRef::hot(&task).unwrap();
    let cfg = json!({"name": task, "source": source, "sink": sink});
    let path = zk.layout().task(&task_ref);
    zk.ensure_path(&path).await.unwrap();
    zk.client()
        .set_data(&path, cfg.to_string().as_bytes(), None)
        .await
        .unwrap();
    let mut args = vec!["--task", task.as_str()];
    args.extend_from_slice(core_args);
    let mut core = stack.core(root, "bench", &args, env);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    (core, task_ref)
}

/// Polls `task`'s context every 5 ms until `done` returns a value (panics
/// after `limit`, with the Core's log tail).
pub async fn wait_context<T>(
    zk: &Zk,
    task: &TaskRef,
    core: &Process,
    limit: Duration,
    mut done: impl FnMut(&Value) -> Option<T>,
) -> T {
    let ctx_path = zk.layout().context(task);
    let t = Instant::now();
    loop {
        if let Some((d, _)) = zk.get(&ctx_path).await.unwrap() {
            if let Some(v) = serde_json::from_slice::<Value>(&d)
                .ok()
                .and_then(|v| done(&v))
            {
                return v;
            }
        }
        assert!(
            t.elapsed() < limit,
            "the context did not get there within {limit:?}\n{}",
            core.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The peak resident memory of process `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// `12.3 MiB`, or `unknown`.
pub fn mib(rss_kib: Option<u64>) -> String {
    rss_kib
        .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "unknown".into())
}
