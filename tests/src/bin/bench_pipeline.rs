//! Pipeline benchmark: seeds N rows (default 200,000 in 1,000-row inserts),
//! then measures in one run
//! 1. the raw binlog read: `mariadb-binlog --read-from-remote-server` of the
//!    seeded range to /dev/null, and
//! 2. our end to end: `replicator-core` from the binlog to Kafka
//!    acknowledgements with progress commits on (the context reaching the
//!    end of the seeded range),
//!
//! and prints both rates, their ratio, and the Core's peak RSS.
//!
//! `--codecs none,lz4,zstd,snappy,gzip` runs step 2 once per
//! `compression.type` on the same seeded range (a task and topic per codec)
//! and prints rows/s per codec beside the first one.
//!
//! `--formats json,debezium,canal,maxwell` runs step 2 once per
//! `sink.format` the same way and prints rows/s per format beside the
//! first one.
//!
//! `--tls` runs step 2 four times: plaintext and TLS, each with
//! `compression.type` none and lz4. The TLS runs write to a second Tansu
//! behind socat's TLS server (Tansu 0.6.0 cannot serve TLS itself, see
//! `secure_kafka`), so they also pay socat's extra hop; the plaintext runs
//! go straight to the stack's Tansu.
//!
//! `cargo build --release -p replicator-core -p replicator-tests --bins &&
//!  REPLICATOR_BIN_DIR=target/release target/release/bench-pipeline [ROWS]
//!  [--one-transaction] [--codecs LIST] [--formats LIST] [--tls]`
//! Uses the servers of `REPLICATOR_TEST_*` when set, else starts its own.

use mysql_async::prelude::Queryable;
use replicator_tests::bench::{self, create_orders, mib, peak_rss_kib};
use replicator_tests::secure_kafka::SecureKafka;
use replicator_tests::{unique_root, Stack};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let one_txn = args.iter().any(|a| a == "--one-transaction");
    let tls = args.iter().any(|a| a == "--tls");
    let codecs: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--codecs")
        .map(|i| {
            args.get(i + 1)
                .expect("--codecs needs a list, e.g. none,lz4")
        })
        .map(|list| list.split(',').map(|c| c.trim().to_string()).collect());
    let formats: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--formats")
        .map(|i| {
            args.get(i + 1)
                .expect("--formats needs a list, e.g. json,debezium")
        })
        .map(|list| list.split(',').map(|c| c.trim().to_string()).collect());
    let batch = 1_000;
    let stack = Stack::from_env().unwrap_or_else(Stack::start);
    let db = create_orders(&stack, "bench_pipeline").await;
    let (file, start_pos) = stack.binlog_position().await;

    // Seed
    let t = Instant::now();
    let mut conn = stack.conn().await;
    if one_txn {
        // one statement, one transaction of `rows` rows (MariaDB's sequence engine)
        conn.query_drop(format!(
            "INSERT INTO `{db}`.orders SELECT seq, seq % 1000, CONCAT('note ', seq), \
             (seq % 100000) + (seq % 100) / 100, '2024-01-02 03:04:05.123' FROM `{db}`.seq_0_to_{}",
            rows - 1
        ))
        .await
        .unwrap();
    } else {
        let mut id = 0usize;
        while id < rows {
            let n = batch.min(rows - id);
            let values: Vec<String> = (0..n)
                .map(|i| {
                    let k = id + i;
                    format!(
                        "({k}, {}, 'note {k}', {}.{:02}, '2024-01-02 03:04:05.{:03}')",
                        k % 1000,
                        k % 100_000,
                        k % 100,
                        k % 1000
                    )
                })
                .collect();
            conn.query_drop(format!(
                "INSERT INTO `{db}`.orders VALUES {}",
                values.join(",")
            ))
            .await
            .unwrap();
            id += n;
        }
    }
    let (end_file, end_pos) = stack.binlog_position().await;
    assert_eq!(file, end_file, "the seed must fit in one binlog file");
    println!(
        "seeded {rows} rows in {} in {:.1} s ({} bytes of binlog)",
        if one_txn {
            "ONE transaction".to_string()
        } else {
            format!("{batch}-row inserts")
        },
        t.elapsed().as_secs_f64(),
        end_pos - start_pos
    );

    // 1. Raw read with mariadb-binlog
    let t = Instant::now();
    let status = std::process::Command::new("mariadb-binlog")
        .args([
            "--read-from-remote-server",
            &format!("--host={}", stack.mysql_host()),
            &format!("--port={}", stack.mysql_port()),
            &format!("--user={}", stack.mysql_user()),
            &format!("--password={}", stack.mysql_password()),
            &format!("--start-position={start_pos}"),
            &format!("--stop-position={end_pos}"),
            &file,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("mariadb-binlog runs");
    assert!(status.success(), "mariadb-binlog failed: {status}");
    let raw_s = t.elapsed().as_secs_f64();
    let raw_rate = rows as f64 / raw_s;

    // 2. End to end through replicator-core
    let run = Run {
        stack: &stack,
        db: &db,
        file: &file,
        start_pos,
        end_pos,
        rows,
    };
    println!("raw binlog read (mariadb-binlog to /dev/null): {raw_s:.2} s, {raw_rate:.0} rows/s");
    let settings: Vec<Setting> = if let Some(formats) = formats {
        formats
            .iter()
            .map(|f| Setting::new(format!("sink.format {f:>8}"), json!({ "format": f })))
            .collect()
    } else if let Some(codecs) = codecs {
        codecs
            .iter()
            .map(|c| Setting::compression(c, false))
            .collect()
    } else if tls {
        ["none", "lz4"]
            .iter()
            .flat_map(|c| {
                [
                    Setting::compression(c, false),
                    Setting::compression(c, true),
                ]
            })
            .collect()
    } else {
        let (e2e_s, rss, in_kafka) = run
            .core(&stack, 0, &Setting::new(String::new(), json!({})))
            .await;
        let e2e_rate = rows as f64 / e2e_s;
        println!("end to end (binlog -> Kafka acks, context committed every 20 ms): {e2e_s:.2} s, {e2e_rate:.0} rows/s");
        println!("ratio end-to-end / raw read: {:.2}", e2e_rate / raw_rate);
        println!("messages in Kafka: {in_kafka} (one per row)");
        println!("replicator-core peak RSS: {}", mib(rss));
        return;
    };
    // the TLS runs go through a private Tansu behind socat's TLS server
    let secure = settings
        .iter()
        .any(|s| s.tls)
        .then(|| SecureKafka::start(false));
    let secure_stack = secure
        .as_ref()
        .map(|k| k.stack(&stack, SecureKafka::tls_properties(&k.ca_file)));
    let mut first: Option<(String, f64)> = None;
    for (i, setting) in settings.iter().enumerate() {
        let kafka = match (&secure_stack, setting.tls) {
            (Some(secure), true) => secure,
            _ => &stack,
        };
        let (e2e_s, rss, in_kafka) = run.core(kafka, i, setting).await;
        let rate = rows as f64 / e2e_s;
        let (base_name, base) = first
            .get_or_insert_with(|| (setting.label.trim().to_string(), rate))
            .clone();
        println!(
            "{}: {e2e_s:.2} s, {rate:.0} rows/s ({:.2} x {base_name}), {in_kafka} messages, peak RSS {}",
            setting.label,
            rate / base,
            mib(rss)
        );
    }
    if let Some(secure) = secure {
        secure.stop().await;
    }
}

/// One measured configuration: its printed label, what it sets in `sink`,
/// and whether it goes to the TLS broker.
struct Setting {
    label: String,
    sink: serde_json::Value,
    tls: bool,
}

impl Setting {
    fn new(label: String, sink: serde_json::Value) -> Setting {
        Setting {
            label,
            sink,
            tls: false,
        }
    }

    /// `compression.type` = `codec`, over TLS when `tls`.
    fn compression(codec: &str, tls: bool) -> Setting {
        let mut properties = json!({ "compression.type": codec });
        let transport = if tls { "tls" } else { "plaintext" };
        Setting {
            label: format!("{transport:>9} compression.type {codec:>6}"),
            sink: json!({ "properties": properties.take() }),
            tls,
        }
    }
}

/// The seeded range, for runs of the Core over it.
struct Run<'a> {
    stack: &'a Stack,
    db: &'a str,
    file: &'a str,
    start_pos: u64,
    end_pos: u64,
    rows: usize,
}

