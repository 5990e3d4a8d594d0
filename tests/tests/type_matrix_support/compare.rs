//! Field-by-field comparison of a topic's messages with the recorded
//! expectations.

use super::{Expect, Kind, TableSpec};
use replicator_common::message::{POSITION_HEADER, TASK_HEADER};
use replicator_tests::Message;
use serde_json::{Map, Value};

/// The binlog order of a message: position file, transaction start, row.
fn order(v: &Value) -> (String, u64, u64) {
    let p = &v["position"];
    (
        p["file"].as_str().unwrap_or_default().to_string(),
        p["pos"].as_u64().unwrap_or_default(),
        p["row"].as_u64().unwrap_or_default(),
    )
}

/// Compares the messages of `t`'s topic with `expected`; one line per
/// mismatch (empty when all match).
pub fn compare(task: &str, t: &TableSpec, expected: &[Expect], msgs: &[Message]) -> Vec<String> {
    let mut got: Vec<(Value, &Message)> = msgs.iter().map(|m| (m.value_json(), m)).collect();
    got.sort_by_key(|(v, _)| order(v));
    let mut out = Vec::new();
    if got.len() != expected.len() {
        out.push(format!(
            "{}: {} messages, expected {}",
            t.name,
            got.len(),
            expected.len()
        ));
    }
    for (i, (e, (v, m))) in expected.iter().zip(&got).enumerate() {
        let mut p = Problems {
            out: &mut out,
            at: format!("{} #{i} ({} at {:?})", t.name, v["type"], order(v)),
        };
        check_envelope(&mut p, task, t, v, m);
        match e {
            Expect::Ddl { sql } => {
                p.eq("type", &Value::from("ddl"), &v["type"]);
                p.eq("sql", &Value::from(sql.as_str()), &v["sql"]);
                p.eq("key", &serde_json::json!([t.db, t.name]), &m.key_json());
            }
            Expect::Row {
                kind,
                cols,
                pk,
                before,
                after,
            } => {
                p.eq("type", &Value::from(*kind), &v["type"]);
                p.eq("primary_key", &serde_json::json!(pk), &v["primary_key"]);
                let key_image = if *kind == "delete" { before } else { after };
                let key_image = key_image.as_ref().expect("key image");
                let key: Vec<Value> = if pk.is_empty() {
                    cols.iter().map(|(n, _)| key_image[n].clone()).collect()
                } else {
                    pk.iter().map(|n| key_image[n].clone()).collect()
                };
                let key = Value::Array(key);
                if !same_key(cols, pk, &key, &m.key_json()) {
                    p.push(format!("key: expected {key}, got {}", m.key_json()));
                }
                p.image("before", cols, before.as_ref(), &v["before"]);
                p.image("after", cols, after.as_ref(), &v["after"]);
            }
        }
    }
    out
}

/// Keys compare like values: FLOAT/DOUBLE key parts as numbers.
fn same_key(cols: &[(String, Kind)], pk: &[String], want: &Value, got: &Value) -> bool {
    let (Some(w), Some(g)) = (want.as_array(), got.as_array()) else {
        return false;
    };
    let kinds: Vec<Kind> = if pk.is_empty() {
        cols.iter().map(|(_, k)| *k).collect()
    } else {
        pk.iter()
            .map(|n| {
                cols.iter()
                    .find(|(c, _)| c == n)
                    .map_or(Kind::Text, |c| c.1)
            })
            .collect()
    };
    w.len() == g.len()
        && kinds
            .iter()
            .zip(w.iter().zip(g))
            .all(|(k, (a, b))| same(*k, a, b))
}

