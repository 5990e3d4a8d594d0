//! Canal's FlatMessage (`sink.format: canal`), one message per row change
//! (Canal's `flatMessage=true` with one row per message).
//!
//! `{"data": [row], "database", "table", "pkNames", "isDdl": false,
//! "type": "INSERT"|"UPDATE"|"DELETE", "es": event time ms, "ts": send
//! time ms, "sql": "", "sqlType": {col: java.sql.Types}, "mysqlType": {col:
//! COLUMN_TYPE}, "old": [changed columns' old values] | null, "id": transaction
//! start position, "gtid"}`. Values are strings as Canal renders them:
//! numbers as their text, DATETIME `2024-01-02 03:04:05.120`, TIMESTAMP the
//! same in UTC, binary as ISO-8859-1 text (one char per byte), NULL as null.
//! DELETE carries the deleted row in `data`; snapshot rows (`Read`) are
//! INSERTs. The key is ours (JSON array of the primary-key values).

use super::columns::{self, Col, ColKind};
use super::{is_null, DdlChange, FormatError, Image, KeyOut, RowChange, TableFormat};
use crate::decode::Table;
use crate::pipeline::ddl::{ddl_kind, DdlKind};
use crate::pipeline::message::ChangeType;
use serde_json::value::RawValue;

/// `canal` rows of one table.
pub struct CanalTable {
    table: Table,
    cols: Vec<Col>,
    /// `,"database":"d","table":"t","pkNames":[..],"isDdl":false,"type":"`
    head: Vec<u8>,
    /// `,"sqlType":{..},"mysqlType":{..},"old":`
    types: Vec<u8>,
}

impl CanalTable {
    pub fn new(table: &Table) -> CanalTable {
        let cols = Col::of_table(table);
        let mut head = b",\"database\":".to_vec();
        columns::push_str(&mut head, &table.database);
        head.extend_from_slice(b",\"table\":");
        columns::push_str(&mut head, &table.name);
        head.extend_from_slice(b",\"pkNames\":");
        if table.primary_key.is_empty() {
            head.extend_from_slice(b"null");
        } else {
            let names: Vec<&str> = table.primary_key_names().collect();
            serde_json::to_writer(&mut head, &names).expect("writing to a Vec cannot fail");
        }
        head.extend_from_slice(b",\"isDdl\":false,\"type\":\"");
        let mut types = b",\"sqlType\":{".to_vec();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                types.push(b',');
            }
            types.extend_from_slice(&c.label);
            columns::push_int(&mut types, c.kind.java_sql_type());
        }
        types.extend_from_slice(b"},\"mysqlType\":{");
        for (i, (c, col)) in cols.iter().zip(&table.columns).enumerate() {
            if i > 0 {
                types.push(b',');
            }
            types.extend_from_slice(&c.label);
            // the column's type as the server prints it (`varchar(32)`,
            // `int(11)`), as Canal reads it from the table's definition;
            // without the schema, the type the binlog tells
            match &col.column_type {
                Some(t) => columns::push_str(&mut types, t),
                None => columns::push_str(&mut types, &c.kind.mysql_type(col)),
            }
        }
        types.extend_from_slice(b"},\"old\":");
        CanalTable {
            table: table.clone(),
            cols,
            head,
            types,
        }
    }
}

