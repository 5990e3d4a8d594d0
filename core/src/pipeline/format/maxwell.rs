//! Maxwell's JSON (`sink.format: maxwell`), as Maxwell writes it with
//! `output_binlog_position`, `output_server_id`, `output_primary_keys` and
//! `output_primary_key_columns` on.
//!
//! `{"database", "table", "type": "insert"|"update"|"delete"|
//! "bootstrap-insert", "ts": event time in seconds, "xid": transaction
//! start position, "position": "file:pos", "server_id", "primary_key":
//! [values], "primary_key_columns": [names], "data": {row}, "old": {changed
//! columns' old values}}` (`old` on updates only). Values: numbers as
//! numbers (DECIMAL too), DATETIME `2024-01-02 03:04:05.120`, TIMESTAMP the
//! same in UTC, SET as an array of labels, BIT(1) as a boolean, binary as
//! base64, JSON as JSON. `"commit": true` on the last row of a transaction
//! is added when the transaction commits ([`mark_commit`], the pipeline
//! holds the newest row until then). Key: Maxwell's `hash` key
//! `{"database", "table", "pk.<col>": value, ...}`.

use super::columns::{self, Col, ColKind};
use super::{is_null, DdlChange, FormatError, Image, KeyOut, RowChange, TableFormat};
use crate::decode::Table;
use crate::pipeline::ddl::{ddl_kind, DdlKind};
use crate::pipeline::message::ChangeType;
use crate::source::schema::TableDef;
use serde_json::json;
use serde_json::value::RawValue;

/// `maxwell` rows of one table.
pub struct MaxwellTable {
    table: Table,
    cols: Vec<Col>,
    /// `"pk.name":` per column.
    pk_labels: Vec<Vec<u8>>,
    /// `{"database":"d","table":"t","type":"`
    head: Vec<u8>,
    /// `,"primary_key_columns":[..]`
    pk_columns: Vec<u8>,
    /// `{"database":"d","table":"t"`
    key_head: Vec<u8>,
}

impl MaxwellTable {
    pub fn new(table: &Table) -> MaxwellTable {
        let cols = Col::of_table(table);
        let pk_labels = table
            .columns
            .iter()
            .map(|c| {
                let mut pk_label = Vec::new();
                columns::push_str(&mut pk_label, &format!("pk.{}", c.name));
                pk_label.push(b':');
                pk_label
            })
            .collect();
        let mut key_head = b"{\"database\":".to_vec();
        columns::push_str(&mut key_head, &table.database);
        key_head.extend_from_slice(b",\"table\":");
        columns::push_str(&mut key_head, &table.name);
        let mut head = key_head.clone();
        head.extend_from_slice(b",\"type\":\"");
        let mut pk_columns = b",\"primary_key_columns\":".to_vec();
        let names: Vec<&str> = table.primary_key_names().collect();
        serde_json::to_writer(&mut pk_columns, &names).expect("writing to a Vec cannot fail");
        MaxwellTable {
            table: table.clone(),
            cols,
            pk_labels,
            head,
            pk_columns,
            key_head,
        }
    }

    fn image(
        &self,
        out: &mut Vec<u8>,
        img: &Image<'_>,
        changed_in: Option<&Image<'_>>,
    ) -> Result<(), FormatError> {
        columns::write_image(out, &self.cols, img, changed_in, value)
    }
}

/// `ts`, `xid`, `position`, `server_id`; a snapshot row (Maxwell's
/// bootstrap rows belong to no transaction) has no `xid` nor `server_id`.
fn write_position(
    out: &mut Vec<u8>,
    ts_ms: i64,
    txn: &super::Txn<'_>,
    server_id: u32,
    snapshot: bool,
) {
    out.extend_from_slice(b",\"ts\":");
    columns::push_int(out, ts_ms.div_euclid(1000));
    if !snapshot {
        out.extend_from_slice(b",\"xid\":");
        columns::push_int(out, txn.pos);
    }
    out.extend_from_slice(b",\"position\":");
    columns::push_str(out, &format!("{}:{}", txn.file, txn.pos));
    if !snapshot {
        out.extend_from_slice(b",\"server_id\":");
        columns::push_int(out, server_id);
    }
}

impl TableFormat for MaxwellTable {
    fn row(
        &self,
        out: &mut Vec<u8>,
        key: &mut Vec<u8>,
        r: &RowChange<'_>,
    ) -> Result<KeyOut, FormatError> {
        out.clear();
        key.clear();
        let (before, after) = Image::of_change(r, &self.table)?;
        let (data, kind) = match r.kind {
            ChangeType::Delete => (before.as_ref(), "delete"),
            ChangeType::Update => (after.as_ref(), "update"),
            ChangeType::Read => (after.as_ref(), "bootstrap-insert"),
            _ => (after.as_ref(), "insert"),
        };
        let Some(data) = data else {
            return Err(FormatError::MissingImage(kind));
        };
        out.extend_from_slice(&self.head);
        out.extend_from_slice(kind.as_bytes());
        out.push(b'"');
        write_position(
            out,
            r.ts_ms,
            &r.txn,
            r.server_id,
            r.kind == ChangeType::Read,
        );
        out.extend_from_slice(b",\"primary_key\":[");
        for (n, &i) in self.table.primary_key.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            value(out, &self.cols[i], data.0[i])?;
        }
        out.push(b']');
        out.extend_from_slice(&self.pk_columns);
        out.extend_from_slice(b",\"data\":");
        self.image(out, data, None)?;
        if let (ChangeType::Update, Some(b)) = (r.kind, &before) {
            out.extend_from_slice(b",\"old\":");
            self.image(out, b, Some(data))?;
        }
        out.push(b'}');
        key.extend_from_slice(&self.key_head);
        for &i in &self.table.primary_key {
            key.push(b',');
            key.extend_from_slice(&self.pk_labels[i]);
            value(key, &self.cols[i], data.0[i])?;
        }
        key.push(b'}');
        Ok(KeyOut::Written)
    }
}

