//! Type matrix (issue 3): every MySQL/MariaDB column type through a real
//! Core, each Kafka message compared field by field with what `SELECT`
//! returns for the same row, rendered by the docs/design.md §7 rules
//! ([`type_matrix_support::render`], written independently of the decoder).
//!
//! Per message it checks `type`, `task`/`database`/`table`, `ts_ms`,
//! `position` (file, pos, row, gtid), the headers `replicator.task` and
//! `replicator.position`, `primary_key`, the key (primary key values in key
//! order, the whole row without one), and every column of `before` and
//! `after` (names, table order, values); `ddl` messages for CREATE and
//! ALTER carry the statement. Messages are put in binlog order by their
//! position.

mod support;
mod type_matrix_support;

use replicator_tests::mariadb_pair::MariaSolo;
use replicator_tests::{shared_stack, Stack};
use serde_json::json;
use std::time::Duration;
use support::Scenario;
use type_matrix_support::{columns, compare, Expect, Recorder, Set, TableSpec};

/// Reads each table's topic until its expected messages arrived and
/// returns every mismatch.
async fn mismatches(
    stack: &Stack,
    task: &str,
    rec: &Recorder,
    tables: &[&TableSpec],
) -> Vec<String> {
    let mut problems = Vec::new();
    for t in tables {
        let expected = rec.expected(&t.name);
        let msgs = stack
            .read_topic_until(&t.topic(), expected.len(), Duration::from_secs(60))
            .await;
        problems.extend(compare(task, t, expected, &msgs));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_matches_select() {
    let stack = shared_stack!();
    matrix(stack).await;
}

/// The same matrix on a MariaDB writing compressed binlog events
/// (`log_bin_compress=ON`, every event of 10 bytes or more compressed):
/// QUERY_COMPRESSED and WRITE/UPDATE/DELETE_ROWS_COMPRESSED_V1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_matches_select_with_compressed_binlog() {
    let shared = shared_stack!();
    let solo = MariaSolo::start("log_bin_compress=ON\nlog_bin_compress_min_len=10")
        .await
        .unwrap_or_else(|e| panic!("cannot start MariaDB with log_bin_compress: {e}"));
    let on: Vec<String> = solo.db.query("SELECT @@global.log_bin_compress").await;
    assert_eq!(on, vec!["1".to_string()], "log_bin_compress is not on");
    matrix(shared.with_mysql(solo.db.port).leak()).await;
    // the binlog really holds compressed events
    let events: Vec<mysql_async::Row> = solo.db.query("SHOW BINLOG EVENTS").await;
    let kinds: Vec<String> = events
        .iter()
        .filter_map(|r| r.get::<String, _>("Event_type"))
        .filter(|t| t.contains("ompressed"))
        .collect();
    assert!(
        kinds.iter().any(|k| k.starts_with("Query_compressed"))
            && kinds.iter().any(|k| k.starts_with("Write_rows_compressed"))
            && kinds
                .iter()
                .any(|k| k.starts_with("Update_rows_compressed"))
            && kinds
                .iter()
                .any(|k| k.starts_with("Delete_rows_compressed")),
        "compressed event kinds in the binlog: {kinds:?}"
    );
}

async fn matrix(stack: &'static Stack) {
    // Given a Core replicating a fresh database from the current position
    let s = Scenario::new(stack, "types").await;
    let mut core = s.core("h1", 3000);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let types = columns::types_table(&s.db);
    let wide = columns::wide_table(&s.db);
    let mut nopk = columns::nopk_table(&s.db);
    let mut rec = Recorder::connect(stack).await;
    let tq = types.sql_name();

    // When tables with every type are created, and rows with edge values
    // inserted (one multi-row statement), updated and deleted
    rec.ddl(&types, &types.create_sql()).await;
    rec.ddl(&wide, &wide.create_sql()).await;
    rec.ddl(&nopk, &nopk.create_sql()).await;
    let (a, b, c) = (Set::A, Set::B, Set::C);
    rec.type_matrix_changes(&types).await;
    rec.update(&types, &types.update_sql(b, "id = 2"), "id = 2", "id = 2")
        .await;
    let sql = format!("DELETE FROM {tq} WHERE id = 1");
    rec.delete(&types, &sql, "id = 1").await;
    let sql = format!("DELETE FROM {tq} WHERE id IN (2, 4)");
    rec.delete(&types, &sql, "id IN (2, 4)").await;

    let wq = wide.sql_name();
    let sql = wide.insert_sql(&[
        (&["1", "'w1'"], a),
        (&["2", "'w2'"], b),
        (&["3", "'w3'"], c),
    ]);
    rec.insert(&wide, &sql, "k1 IN (1, 2, 3)").await;
    rec.update(&wide, &wide.update_sql(c, "k1 = 2"), "k1 = 2", "k1 = 2")
        .await;
    let sql = format!("DELETE FROM {wq} WHERE k1 = 1");
    rec.delete(&wide, &sql, "k1 = 1").await;

    // (no primary key: rows of one statement come in insertion order, and
    // the ALTERs between the inserts change the column set live)
    let nq = nopk.sql_name();
    let sql = nopk.insert_sql(&[(&[], b), (&[], a)]);
    rec.insert(&nopk, &sql, "a IN (1, -2)").await;
    rec.update(&nopk, &nopk.update_sql(c, "a = 1"), "a = 1", "a = 3")
        .await;
    let sql = format!("ALTER TABLE {nq} ADD COLUMN z BIGINT UNSIGNED FIRST");
    nopk.cols.insert(0, columns::nopk_z_col());
    rec.ddl(&nopk, &sql).await;
    rec.insert(&nopk, &nopk.insert_sql(&[(&[], a)]), "z IS NOT NULL")
        .await;
    let sql = format!("ALTER TABLE {nq} DROP COLUMN b");
    nopk.drop_col("b");
    rec.ddl(&nopk, &sql).await;
    rec.insert(&nopk, &nopk.insert_sql(&[(&[], b)]), "z = 0")
        .await;
    rec.delete(&nopk, &format!("DELETE FROM {nq} WHERE a = 3"), "a = 3")
        .await;

    // Then every message equals its SELECT rendering, field by field
    let problems = mismatches(stack, &s.task, &rec, &[&types, &wide, &nopk]).await;
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        core.tail(20)
    );
    // and the matrix covered what it claims
    assert!(types.cols.len() > 75 && wide.cols.len() > 200);
    let all_null = |e: &Expect| match e {
        Expect::Row { after: Some(r), .. } => {
            r.values().filter(|v| v.is_null()).count() == r.len() - 1
        }
        _ => false,
    };
    let rows = rec.expected(&types.name);
    let nulls = rows.iter().filter(|e| all_null(e)).count();
    assert!(nulls >= 2, "rows with every nullable column NULL: {nulls}");
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_between_inserts_never_mislabels_a_column() {
    let stack = shared_stack!();
    // Given a task that starts at the binlog position before its table
    // exists, and a Core started only after all the changes below: it
    // reads every row event when information_schema already shows the
    // final table, the hardest case for column names and JSON flags
    let s = Scenario::new(stack, "alter").await;
    let (file, pos) = stack.binlog_position().await;
    let mut t = columns::evolving_table(&s.db);
    let q = t.sql_name();
    let mut rec = Recorder::connect(stack).await;
    let (a, b, c) = (Set::A, Set::B, Set::C);

    // When rows are inserted between ALTERs that add and drop columns
    rec.ddl(&t, &t.create_sql()).await;
    rec.insert(&t, &t.insert_sql(&[(&["1"], a)]), "id = 1")
        .await;
    let sql = format!("ALTER TABLE {q} ADD COLUMN extra VARCHAR(10) DEFAULT 'x' AFTER id");
    t.add_col_after("id", columns::extra_col());
    rec.ddl(&t, &sql).await;
    rec.insert(&t, &t.insert_sql(&[(&["2"], b)]), "id = 2")
        .await;
    let sql = format!("ALTER TABLE {q} DROP COLUMN a");
    t.drop_col("a");
    rec.ddl(&t, &sql).await;
    rec.insert(&t, &t.insert_sql(&[(&["3"], c)]), "id = 3")
        .await;
    rec.update(&t, &t.update_sql(a, "id = 1"), "id = 1", "id = 1")
        .await;
    let sql = format!("ALTER TABLE {q} ADD COLUMN tail JSON FIRST");
    t.cols.insert(0, columns::tail_json_col());
    rec.ddl(&t, &sql).await;
    rec.insert(&t, &t.insert_sql(&[(&["4"], b)]), "id = 4")
        .await;
    rec.delete(&t, &format!("DELETE FROM {q} WHERE id = 2"), "id = 2")
        .await;
    let mut cfg = s.config();
    cfg["source"]["start"] = json!({"file": file, "pos": pos});
    // (the stream only: a snapshot would add reads of the final rows)
    cfg["source"]["snapshot"] = json!("never");
    s.put_config(cfg).await;
    let mut core = s.core("h1", 3000);

    // Then each row carries the column set and values of its time
    let problems = mismatches(stack, &s.task, &rec, &[&t]).await;
    // JSON flags come from information_schema by column name, so a table map
    // of an older shape of the table is completed correctly too.
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        core.tail(20)
    );
    core.stop().await;
}
