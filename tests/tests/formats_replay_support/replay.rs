//! The changelog replay: a topic read as Flink's `canal-json`,
//! `maxwell-json` and `debezium-json` formats read it (insert /
//! update-before + update-after / delete, snapshot reads as inserts,
//! tombstones skipped), rebuilding the table.

use replicator_tests::Message;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Replays a topic as Flink's changelog formats do; returns the table
/// rebuilt, keyed by `key_of(row)`.
pub fn replay(
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
