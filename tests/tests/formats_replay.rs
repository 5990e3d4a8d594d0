//! `sink.format: canal | maxwell | debezium` end to end (issue 17).
//!
//! Per format, a Core writes the type-matrix table's changes (every column
//! type, edge values, inserts, updates, a key change, deletes, the CREATE)
//! and a busier table's (a hundred rows in one transaction, updates,
//! deletes, key changes, a row of odd text). Then:
//! - type matrix (canal, maxwell): every message is compared field by field
//!   with the format's reference rendering of what `SELECT` returned for
//!   the row (written here from the tool's documented rendering, without
//!   the Core's code: [`canal_value`], [`maxwell_value`]);
//! - changelog replay (all three): the messages are replayed as Flink's
//!   `canal-json`, `maxwell-json` and `debezium-json` formats read them
//!   (insert / update-before + update-after / delete, snapshot reads as
//!   inserts, tombstones skipped) and the table they rebuild must equal
//!   `SELECT *`.
//!
//! (Debezium's own type matrix is `formats_debezium.rs`: the reference there
//! is Debezium itself.)

mod support;
mod type_matrix_support;

use replicator_tests::{shared_stack, Message};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::Scenario;
use type_matrix_support::{columns, same, Expect, Kind, Recorder, Set, TableSpec};

/// Our messages of a topic in binlog order (position header): a snapshot
/// row (`file:pos:s<chunk>.<row>`) before the stream rows of the
/// transaction at its boundary `file:pos`.
fn in_order(mut msgs: Vec<Message>) -> Vec<Message> {
    msgs.sort_by_key(position);
    msgs
}

/// `(file, pos, 0 snapshot | 1 stream, chunk, row)` of a message.
fn position(m: &Message) -> (String, u64, u8, u64, u64) {
    let h = std::str::from_utf8(m.header("replicator.position").expect("position header"))
        .unwrap()
        .to_string();
    let mut it = h.rsplitn(3, ':');
    let last = it.next().unwrap();
    let at = it.next().unwrap().parse().unwrap();
    let file = it.next().unwrap().to_string();
    match last.strip_prefix('s') {
        Some(cr) => {
            let (c, r) = cr.split_once('.').expect("s<chunk>.<row>");
            (file, at, 0, c.parse().unwrap(), r.parse().unwrap())
        }
        None => (file, at, 1, 0, last.parse().unwrap()),
    }
}