/// Task, database, table, ts_ms, position and headers of any message.
fn check_envelope(p: &mut Problems<'_>, task: &str, t: &TableSpec, v: &Value, m: &Message) {
    p.eq("task", &Value::from(task), &v["task"]);
    p.eq("database", &Value::from(t.db.as_str()), &v["database"]);
    p.eq("table", &Value::from(t.name.as_str()), &v["table"]);
    if v["ts_ms"].as_i64().is_none_or(|ts| ts <= 0) {
        p.push(format!(
            "ts_ms: expected a positive number, got {}",
            v["ts_ms"]
        ));
    }
    let pos = &v["position"];
    let (file, at, row) = order(v);
    if file.is_empty() || at == 0 || !pos["row"].is_u64() {
        p.push(format!("position: expected file, pos and row, got {pos}"));
    }
    if !pos["gtid"].is_string() {
        p.push(format!(
            "position.gtid: expected a MariaDB GTID, got {}",
            pos["gtid"]
        ));
    }
    let header = |name: &str| {
        m.header(name)
            .map(|h| String::from_utf8_lossy(h).into_owned())
    };
    let want = format!("{file}:{at}:{row}");
    if header(TASK_HEADER).as_deref() != Some(task) {
        p.push(format!(
            "header replicator.task: expected {task:?}, got {:?}",
            header(TASK_HEADER)
        ));
    }
    if header(POSITION_HEADER).as_deref() != Some(want.as_str()) {
        p.push(format!(
            "header replicator.position: expected {want:?}, got {:?}",
            header(POSITION_HEADER)
        ));
    }
}

/// Mismatch lines of one message.
struct Problems<'a> {
    out: &'a mut Vec<String>,
    at: String,
}

impl Problems<'_> {
    fn push(&mut self, what: String) {
        self.out.push(format!("{}: {what}", self.at));
    }

    fn eq(&mut self, field: &str, want: &Value, got: &Value) {
        if want != got {
            self.push(format!(
                "{field}: expected {}, got {}",
                short(want),
                short(got)
            ));
        }
    }

    /// `before`/`after`: null when not expected, else every column in table
    /// order with its rendered value, and nothing else.
    fn image(
        &mut self,
        field: &str,
        cols: &[(String, Kind)],
        want: Option<&Map<String, Value>>,
        got: &Value,
    ) {
        let Some(want) = want else {
            self.eq(field, &Value::Null, got);
            return;
        };
        let Some(got) = got.as_object() else {
            self.push(format!("{field}: expected an object, got {}", short(got)));
            return;
        };
        for (name, kind) in cols {
            let w = &want[name];
            match got.get(name) {
                None => self.push(format!("{field}.{name}: missing, expected {}", short(w))),
                Some(g) if !same(*kind, w, g) => self.push(format!(
                    "{field}.{name} ({kind:?}): expected {}, got {}",
                    short(w),
                    short(g)
                )),
                Some(_) => {}
            }
        }
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let got_names: Vec<&str> = got.keys().map(String::as_str).collect();
        if names != got_names {
            self.push(format!(
                "{field}: columns {got_names:?}, expected {names:?} (in table order)"
            ));
        }
    }
}

/// Equal under the rules of `kind`: FLOAT as the same f32, DOUBLE as the
/// same f64 (both must be JSON numbers), everything else exactly.
/// Values compare equal: FLOAT as the same `f32`, DOUBLE as the same `f64`.
pub fn same(kind: Kind, want: &Value, got: &Value) -> bool {
    match (kind, want, got) {
        (Kind::Float, Value::Number(w), Value::Number(g)) => {
            w.as_f64().map(|v| v as f32) == g.as_f64().map(|v| v as f32)
        }
        (Kind::Double, Value::Number(w), Value::Number(g)) => w.as_f64() == g.as_f64(),
        _ => want == got,
    }
}

fn short(v: &Value) -> String {
    shorten(&v.to_string(), 160)
}

pub(super) fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_compare_as_their_width() {
        let float = super::super::render::render(Kind::Float, Some(b"1.100000023841858"));
        assert!(same(Kind::Float, &float, &json!(1.1)));
        assert!(!same(Kind::Float, &float, &json!(1.2)));
        assert!(!same(Kind::Double, &json!(1.1), &float));
        assert!(!same(Kind::Double, &json!(0.1), &json!("0.1")));
        assert!(same(Kind::Text, &json!("a"), &json!("a")));
    }
}
