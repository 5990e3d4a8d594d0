//! The type matrix of Canal and Maxwell: each message field by field
//! against the format's reference rendering of what `SELECT` returned
//! (written from the tools' documented rendering, without the Core's code:
//! [`canal_value`], [`maxwell_value`]).

use crate::type_matrix_support::{same, Expect, Kind, TableSpec};
use replicator_tests::Message;
use serde_json::{json, Map, Value};

/// A value as Canal's string (`None`: SQL NULL).
pub fn canal_value(kind: Kind, v: &Value) -> Value {
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
pub fn maxwell_value(kind: Kind, ty: &str, v: &Value) -> Value {
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

pub fn unbase64(s: &str) -> Vec<u8> {
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
pub type Render = dyn Fn(Kind, &str, &Value) -> Value;

/// Compares one image with its reference rendering, Canal's (strings) or
/// Maxwell's; `only` limits it to the columns given (Canal's and Maxwell's
/// `old` hold the changed columns only).
pub fn check_image(
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

/// A row image as recorded (`None`: no such image).
type Row = Option<Map<String, Value>>;

/// A row message's image (`data`: the row after, or before a delete) and,
/// for an update, the old values of the columns it changed (`old`),
/// against `render`. True when it was an update (`old` checked).
fn check_row_images(
    at: &str,
    t: &TableSpec,
    render: &Render,
    (kind, before, after): (&str, &Row, &Row),
    (data, old): (&Value, &Value),
    out: &mut Vec<String>,
) -> bool {
    let image = if kind == "delete" { before } else { after };
    let what = format!("{at} data");
    check_image(&what, t, render, image.as_ref().unwrap(), data, None, out);
    match (before, after, kind) {
        (Some(b), Some(a), "update") => {
            let ch = changed(t, b, a);
            check_image(&format!("{at} old"), t, render, b, old, Some(&ch), out);
            true
        }
        _ => false,
    }
}

/// Columns whose value differs between `before` and `after`.
pub fn changed(
    t: &TableSpec,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<String> {
    t.cols
        .iter()
        .filter(|c| before[&c.name] != after[&c.name])
        .map(|c| c.name.clone())
        .collect()
}

pub fn type_matrix(
    format: &str,
    t: &TableSpec,
    expected: &[Expect],
    msgs: &[Message],
) -> Vec<String> {
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
                let images = (&v["data"][0], &v["old"][0]);
                let update =
                    check_row_images(&at, t, &canal, (kind, before, after), images, &mut out);
                if !update && !v["old"].is_null() {
                    out.push(format!("{at}: old {}", v["old"]));
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
                let images = (&v["data"], &v["old"]);
                let update =
                    check_row_images(&at, t, &maxwell, (kind, before, after), images, &mut out);
                if !update && v.get("old").is_some() {
                    out.push(format!("{at}: old {}", v["old"]));
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