/// Rows in the tables before the task starts: the types table with four
/// rows and 21 rows of the busy table (three chunks of 7 exactly).
async fn existing_rows(rec: &mut Recorder, s: &Scenario) -> TableSpec {
    let types = columns::types_table(&s.db);
    rec.exec(&types.create_sql()).await;
    let (a, b, c, null) = (Set::A, Set::B, Set::C, Set::Null);
    let sql = types.insert_sql(&[
        (&["101"], a),
        (&["102"], b),
        (&["103"], c),
        (&["104"], null),
    ]);
    rec.existing(&types, &sql, "id IN (101, 102, 103, 104)")
        .await;
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
async fn type_changes(rec: &mut Recorder, types: &TableSpec) {
    let types = types.clone();
    let tq = types.sql_name();
    let (a, b, c, null) = (Set::A, Set::B, Set::C, Set::Null);
    // snapshot rows changed by the stream
    rec.update(
        &types,
        &types.update_sql(c, "id = 101"),
        "id = 101",
        "id = 101",
    )
    .await;
    rec.delete(
        &types,
        &format!("DELETE FROM {tq} WHERE id = 102"),
        "id = 102",
    )
    .await;
    rec.insert(
        &types,
        &types.insert_sql(&[(&["1"], a), (&["2"], b), (&["3"], c)]),
        "id IN (1, 2, 3)",
    )
    .await;
    rec.insert(&types, &types.insert_sql(&[(&["4"], null)]), "id = 4")
        .await;
    rec.update(&types, &types.update_sql(c, "id = 1"), "id = 1", "id = 1")
        .await;
    rec.update(&types, &types.update_sql(a, "id = 4"), "id = 4", "id = 4")
        .await;
    let sql = format!("UPDATE {tq} SET id = 30 WHERE id = 3");
    rec.update(&types, &sql, "id = 3", "id = 30").await;
    let sql = types.update_sql(null, "id IN (2, 30)");
    rec.update(&types, &sql, "id IN (2, 30)", "id IN (2, 30)")
        .await;
    rec.update(&types, &types.update_sql(b, "id = 2"), "id = 2", "id = 2")
        .await;
    rec.delete(&types, &format!("DELETE FROM {tq} WHERE id = 1"), "id = 1")
        .await;
}

/// Many changes on the scenario's table `t (id, v, txn, note)`.
async fn busy_changes(rec: &mut Recorder, s: &Scenario) {
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
async fn busy_table(s: &Scenario) -> BTreeMap<String, Map<String, Value>> {
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

/// A value as Canal's string (`None`: SQL NULL).
fn canal_value(kind: Kind, v: &Value) -> Value {
    match (kind, v) {
        (_, Value::Null) => Value::Null,
        (Kind::DateTime, Value::String(s)) => json!(s.replacen('T', " ", 1)),
        (Kind::Timestamp(_), Value::String(s)) => {
            json!(s.trim_end_matches('Z').replacen('T', " ", 1))
        }
        (Kind::Bytes | Kind::Geometry, Value::String(s)) => {
            json!(unbase64(s).iter().map(|&b| b as char).collect::<String>())
        }
        (Kind::Json, v) => v.clone(),
        (_, Value::String(s)) => json!(s),
        (_, other) => json!(other.to_string()),
    }
}

/// A value as Maxwell writes it.
fn maxwell_value(kind: Kind, ty: &str, v: &Value) -> Value {
    match (kind, v) {
        (_, Value::Null) => Value::Null,
        // the text as a JSON number (parsed as the message is)
        (Kind::Decimal, Value::String(s)) => serde_json::from_str(s).unwrap(),
        (Kind::Bit, Value::Number(n)) if ty.starts_with("BIT(1)") => json!(n.as_u64() != Some(0)),
        (Kind::DateTime, Value::String(s)) => json!(s.replacen('T', " ", 1)),
        (Kind::Timestamp(_), Value::String(s)) => {
            json!(s.trim_end_matches('Z').replacen('T', " ", 1))
        }
        (Kind::Text, Value::String(s)) if ty.starts_with("SET") => {
            json!(if s.is_empty() {
                vec![]
            } else {
                s.split(',').collect::<Vec<_>>()
            })
        }
        (_, v) => v.clone(),
    }
}

fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | A.iter().position(|&x| x == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A reference rendering: column kind, SQL type, docs/design.md §7 value.
type Render = dyn Fn(Kind, &str, &Value) -> Value;

/// Compares one image with its reference rendering, Canal's (strings) or
/// Maxwell's; `only` limits it to the columns given (Canal's and Maxwell's
/// `old` hold the changed columns only).
fn check_image(
    what: &str,
    t: &TableSpec,
    render: &Render,
    want: &Map<String, Value>,
    got: &Value,
    only: Option<&[String]>,
    out: &mut Vec<String>,
) {
    let Some(got) = got.as_object() else {
        out.push(format!("{what}: not an object: {got}"));
        return;
    };
    let names: Vec<&String> = match only {
        Some(o) => o.iter().collect(),
        None => t.cols.iter().map(|c| &c.name).collect(),
    };
    let got_names: Vec<&String> = got.keys().collect();
    if got_names != names {
        out.push(format!("{what}: columns {got_names:?}, expected {names:?}"));
    }
    for c in t.cols.iter().filter(|c| names.contains(&&c.name)) {
        let w = render(c.kind, &c.ty, &want[&c.name]);
        let g = got.get(&c.name).unwrap_or(&Value::Null);
        let ok = match (c.kind, &w, g) {
            // Canal's FLOAT/DOUBLE text, read back as the number it is
            (Kind::Float | Kind::Double, Value::String(a), Value::String(b)) => same(
                c.kind,
                &json!(a.parse::<f64>().unwrap()),
                &json!(b.parse::<f64>().unwrap_or(f64::NAN)),
            ),
            // Canal's JSON text
            (Kind::Json, w, Value::String(b)) if w != g => {
                serde_json::from_str::<Value>(b).is_ok_and(|b| &b == w)
            }
            (k, w, g) => same(k, w, g),
        };
        if !ok {
            out.push(format!("{what}.{}: expected {w:?}, got {g:?}", c.name));
        }
    }
}

/// Columns whose value differs between `before` and `after`.
fn changed(t: &TableSpec, before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    t.cols
        .iter()
        .filter(|c| before[&c.name] != after[&c.name])
        .map(|c| c.name.clone())
        .collect()
}

fn type_matrix(format: &str, t: &TableSpec, expected: &[Expect], msgs: &[Message]) -> Vec<String> {
    let mut out = Vec::new();
    if msgs.len() != expected.len() {
        out.push(format!(
            "{} messages, expected {}",
            msgs.len(),
            expected.len()
        ));
    }
    let canal = |k: Kind, _ty: &str, v: &Value| canal_value(k, v);
    let maxwell = |k: Kind, ty: &str, v: &Value| maxwell_value(k, ty, v);
    for (i, (e, m)) in expected.iter().zip(msgs).enumerate() {
        let v = m.value_json();
        let at = format!("#{i}");
        match (format, e) {
            ("canal", Expect::Ddl { sql }) => {
                if v["isDdl"] != json!(true) || v["sql"] != json!(sql) || v["type"] != "CREATE" {
                    out.push(format!(
                        "{at}: expected the CREATE as a DDL FlatMessage, got {v}"
                    ));
                }
            }
            ("maxwell", Expect::Ddl { sql }) => {
                if v["type"] != "table-create" || v["sql"] != json!(sql) {
                    out.push(format!("{at}: expected table-create, got {v}"));
                }
            }
            (
                "canal",
                Expect::Row {
                    kind,
                    pk,
                    before,
                    after,
                    ..
                },
            ) => {
                let ty = match *kind {
                    // Canal has no snapshot type
                    "insert" | "read" => "INSERT",
                    "update" => "UPDATE",
                    _ => "DELETE",
                };
                if v["type"] != ty || v["isDdl"] != json!(false) {
                    out.push(format!(
                        "{at}: type {} isDdl {}, expected {ty}",
                        v["type"], v["isDdl"]
                    ));
                }
                if v["database"] != json!(t.db)
                    || v["table"] != json!(t.name)
                    || v["pkNames"] != json!(pk)
                {
                    out.push(format!(
                        "{at}: database/table/pkNames {} {} {}",
                        v["database"], v["table"], v["pkNames"]
                    ));
                }
                let data = if *kind == "delete" { before } else { after };
                check_image(
                    &format!("{at} data"),
                    t,
                    &canal,
                    data.as_ref().unwrap(),
                    &v["data"][0],
                    None,
                    &mut out,
                );
                match (before, after, *kind) {
                    (Some(b), Some(a), "update") => {
                        let ch = changed(t, b, a);
                        check_image(
                            &format!("{at} old"),
                            t,
                            &canal,
                            b,
                            &v["old"][0],
                            Some(&ch),
                            &mut out,
                        );
                    }
                    _ if !v["old"].is_null() => out.push(format!("{at}: old {}", v["old"])),
                    _ => {}
                }
                for c in &t.cols {
                    if !v["sqlType"][&c.name].is_i64() || !v["mysqlType"][&c.name].is_string() {
                        out.push(format!("{at}: sqlType/mysqlType of {} missing", c.name));
                    }
                }
                if m.key_json() != json!([data.as_ref().unwrap()["id"]]) {
                    out.push(format!("{at}: key {}", m.key_json()));
                }
            }
            (
                "maxwell",
                Expect::Row {
                    kind,
                    before,
                    after,
                    ..
                },
            ) => {
                let ty = match *kind {
                    "read" => "bootstrap-insert",
                    k => k,
                };
                if v["type"] != json!(ty) {
                    out.push(format!("{at}: type {}, expected {ty}", v["type"]));
                }
                if v["database"] != json!(t.db)
                    || v["table"] != json!(t.name)
                    || v["primary_key_columns"] != json!(["id"])
                {
                    out.push(format!(
                        "{at}: database/table/primary_key_columns {} {} {}",
                        v["database"], v["table"], v["primary_key_columns"]
                    ));
                }
                let data = if *kind == "delete" { before } else { after };
                let data = data.as_ref().unwrap();
                check_image(
                    &format!("{at} data"),
                    t,
                    &maxwell,
                    data,
                    &v["data"],
                    None,
                    &mut out,
                );
                match (before, after, *kind) {
                    (Some(b), Some(a), "update") => {
                        let ch = changed(t, b, a);
                        check_image(
                            &format!("{at} old"),
                            t,
                            &maxwell,
                            b,
                            &v["old"],
                            Some(&ch),
                            &mut out,
                        );
                    }
                    _ if v.get("old").is_some() => out.push(format!("{at}: old {}", v["old"])),
                    _ => {}
                }
                if v["primary_key"] != json!([data["id"]])
                    || !v["ts"].is_i64()
                    || !v["position"].is_string()
                {
                    out.push(format!(
                        "{at}: primary_key/ts/position {} {} {}",
                        v["primary_key"], v["ts"], v["position"]
                    ));
                }
                let key = json!({"database": t.db, "table": t.name, "pk.id": data["id"]});
                if m.key_json() != key {
                    out.push(format!("{at}: key {}, expected {key}", m.key_json()));
                }
            }
            (f, e) => out.push(format!("{at}: no reference for {f} {e:?}")),
        }
    }
    out
}

/// Replays a topic as Flink's changelog formats do; returns the table
/// rebuilt, keyed by `key_of(row)`.
fn replay(
    format: &str,
    msgs: &[Message],
    key_of: &dyn Fn(&Map<String, Value>) -> String,
) -> Result<BTreeMap<String, Map<String, Value>>, String> {
    let mut table = BTreeMap::new();
    let delete = |table: &mut BTreeMap<String, Map<String, Value>>, row: &Map<String, Value>| {
        let k = key_of(row);
        match table.remove(&k) {
            Some(old) if &old == row => Ok(()),
            Some(old) => Err(format!("retracted {row:?} but the table holds {old:?}")),
            None => Err(format!("retracted {row:?}, not in the table")),
        }
    };
    let insert =
        |table: &mut BTreeMap<String, Map<String, Value>>, row: &Map<String, Value>| match table
            .insert(key_of(row), row.clone())
        {
            None => Ok(()),
            Some(old) => Err(format!("inserted {row:?} over {old:?}")),
        };
    for m in msgs {
        let Some(bytes) = m.value.as_deref() else {
            continue; // a tombstone: Flink skips it
        };
        let v: Value = serde_json::from_slice(bytes).unwrap();
        let obj = |v: &Value| v.as_object().cloned().ok_or(format!("not a row: {v}"));
        match format {
            "debezium" => match v["op"].as_str() {
                Some("c" | "r") => insert(&mut table, &obj(&v["after"])?)?,
                Some("u") => {
                    delete(&mut table, &obj(&v["before"])?)?;
                    insert(&mut table, &obj(&v["after"])?)?;
                }
                Some("d") => delete(&mut table, &obj(&v["before"])?)?,
                _ if v.get("ddl").is_some() => {}
                _ => return Err(format!("unknown op: {v}")),
            },
            "canal" => {
                if v["isDdl"] == json!(true) {
                    continue;
                }
                let data = obj(&v["data"][0])?;
                match v["type"].as_str() {
                    Some("INSERT") => insert(&mut table, &data)?,
                    Some("UPDATE") => {
                        let mut before = data.clone();
                        before.extend(obj(&v["old"][0])?);
                        delete(&mut table, &before)?;
                        insert(&mut table, &data)?;
                    }
                    Some("DELETE") => delete(&mut table, &data)?,
                    _ => return Err(format!("unknown type: {v}")),
                }
            }
            _ => {
                if v["type"].as_str().is_some_and(|t| t.starts_with("table-")) {
                    continue; // a DDL event
                }
                let data = obj(&v["data"])?;
                match v["type"].as_str() {
                    Some("insert" | "bootstrap-insert") => insert(&mut table, &data)?,
                    Some("update") => {
                        let mut before = data.clone();
                        before.extend(obj(&v["old"])?);
                        delete(&mut table, &before)?;
                        insert(&mut table, &data)?;
                    }
                    Some("delete") => delete(&mut table, &data)?,
                    _ => return Err(format!("unknown type: {v}")),
                }
            }
        }
    }
    Ok(table)
}

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
