//! Snapshot rows render exactly as the stream renders them (issue 16): the
//! type-matrix tables (every column type, edge values, NULLs, a composite
//! key in another order than the columns) are filled while a task with
//! `"snapshot": "never"` streams them; then a second task snapshots the same
//! tables into other topics. Every `read` message must equal the `insert`
//! of the same row value for value: same key, same `primary_key`, same
//! after image (names, order, JSON values).

mod support;
mod type_matrix_support;

use replicator_tests::{shared_stack, unique_name};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The text of the `after` image (the last field of a row message).
fn raw_after(value: &str) -> String {
    let at = value.rfind("\"after\":").expect("after field");
    value[at + 8..value.len() - 1].to_string()
}
use std::time::{Duration, Instant};
use support::Scenario;
use type_matrix_support::{columns, Recorder, Set};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_messages_equal_the_inserts_of_the_same_rows() {
    let stack = shared_stack!();
    // Given a streaming-only task and rows of every type inserted under it
    let s = Scenario::new(stack, "snaptypes").await;
    let mut cfg = s.config();
    cfg["source"]["snapshot"] = json!("never");
    s.put_config(cfg).await;
    let mut streamer = s.core("h1", 3000);
    streamer
        .wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let types = columns::types_table(&s.db);
    let wide = columns::wide_table(&s.db);
    // (the type matrix's session: zero dates allowed, time zone +05:30)
    let mut rec = Recorder::connect(stack).await;
    rec.ddl(&types, &types.create_sql()).await;
    rec.ddl(&wide, &wide.create_sql()).await;
    let (a, b, c, null) = (Set::A, Set::B, Set::C, Set::Null);
    let sql = types.insert_sql(&[(&["1"], a), (&["2"], b), (&["3"], c), (&["4"], null)]);
    rec.insert(&types, &sql, "id IN (1, 2, 3, 4)").await;
    let sql = wide.insert_sql(&[
        (&["1", "'w1'"], a),
        (&["2", "'w2'"], b),
        (&["3", "'w3'"], c),
    ]);
    rec.insert(&wide, &sql, "k1 IN (1, 2, 3)").await;
    let types_stream = stack
        .read_topic_until(&types.topic(), 5, Duration::from_secs(30))
        .await;
    let wide_stream = stack
        .read_topic_until(&wide.topic(), 4, Duration::from_secs(30))
        .await;

    // When a second task snapshots the same tables into other topics
    let task2 = unique_name("snaptypes2");
    let mut cfg2 = s.config();
    cfg2["source"]["snapshot"] = json!("initial");
    cfg2["name"] = json!(task2);
    cfg2["sink"]["topic"] = json!("snap.{database}.{table}");
    let path = format!("{}/tasks/{task2}", s.root);
    s.zk.ensure_path(&path).await.unwrap();
    s.zk.client()
        .set_data(&path, cfg2.to_string().as_bytes(), None)
        .await
        .unwrap();
    let mut copier = s.stack.core(
        &s.root,
        "h2",
        &["--task", &task2, "--zk-session-timeout-ms", "3000"],
        &[],
    );

    // Then each read equals the insert of its row: key, primary_key, after
    let mut problems = Vec::new();
    for (table, stream, n) in [(&types, &types_stream, 4), (&wide, &wide_stream, 3)] {
        let topic = format!("snap.{}", table.topic());
        let deadline = Instant::now() + Duration::from_secs(60);
        let reads = loop {
            let msgs = stack
                .read_topic_until(&topic, n, Duration::from_secs(30))
                .await;
            if msgs.len() >= n || Instant::now() > deadline {
                break msgs;
            }
        };
        assert_eq!(reads.len(), n, "{topic}:\n{}", copier.tail(30));
        // insert by its after image: (message, raw after text, key)
        let inserts: HashMap<String, (Value, String, Value)> = stream
            .iter()
            .filter(|m| m.value_json()["type"] == "insert")
            .map(|m| {
                let v = m.value_json();
                (
                    v["after"].to_string(),
                    (v, raw_after(&m.value_str()), m.key_json()),
                )
            })
            .collect();
        for m in &reads {
            let v = m.value_json();
            assert_eq!(v["type"], "read");
            let after = v["after"].to_string();
            match inserts.get(&after) {
                None => problems.push(format!(
                    "{topic}: read after image has no equal insert:\n read  {after}\n inserts {:?}",
                    inserts.keys().collect::<Vec<_>>()
                )),
                Some((ins, ins_raw, ins_key)) => {
                    if ins["primary_key"] != v["primary_key"] {
                        problems.push(format!(
                            "{topic}: primary_key {} vs {}",
                            v["primary_key"], ins["primary_key"]
                        ));
                    }
                    if m.key.as_deref() != Some(ins_key.to_string().as_bytes())
                        && m.key_json() != *ins_key
                    {
                        problems.push(format!(
                            "{topic}: key {} vs insert key {ins_key}",
                            m.key_json()
                        ));
                    }
                    // the same text: same names, same order, same digits
                    let raw = raw_after(&m.value_str());
                    if *ins_raw != raw {
                        problems.push(format!(
                            "{topic}: after text differs:\n read   {raw}\n insert {ins_raw}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        copier.tail(20)
    );
    streamer.stop().await;
    copier.stop().await;
}
