//! `sink.format: canal | maxwell | debezium` end to end (issue 17).
//!
//! Per format, a Core writes the type-matrix table's changes (every column
//! type, edge values, inserts, updates, a key change, deletes, the CREATE)
//! and a busier table's (a hundred rows in one transaction, updates,
//! deletes, key changes, a row of odd text). Then:
//! - type matrix (canal, maxwell): every message is compared field by field
//!   with the format's reference rendering of what `SELECT` returned for
//!   the row (written here from the tool's documented rendering, without
//!   the Core's code: `formats_replay_support/reference.rs`);
//! - changelog replay (all three): the messages are replayed as Flink's
//!   `canal-json`, `maxwell-json` and `debezium-json` formats read them
//!   (insert / update-before + update-after / delete, snapshot reads as
//!   inserts, tombstones skipped) and the table they rebuild must equal
//!   `SELECT *`.
//!
//! (Debezium's own type matrix is `formats_debezium.rs`: the reference there
//! is Debezium itself.)
//!
//! The helpers are in `formats_replay_support/`: the changes, the reference
//! renderings and the replay.

mod formats_replay_support;
mod support;
mod type_matrix_support;

use formats_replay_support::changes::{busy_changes, busy_table, existing_rows, type_changes};
use formats_replay_support::in_order;
use formats_replay_support::reference::{
    canal_value, check_image, maxwell_value, type_matrix, Render,
};
use formats_replay_support::replay::replay;
use replicator_tests::{shared_stack, Message};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::Scenario;
use type_matrix_support::{Kind, Recorder};