/// Marks a row message as its transaction's last: `"commit":true` after
/// `xid`, where Maxwell writes it. The first `,"position":` of a message is
/// the one after `xid` (database and table names before it are JSON
/// strings, whose quotes are escaped).
pub fn mark_commit(msg: &mut Vec<u8>) {
    const AT: &[u8] = b",\"position\":";
    if let Some(i) = msg.windows(AT.len()).position(|w| w == AT) {
        msg.splice(i..i, b",\"commit\":true".iter().copied());
    }
}

/// One value as Maxwell renders it.
fn value(out: &mut Vec<u8>, c: &Col, raw: &RawValue) -> Result<(), FormatError> {
    if is_null(raw) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let text = raw.get();
    match c.kind {
        ColKind::Decimal { .. } => out.extend_from_slice(columns::string(raw, &c.name)?.as_bytes()),
        ColKind::Bit { bits: 1 } => {
            out.extend_from_slice(if text == "0" { b"false" } else { b"true" })
        }
        ColKind::DateTime { .. } | ColKind::Timestamp { .. } => {
            let s = columns::string(raw, &c.name)?;
            let s = s.strip_suffix('Z').unwrap_or(&s).replacen('T', " ", 1);
            columns::push_str(out, &s);
        }
        ColKind::Set => {
            let s = columns::string(raw, &c.name)?;
            let labels: Vec<&str> = if s.is_empty() {
                Vec::new()
            } else {
                s.split(',').collect()
            };
            serde_json::to_writer(&mut *out, &labels).expect("writing to a Vec cannot fail");
        }
        ColKind::Int { .. }
        | ColKind::Year
        | ColKind::Float
        | ColKind::Double
        | ColKind::Bit { .. }
        | ColKind::Date
        | ColKind::Time { .. }
        | ColKind::Text { .. }
        | ColKind::Bytes { .. }
        | ColKind::Enum
        | ColKind::Json
        | ColKind::Geometry => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// A schema change as Maxwell writes it: `{"type": "table-create" |
/// "table-alter" | "table-drop", "database", "table", "def": {table
/// definition}, "ts": event time in ms, "sql", "position"}` (`def` on
/// create and alter when the table exists; Maxwell's `old`, the definition
/// before an ALTER, is not written: the Core keeps no schema history), keyed
/// `{"database", "table"}`.
pub fn ddl(out: &mut Vec<u8>, key: &mut Vec<u8>, d: &DdlChange<'_>) {
    let kind = match ddl_kind(d.sql) {
        DdlKind::CreateTable => "table-create",
        DdlKind::DropTable => "table-drop",
        _ => "table-alter",
    };
    key.extend_from_slice(b"{\"database\":");
    columns::push_str(key, d.database);
    key.extend_from_slice(b",\"table\":");
    columns::push_str(key, d.table);
    key.push(b'}');
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"database\":");
    columns::push_str(out, d.database);
    out.extend_from_slice(b",\"table\":");
    columns::push_str(out, d.table);
    if let (Some(def), false) = (d.def, kind == "table-drop") {
        out.extend_from_slice(b",\"def\":");
        serde_json::to_writer(&mut *out, &definition(d.database, d.table, def))
            .expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b",\"ts\":");
    columns::push_int(out, d.ts_ms);
    out.extend_from_slice(b",\"sql\":");
    columns::push_str(out, d.sql);
    out.extend_from_slice(b",\"position\":");
    columns::push_str(out, &format!("{}:{}", d.txn.file, d.txn.pos));
    out.push(b'}');
}

/// Maxwell's table definition: `{"database", "charset", "table", "columns":
/// [{"type", "name", "signed" (integers), "charset" (text), "enum-values",
/// "set-values", "column-length" (fractional seconds)}], "primary-key"}`.
fn definition(db: &str, table: &str, def: &TableDef) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = def
        .columns
        .iter()
        .map(|c| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), json!(c.data_type));
            m.insert("name".into(), json!(c.name));
            match c.data_type.as_str() {
                "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
                    m.insert("signed".into(), json!(!c.unsigned()));
                }
                "enum" => {
                    m.insert("charset".into(), json!(c.charset));
                    m.insert("enum-values".into(), json!(c.labels()));
                }
                "set" => {
                    m.insert("charset".into(), json!(c.charset));
                    m.insert("set-values".into(), json!(c.labels()));
                }
                "datetime" | "timestamp" | "time" => {
                    if let Some(fsp) = c.fsp.filter(|&f| f > 0) {
                        m.insert("column-length".into(), json!(fsp));
                    }
                }
                _ if c.charset.is_some() => {
                    m.insert("charset".into(), json!(c.charset));
                }
                _ => {}
            }
            serde_json::Value::Object(m)
        })
        .collect();
    json!({"database": db, "charset": def.charset, "table": table, "columns": columns,
           "primary-key": def.primary_key})
}
