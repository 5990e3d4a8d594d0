//! Snapshot throughput (issue 16): seeds a table of N rows (default
//! 1,000,000), reads it raw with `mariadb-dump` to /dev/null (the
//! baseline, same run, same servers), then runs a Core with a new task
//! whose snapshot copies the table, timed from "replication starts" until
//! the context says the snapshot is done (every chunk acknowledged by
//! Kafka). Prints both rates, their ratio and the Core's peak RSS.
//!
//! `bench-snapshot [ROWS] [--chunk-rows N] [--method auto|watermark|consistent_snapshot]`; uses the stack of
//! `REPLICATOR_STACK_ENV`-style variables when set (see README), else starts
//! its own servers. Build the binaries in release first and point
//! `REPLICATOR_BIN_DIR` at them for meaningful figures.

use replicator_tests::bench::{self, create_orders, mib, peak_rss_kib};
use replicator_tests::{unique_root, Stack};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let chunk: u64 = args
        .iter()
        .position(|a| a == "--chunk-rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // `source.snapshot_method`: auto (default), watermark or consistent_snapshot
    let method = args
        .iter()
        .position(|a| a == "--method")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "auto".into());
    let stack = Stack::from_env().unwrap_or_else(Stack::start);
    let db = create_orders(&stack, "bench_snapshot").await;
    let t = Instant::now();
    let mut from = 1u64;
    while from <= rows {
        let to = (from + 99_999).min(rows);
        stack
            .sql(&format!(
                "INSERT INTO `{db}`.orders SELECT seq, seq % 1000, CONCAT('note ', seq), \
                 (seq % 100000) + (seq % 100) / 100, '2024-01-02 03:04:05.123' \
                 FROM `{db}`.seq_{from}_to_{to}"
            ))
            .await;
        from = to + 1;
    }
    println!("seeded {rows} rows in {:.1} s", t.elapsed().as_secs_f64());

    // Baseline: the raw read of the same table.
    let t = Instant::now();
    let status = std::process::Command::new("mariadb-dump")
        .args([
            &format!("--host={}", stack.mysql_host()),
            &format!("--port={}", stack.mysql_port()),
            &format!("--user={}", stack.mysql_user()),
            &format!("--password={}", stack.mysql_password()),
            "--single-transaction",
            "--quick",
            "--skip-lock-tables",
            &db,
            "orders",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("mariadb-dump runs");
    assert!(status.success(), "mariadb-dump failed: {status}");
    let raw_s = t.elapsed().as_secs_f64();
    let raw_rate = rows as f64 / raw_s;
    println!("raw read (mariadb-dump --single-transaction --quick to /dev/null): {raw_s:.2} s, {raw_rate:.0} rows/s");

    // The snapshot of a new task.
    let root = unique_root();
    let zk = stack.zk(&root).await;
    let topic = format!("{db}.orders");
    stack.create_topic(&topic, 4).await;
    let source = bench::source(
        &stack,
        888_002,
        &db,
        json!({"snapshot": "initial", "snapshot_chunk_rows": chunk, "snapshot_method": method}),
    );
    let sink =
        json!({"brokers": stack.kafka_bootstrap(), "topic": "{database}.{table}", "partitions": 4});
    // `--phases`: the Core logs each chunk's timings, summed up at the end
    let phases = args.iter().any(|a| a == "--phases");
    let log = if phases {
        vec![("RUST_LOG", "info,replicator_core::snapshot=debug")]
    } else {
        Vec::new()
    };
    let (mut core, task) =
        bench::start_task(&stack, &zk, &root, "benchsnap", (source, sink), &[], &log).await;
    let t = Instant::now();
    let copied = bench::wait_context(&zk, &task, &core, Duration::from_secs(1800), |v| {
        let snap = &v["snapshot"];
        let done = snap["tables"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["done"] == true));
        done.then(|| snap["rows"].as_u64().unwrap_or(0))
    })
    .await;
    let snap_s = t.elapsed().as_secs_f64();
    let rss = peak_rss_kib(core.pid());
    core.stop().await;
    let phase_sums = phases.then(|| sum_phases(&core.log()));
    if let Some(to) = std::env::var_os("BENCH_SNAPSHOT_CORE_LOG") {
        // the run directory goes away with the stack
        std::fs::write(to, core.log()).expect("copy the Core's log");
    }
    let snap_rate = copied as f64 / snap_s;
    println!(
        "snapshot (chunks of {chunk}, read -> Kafka acks -> context): {copied} rows in {snap_s:.2} s, {snap_rate:.0} rows/s"
    );
    println!("ratio snapshot / raw read: {:.2}", snap_rate / raw_rate);
    println!("replicator-core peak RSS: {}", mib(rss));
    if let Some(sums) = phase_sums {
        println!("per-chunk phases, summed over the chunks (ms; read and render run on the reader's task, the rest on the event loop):");
        for (name, (n, total)) in sums {
            println!("  {name}: {total} ms over {n} chunks");
        }
    }
    assert_eq!(copied, rows, "rows copied");
}

/// Sums the `*_ms` fields of the Core's per-chunk debug lines (`snapshot
/// chunk read`, `emitted`, `acknowledged`): field name to (lines, total).
fn sum_phases(log: &str) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut sums = std::collections::BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("snapshot chunk")) {
        for field in line.split_whitespace() {
            let Some((name, value)) = field.split_once('=') else {
                continue;
            };
            if let (true, Ok(v)) = (name.ends_with("_ms"), value.parse::<u64>()) {
                let e: &mut (u64, u64) = sums.entry(name.to_string()).or_default();
                e.0 += 1;
                e.1 += v;
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    #[test]
    fn phases_sum_per_field() {
        let log = "x DEBUG snapshot chunk read rows=10 query_ms=5 render_ms=2\n\
                   x DEBUG snapshot chunk read rows=10 query_ms=7 render_ms=1\n\
                   x DEBUG snapshot chunk emitted chunk=0 emit_ms=3\n\
                   x INFO other took_ms=100\n";
        let s = super::sum_phases(log);
        assert_eq!(s["query_ms"], (2, 12));
        assert_eq!(s["render_ms"], (2, 3));
        assert_eq!(s["emit_ms"], (1, 3));
        assert!(!s.contains_key("took_ms"));
    }
}