impl Run<'_> {
    /// One task with `setting` (into a topic of its own per run number `i`,
    /// on `kafka`'s broker) from the start of the range until its context
    /// reaches the end: seconds taken, the Core's peak RSS, messages in Kafka.
    async fn core(&self, kafka: &Stack, i: usize, setting: &Setting) -> (f64, Option<u64>, usize) {
        let (stack, db, file, start_pos, end_pos) =
            (self.stack, self.db, self.file, self.start_pos, self.end_pos);
        let root = unique_root();
        let zk = stack.zk(&root).await;
        let suffix = format!(".{i}");
        let mut sink = json!({"brokers": kafka.kafka_bootstrap(), "topic": format!("{{database}}.{{table}}{suffix}"), "partitions": 4});
        for (key, value) in setting.sink.as_object().into_iter().flatten() {
            sink[key] = value.clone();
        }
        if setting.tls {
            let properties = &mut sink["properties"];
            for (key, value) in kafka.kafka_properties() {
                properties[key] = json!(value);
            }
        }
        let source = bench::source(
            stack,
            888_001,
            db,
            json!({"start": {"file": file, "pos": start_pos}, "snapshot": "never"}),
        );
        // topic created up front so that its creation is not timed
        let topic = format!("{db}.orders{suffix}");
        kafka.create_topic(&topic, 4).await;
        let args = ["--commit-interval-ms", "20"];
        let (mut core, task) =
            bench::start_task(stack, &zk, &root, "bench", (source, sink), &args, &[]).await;
        let t = Instant::now();
        bench::wait_context(&zk, &task, &core, Duration::from_secs(600), |v| {
            (v["pos"].as_u64().unwrap_or(0) >= end_pos && v["file"] == file).then_some(())
        })
        .await;
        let e2e_s = t.elapsed().as_secs_f64();
        let rss = peak_rss_kib(core.pid());
        core.stop().await;
        // the context advances only past acknowledged rows; check Kafka holds them once
        let in_kafka = kafka.read_topic(&topic).await.len();
        assert_eq!(in_kafka as u64, self.rows as u64, "messages in {topic}");
        (e2e_s, rss, in_kafka)
    }
}
