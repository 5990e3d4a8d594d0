//! What `formats_replay.rs` writes: the rows in the tables before the task
//! starts, the type-matrix changes, many changes of a busy table, and that
//! table as `SELECT *` returns it.

use crate::support::Scenario;
use crate::type_matrix_support::{columns, Recorder, Set, TableSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Rows in the tables before the task starts: the types table with four
/// rows and 21 rows of the busy table (three chunks of 7 exactly).
pub async fn existing_rows(rec: &mut Recorder, s: &Scenario) -> TableSpec {
    let types = columns::types_table(&s.db);
    rec.existing_type_rows(&types).await;
    let rows: Vec<String> = (1..=21)
        .map(|i| {
            let note = if i % 4 == 0 {
                "NULL".to_string()
            } else {
                format!("'s{i}'")
            };
            format!("({}, {i}, 0, {note})", 20_000 + i)
        })
        .collect();
    rec.exec(&format!(
        "INSERT INTO `{}`.`{}` VALUES {}",
        s.db,
        s.table,
        rows.join(", ")
    ))
    .await;
    types
}

/// Runs the type-matrix changes on `types` (which holds rows 101..104 of
/// the snapshot).
pub async fn type_changes(rec: &mut Recorder, types: &TableSpec) {
    let types = types.clone();
    let tq = types.sql_name();
    // snapshot rows changed by the stream
    rec.change_snapshot_rows(&types).await;
    rec.type_matrix_changes(&types).await;
    rec.update(
        &types,
        &types.update_sql(Set::B, "id = 2"),
        "id = 2",
        "id = 2",
    )
    .await;
    rec.delete(&types, &format!("DELETE FROM {tq} WHERE id = 1"), "id = 1")
        .await;
}

/// Many changes on the scenario's table `t (id, v, txn, note)`.
pub async fn busy_changes(rec: &mut Recorder, s: &Scenario) {
    let t = format!("`{}`.`{}`", s.db, s.table);
    let rows: Vec<String> = (1..=100)
        .map(|i| {
            let note = if i % 7 == 0 {
                "NULL".to_string()
            } else {
                format!("'n{i}'")
            };
            format!("({i}, {i}, 1, {note})")
        })
        .collect();
    rec.exec("BEGIN").await;
    rec.exec(&format!("INSERT INTO {t} VALUES {}", rows.join(", ")))
        .await;
    rec.exec("COMMIT").await;
    rec.exec(&format!(
        "UPDATE {t} SET v = v + 1000, txn = 2 WHERE id % 3 = 0"
    ))
    .await;
    rec.exec(&format!("DELETE FROM {t} WHERE id % 5 = 0")).await;
    rec.exec(&format!("UPDATE {t} SET id = id + 1000 WHERE id IN (1, 2)"))
        .await;
    rec.exec(&format!(
        "INSERT INTO {t} VALUES (5000, -1, 3, 'é \"q\" \\\\ ✓')"
    ))
    .await;
    rec.exec(&format!("UPDATE {t} SET note = NULL WHERE id = 5000"))
        .await;
    // snapshot rows changed by the stream
    rec.exec(&format!(
        "UPDATE {t} SET v = -v WHERE id IN (20001, 20007, 20021)"
    ))
    .await;
    rec.exec(&format!("DELETE FROM {t} WHERE id IN (20002, 20014)"))
        .await;
}

/// `SELECT *` of `t`, keyed by id, values as JSON (numbers, text, null).
pub async fn busy_table(s: &Scenario) -> BTreeMap<String, Map<String, Value>> {
    let rows: Vec<(i64, i64, i64, Option<String>)> = s
        .stack
        .query(&format!(
            "SELECT id, v, txn, note FROM `{}`.`{}` ORDER BY id",
            s.db, s.table
        ))
        .await;
    rows.into_iter()
        .map(|(id, v, txn, note)| {
            let row = json!({"id": id, "v": v, "txn": txn, "note": note});
            (id.to_string(), row.as_object().unwrap().clone())
        })
        .collect()
}