impl TableFormat for CanalTable {
    fn row(
        &self,
        out: &mut Vec<u8>,
        _key: &mut Vec<u8>,
        r: &RowChange<'_>,
    ) -> Result<KeyOut, FormatError> {
        out.clear();
        let (before, after) = Image::of_change(r, &self.table)?;
        let (data, kind) = match r.kind {
            ChangeType::Delete => (before.as_ref(), "DELETE"),
            ChangeType::Update => (after.as_ref(), "UPDATE"),
            _ => (after.as_ref(), "INSERT"),
        };
        out.extend_from_slice(b"{\"data\":");
        match data {
            Some(img) => {
                out.push(b'[');
                self.image(out, img, None)?;
                out.push(b']');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(&self.head);
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"es\":");
        columns::push_int(out, r.ts_ms);
        out.extend_from_slice(b",\"ts\":");
        columns::push_int(out, replicator_common::now_ms());
        out.extend_from_slice(b",\"sql\":\"\"");
        out.extend_from_slice(&self.types);
        match (r.kind, &before, &after) {
            (ChangeType::Update, Some(b), Some(a)) => {
                out.push(b'[');
                self.image(out, b, Some(a))?;
                out.push(b']');
            }
            _ => out.extend_from_slice(b"null"),
        }
        write_tail(out, &r.txn);
        Ok(KeyOut::Row)
    }
}

impl CanalTable {
    /// The row as an object of strings; with `changed_in`, only the
    /// columns whose value differs there (Canal's `old`).
    fn image(
        &self,
        out: &mut Vec<u8>,
        img: &Image<'_>,
        changed_in: Option<&Image<'_>>,
    ) -> Result<(), FormatError> {
        columns::write_image(out, &self.cols, img, changed_in, value)
    }
}

fn write_tail(out: &mut Vec<u8>, txn: &super::Txn<'_>) {
    out.extend_from_slice(b",\"id\":");
    columns::push_int(out, txn.pos);
    out.extend_from_slice(b",\"gtid\":");
    columns::push_str(out, txn.gtid.unwrap_or(""));
    out.push(b'}');
}

/// One value as Canal's string.
fn value(out: &mut Vec<u8>, c: &Col, raw: &RawValue) -> Result<(), FormatError> {
    if is_null(raw) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let text = raw.get();
    match c.kind {
        ColKind::Int { .. }
        | ColKind::Year
        | ColKind::Float
        | ColKind::Double
        | ColKind::Bit { .. } => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        ColKind::DateTime { .. } | ColKind::Timestamp { .. } => {
            let s = columns::string(raw, &c.name)?;
            let s = s.strip_suffix('Z').unwrap_or(&s).replacen('T', " ", 1);
            columns::push_str(out, &s);
        }
        ColKind::Bytes { .. } | ColKind::Geometry => {
            let b = columns::bytes(raw, &c.name)?;
            let latin1: String = b.iter().map(|&x| x as char).collect();
            columns::push_str(out, &latin1);
        }
        ColKind::Json => columns::push_str(out, text),
        ColKind::Decimal { .. }
        | ColKind::Date
        | ColKind::Time { .. }
        | ColKind::Text { .. }
        | ColKind::Enum
        | ColKind::Set => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// A DDL FlatMessage (`isDdl: true`, `type` CREATE/ALTER/ERASE/RENAME/
/// TRUNCATE/CINDEX/DINDEX/QUERY), keyed `["db","table"]`.
pub fn ddl(out: &mut Vec<u8>, key: &mut Vec<u8>, d: &DdlChange<'_>) {
    let kind = match ddl_kind(d.sql) {
        DdlKind::CreateTable => "CREATE",
        DdlKind::AlterTable => "ALTER",
        DdlKind::DropTable => "ERASE",
        DdlKind::RenameTable => "RENAME",
        DdlKind::Truncate => "TRUNCATE",
        DdlKind::CreateIndex => "CINDEX",
        DdlKind::DropIndex => "DINDEX",
        DdlKind::Other => "QUERY",
    };
    out.extend_from_slice(b"{\"data\":null,\"database\":");
    columns::push_str(out, d.database);
    out.extend_from_slice(b",\"table\":");
    columns::push_str(out, d.table);
    out.extend_from_slice(b",\"pkNames\":null,\"isDdl\":true,\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"es\":");
    columns::push_int(out, d.ts_ms);
    out.extend_from_slice(b",\"ts\":");
    columns::push_int(out, replicator_common::now_ms());
    out.extend_from_slice(b",\"sql\":");
    columns::push_str(out, d.sql);
    out.extend_from_slice(b",\"sqlType\":null,\"mysqlType\":null,\"old\":null");
    write_tail(out, &d.txn);
    key.extend_from_slice(&crate::pipeline::message::ddl_key(d.database, d.table));
}