async fn format_end_to_end(format: &str) {
    let stack = shared_stack!();
    // Given a Core writing the task's tables in `format`, with tombstones
    // and rows in its tables already, copied by the snapshot in chunks of 7
    let s = Scenario::new(stack, &format!("fmt_{format}")).await;
    let mut rec = Recorder::connect(stack).await;
    let types = existing_rows(&mut rec, &s).await;
    let mut cfg = s.config();
    cfg["sink"]["format"] = json!(format);
    cfg["sink"]["tombstones"] = json!(true);
    cfg["source"]["snapshot"] = json!("initial");
    cfg["source"]["snapshot_chunk_rows"] = json!(7);
    s.put_config(cfg).await;
    let mut core = s.core("h1", 3000);
    core.wait_for_log("snapshot done", Duration::from_secs(60))
        .await;

    // When the type-matrix changes and many changes of a busy table run
    type_changes(&mut rec, &types).await;
    busy_changes(&mut rec, &s).await;
    // and a table is created
    let later = format!("later_{format}");
    rec.exec(&format!(
        "CREATE TABLE `{}`.`{later}` (id INT PRIMARY KEY)",
        s.db
    ))
    .await;

    // Then the busy table rebuilt from its messages equals SELECT *
    let want = busy_table(&s).await;
    let key = |r: &Map<String, Value>| match &r["id"] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    // rows: 21 snapshot reads, 100 inserts, 33 updates, 20 deletes, 2 key
    // changes, 1 insert and 1 update, 3 updates and 2 deletes of snapshot
    // rows (Debezium writes a key change as delete + create, and every
    // delete is followed by its tombstone here)
    // (the busy updates and deletes of every third and fifth id hit 7 and 4
    // snapshot rows too)
    let n = match format {
        "debezium" => 21 + 100 + 33 + 20 * 2 + 2 * 3 + 2 + 3 + 2 * 2 + 7 + 4 * 2,
        _ => 21 + 100 + 33 + 20 * 2 + 2 + 2 + 3 + 2 * 2 + 7 + 4 * 2,
    };
    let msgs = in_order(
        stack
            .read_topic_until(&s.topic, n, Duration::from_secs(90))
            .await,
    );
    assert_eq!(msgs.len(), n, "messages of {}", s.topic);
    let tombstones = msgs.iter().filter(|m| m.value.is_none()).count();
    let deletes = if format == "debezium" { 28 } else { 26 };
    assert_eq!(tombstones, deletes, "a tombstone per delete");
    let reads = msgs
        .iter()
        .filter(|m| m.value.is_some())
        .filter(|m| {
            let v = m.value_json();
            v["op"] == "r" || v["type"] == "bootstrap-insert" || v["type"] == "read"
        })
        .count();
    match format {
        // Canal has no snapshot type: its reads are INSERTs
        "canal" => assert_eq!(reads, 0),
        _ => assert_eq!(reads, 21, "snapshot reads"),
    }
    if format == "debezium" {
        check_snapshot_marks(&msgs);
    }
    if format == "maxwell" {
        check_commit_flags(&msgs);
    }
    let got = replay(format, &msgs, &key).unwrap_or_else(|e| panic!("{format} replay: {e}"));
    let want: BTreeMap<String, Map<String, Value>> = if format == "canal" {
        want.into_iter()
            .map(|(k, row)| {
                let row = row
                    .into_iter()
                    .map(|(c, v)| {
                        let kind = if c == "note" { Kind::Text } else { Kind::Int };
                        (c, canal_value(kind, &v))
                    })
                    .collect();
                (k, row)
            })
            .collect()
    } else {
        want
    };
    assert_eq!(got.len(), want.len(), "rows rebuilt");
    assert_eq!(
        got, want,
        "{format}: the replayed table differs from SELECT *"
    );

    // and (Canal, Maxwell) every type-matrix message equals the reference
    if format != "debezium" {
        let expected = rec.expected(&types.name);
        let msgs = in_order(
            stack
                .read_topic_until(&types.topic(), expected.len(), Duration::from_secs(60))
                .await,
        );
        let msgs: Vec<Message> = msgs.into_iter().filter(|m| m.value.is_some()).collect();
        let problems = type_matrix(format, &types, expected, &msgs);
        assert!(
            problems.is_empty(),
            "{} mismatches:\n{}",
            problems.len(),
            problems.join("\n")
        );
        // and the type-matrix table replays to its SELECT too
        let tmsgs = in_order(stack.read_topic(&types.topic()).await);
        let rebuilt = replay(format, &tmsgs, &key).unwrap_or_else(|e| panic!("{e}"));
        let rows = rec.rows(&types, "1 = 1").await;
        assert_eq!(rebuilt.len(), rows.len(), "type-matrix rows rebuilt");
        let mut out = Vec::new();
        let render: Box<Render> = if format == "canal" {
            Box::new(|k, _ty: &str, v: &Value| canal_value(k, v))
        } else {
            Box::new(maxwell_value)
        };
        for row in &rows {
            let id = key(&Map::from_iter([(
                "id".to_string(),
                render(Kind::Int, "INT", &row["id"]),
            )]));
            let got = rebuilt
                .get(&id)
                .cloned()
                .map(Value::Object)
                .unwrap_or(Value::Null);
            check_image(
                &format!("row {id}"),
                &types,
                &*render,
                row,
                &got,
                None,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{}", out.join("\n"));
    }

    // and the CREATE is written as the tool writes a DDL event
    check_ddl(format, &s, &later).await;
    core.stop().await;
}

/// Debezium's `source.snapshot` marks of one topic's reads: the first row of
/// the table `first` or `first_in_data_collection`, its last row `last` or
/// `last_in_data_collection`, every other row `true`.
fn check_snapshot_marks(msgs: &[Message]) {
    let marks: Vec<String> = msgs
        .iter()
        .filter(|m| m.value.is_some() && m.value_json()["op"] == "r")
        .map(|m| {
            m.value_json()["source"]["snapshot"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let n = marks.len();
    assert!(n >= 2, "{marks:?}");
    assert!(
        ["first", "first_in_data_collection"].contains(&marks[0].as_str()),
        "{marks:?}"
    );
    assert!(
        ["last", "last_in_data_collection"].contains(&marks[n - 1].as_str()),
        "{marks:?}"
    );
    assert!(marks[1..n - 1].iter().all(|m| m == "true"), "{marks:?}");
}

/// Maxwell's `commit: true`: on the last row of every transaction (rows
/// grouped by `xid`, in binlog order), on no other row; never on snapshot
/// rows (`bootstrap-insert`, outside transactions).
fn check_commit_flags(msgs: &[Message]) {
    let rows: Vec<Value> = msgs
        .iter()
        .filter(|m| m.value.is_some())
        .map(Message::value_json)
        .collect();
    let mut txns = 0;
    for (i, v) in rows.iter().enumerate() {
        if v["type"] == "bootstrap-insert" {
            assert!(v.get("commit").is_none() && v.get("xid").is_none(), "{v}");
            continue;
        }
        let last = rows.get(i + 1).is_none_or(|n| n["xid"] != v["xid"]);
        assert_eq!(v.get("commit") == Some(&json!(true)), last, "row #{i}: {v}");
        txns += usize::from(last);
    }
    // the 100-row insert, the updates, deletes, key changes, the odd row
    // and its update, the updates and deletes of snapshot rows: 8
    assert_eq!(txns, 8, "transactions");
}

/// The DDL event of `CREATE TABLE later` in the format's shape.
async fn check_ddl(format: &str, s: &Scenario, later: &str) {
    let stack = s.stack;
    // Debezium: the schema change topic, named by the topic prefix (the task)
    let topic = match format {
        "debezium" => s.task.clone(),
        _ => format!("{}.{later}", s.db),
    };
    let pick =
        |v: &Value| format != "debezium" || v["ddl"].as_str().is_some_and(|d| d.contains(later));
    let msgs = stack
        .read_topic_until(&topic, 1, Duration::from_secs(30))
        .await;
    let v = msgs
        .iter()
        .filter(|m| m.value.is_some())
        .map(Message::value_json)
        .find(|v| pick(v))
        .unwrap_or_else(|| panic!("no DDL event of {later} in {topic}"));
    let sql = format!("CREATE TABLE `{}`.`{later}` (id INT PRIMARY KEY)", s.db);
    match format {
        "canal" => {
            assert_eq!(v["isDdl"], true, "{v}");
            assert_eq!(v["type"], "CREATE", "{v}");
            assert_eq!(v["sql"], json!(sql), "{v}");
            assert_eq!(v["table"], json!(later), "{v}");
        }
        "maxwell" => {
            assert_eq!(v["type"], "table-create", "{v}");
            assert_eq!(v["sql"], json!(sql), "{v}");
            assert_eq!(v["database"], json!(s.db), "{v}");
            assert_eq!(v["table"], json!(later), "{v}");
            assert_eq!(v["def"]["table"], json!(later), "{v}");
            assert_eq!(v["def"]["columns"][0]["name"], "id", "{v}");
            assert_eq!(v["def"]["primary-key"], json!(["id"]), "{v}");
        }
        _ => {
            assert_eq!(v["ddl"], json!(sql), "{v}");
            assert_eq!(v["databaseName"], json!(s.db), "{v}");
            assert_eq!(v["source"]["table"], json!(later), "{v}");
            let change = &v["tableChanges"][0];
            assert_eq!(change["type"], "CREATE", "{v}");
            assert_eq!(
                change["id"],
                json!(format!("\"{}\".\"{later}\"", s.db)),
                "{v}"
            );
            assert_eq!(
                change["table"]["primaryKeyColumnNames"],
                json!(["id"]),
                "{v}"
            );
            assert_eq!(change["table"]["columns"][0]["name"], "id", "{v}");
            assert_eq!(change["table"]["columns"][0]["typeName"], "INT", "{v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canal_type_matrix_and_changelog_replay() {
    format_end_to_end("canal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxwell_type_matrix_and_changelog_replay() {
    format_end_to_end("maxwell").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_changelog_replay() {
    format_end_to_end("debezium").await;
}
