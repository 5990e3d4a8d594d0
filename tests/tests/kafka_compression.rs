//! `compression.type` end to end: one task per codec replicates the same
//! binlog range (the same rows, among them wide and unicode ones) into a
//! topic of its own; an independent client (rdkafka's bundled librdkafka)
//! reads every topic back, and each must equal the topic of the task with
//! `none`: same partitions, keys, values and headers, in the same order.
//! This also shows the broker (Tansu) accepts each codec.

mod support;

use mysql_async::prelude::Queryable;
use replicator_common::message::TASK_HEADER;
use replicator_tests::{shared_stack, unique_name, Message};
use serde_json::json;
use std::time::Duration;
use support::Scenario;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// What a message carries, with the task's name left out.
type Seen = (
    i32,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn seen(m: &Message, task: &str) -> Seen {
    // the value's bytes as they are, but for the task's name
    let value = m.value.as_ref().map(|v| {
        let name = format!("\"task\":\"{task}\"");
        let text = std::str::from_utf8(v).expect("value is UTF-8");
        assert!(text.contains(&name), "value names the task: {text}");
        text.replacen(&name, "\"task\":\"T\"", 1).into_bytes()
    });
    let headers = m
        .headers
        .iter()
        .map(|(k, v)| {
            // the task header (with the value's "task" field) is the only part that differs between tasks
            let v = if k == TASK_HEADER { None } else { v.clone() };
            (k.clone(), v)
        })
        .collect();
    (m.partition, m.key.clone(), value, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_codec_reads_back_equal_to_uncompressed() {
    let stack = shared_stack!();
    // Given rows written once: 40 transactions of 25 rows with unicode
    // notes, a few rows of 3-6 KB, then an update and a delete
    let base = Scenario::new(stack, "compress").await;
    stack
        .sql(&format!(
            "ALTER TABLE `{}`.`{}` MODIFY note TEXT CHARACTER SET utf8mb4",
            base.db, base.table
        ))
        .await;
    let (file, pos) = stack.binlog_position().await;
    let mut conn = stack.conn().await;
    let mut rows = 0i64;
    for txn in 0..40i64 {
        let values: Vec<String> = (0..25i64)
            .map(|i| {
                let id = txn * 25 + i + 1;
                let note = if id % 97 == 0 {
                    "wide ✓ ".repeat(400 + (id as usize % 5) * 100)
                } else {
                    format!("row {id}: 日本語, ünïcødé, emoji 🚀, quote \\\" and tab \\t")
                };
                format!("({id}, {i}, {txn}, '{note}')")
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO `{}`.`{}` (id, v, txn, note) VALUES {}",
            base.db,
            base.table,
            values.join(",")
        ))
        .await
        .expect("insert");
        rows += 25;
    }
    conn.query_drop(format!(
        "UPDATE `{}`.`{}` SET note = 'ändern' WHERE id = 7",
        base.db, base.table
    ))
    .await
    .expect("update");
    conn.query_drop(format!(
        "DELETE FROM `{}`.`{}` WHERE id = 8",
        base.db, base.table
    ))
    .await
    .expect("delete");
    let expected = rows as usize + 2;

    // When one task per codec replicates that range into its own topic
    let mut runs = Vec::new();
    for codec in CODECS {
        let s = Scenario {
            stack,
            root: base.root.clone(),
            layout: base.layout.clone(),
            zk: stack.zk(&base.root).await,
            task: unique_name(&format!("compress-{codec}")),
            db: base.db.clone(),
            table: base.table.clone(),
            topic: format!("{}.{}.{codec}", base.db, base.table),
        };
        let mut cfg = s.config();
        cfg["source"]["start"] = json!({"file": file, "pos": pos});
        cfg["source"]["snapshot"] = json!("never");
        cfg["sink"]["topic"] = json!(format!("{{database}}.{{table}}.{codec}"));
        cfg["sink"]["properties"] = json!({"compression.type": codec, "linger.ms": "20"});
        s.put_config(cfg).await;
        let core = s.core("h1", 3000);
        runs.push((codec, s, core));
    }

    // Then every topic read back by rdkafka equals the one without compression
    let mut reference: Option<Vec<Seen>> = None;
    for (codec, s, core) in &mut runs {
        let msgs = s
            .stack
            .read_topic_until(&s.topic, expected, Duration::from_secs(90))
            .await;
        assert_eq!(
            msgs.len(),
            expected,
            "{codec}: messages in {}\n{}",
            s.topic,
            core.tail(30)
        );
        let got: Vec<Seen> = msgs.iter().map(|m| seen(m, &s.task)).collect();
        let wide = msgs
            .iter()
            .filter(|m| m.value.as_ref().is_some_and(|v| v.len() > 3_000))
            .count();
        assert!(wide >= 10, "{codec}: {wide} wide messages");
        assert!(
            msgs.iter()
                .any(|m| m.value_str().contains("日本語, ünïcødé, emoji 🚀")),
            "{codec}: unicode note"
        );
        assert!(
            msgs.iter()
                .all(|m| m.header(TASK_HEADER) == Some(s.task.as_bytes())),
            "{codec}: task header"
        );
        match &reference {
            None => reference = Some(got),
            Some(want) => {
                let first_diff = want.iter().zip(&got).position(|(a, b)| a != b);
                assert!(
                    first_diff.is_none(),
                    "{codec}: message #{first_diff:?} differs from none:\n{:?}\n{:?}",
                    first_diff.map(|i| &want[i]),
                    first_diff.map(|i| &got[i])
                );
            }
        }
        assert!(
            core.log_lines_matching("kafka producer stopped").is_empty(),
            "{codec}: producer failed\n{}",
            core.tail(30)
        );
    }
    for (_, _, core) in &mut runs {
        core.stop().await;
    }
}
