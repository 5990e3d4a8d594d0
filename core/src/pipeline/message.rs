//! Kafka message values (docs/design.md §7), pure.
//!
//! Messages are written straight into a reusable buffer: a per-table prefix
//! (task, database, table, escaped once), the per-transaction position
//! fragment, then the row images the decoder produced.

use crate::sink::dedupe::PosRef;

/// Change type of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Insert,
    Update,
    Delete,
    /// A row copied by a snapshot (after image only).
    Read,
    Ddl,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Insert => "insert",
            ChangeType::Update => "update",
            ChangeType::Delete => "delete",
            ChangeType::Read => "read",
            ChangeType::Ddl => "ddl",
        }
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// `{"task":"T","database":"D","table":"X","type":"` for one table.
pub fn table_prefix(task: &str, database: &str, table: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"task\":");
    push_json_str(&mut out, task);
    out.extend_from_slice(b",\"database\":");
    push_json_str(&mut out, database);
    out.extend_from_slice(b",\"table\":");
    push_json_str(&mut out, table);
    out.extend_from_slice(b",\"type\":\"");
    out
}

/// `["id","k"]`: the primary key column names.
pub fn key_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, n) in names.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(&mut out, n);
    }
    out.push(b']');
    out
}

/// `{"file":"F","pos":P,"gtid":G,"row":` for one transaction.
pub fn position_prefix(file: &str, pos: u64, gtid: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"file\":");
    push_json_str(&mut out, file);
    out.extend_from_slice(b",\"pos\":");
    out.extend_from_slice(pos.to_string().as_bytes());
    out.extend_from_slice(b",\"gtid\":");
    match gtid {
        Some(g) => push_json_str(&mut out, g),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"row\":");
    out
}

/// The parts of one row message.
pub struct RowParts<'a> {
    pub prefix: &'a [u8],
    pub kind: ChangeType,
    pub ts_ms: i64,
    pub position: &'a [u8],
    pub row: u64,
    pub key_names: &'a [u8],
    pub before: Option<&'a [u8]>,
    pub after: Option<&'a [u8]>,
}

/// Writes a row message into `out` (cleared first).
pub fn write_row(out: &mut Vec<u8>, p: &RowParts<'_>) {
    out.clear();
    out.extend_from_slice(p.prefix);
    out.extend_from_slice(p.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"ts_ms\":");
    out.extend_from_slice(p.ts_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"position\":");
    out.extend_from_slice(p.position);
    out.extend_from_slice(p.row.to_string().as_bytes());
    out.extend_from_slice(b"},\"primary_key\":");
    out.extend_from_slice(p.key_names);
    out.extend_from_slice(b",\"before\":");
    out.extend_from_slice(p.before.unwrap_or(b"null"));
    out.extend_from_slice(b",\"after\":");
    out.extend_from_slice(p.after.unwrap_or(b"null"));
    out.push(b'}');
}

/// Writes a `ddl` message into `out` (cleared first).
pub fn write_ddl(
    out: &mut Vec<u8>,
    prefix: &[u8],
    ts_ms: i64,
    position: &[u8],
    row: u64,
    sql: &str,
) {
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(b"ddl\",\"ts_ms\":");
    out.extend_from_slice(ts_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"position\":");
    out.extend_from_slice(position);
    out.extend_from_slice(row.to_string().as_bytes());
    out.extend_from_slice(b"},\"sql\":");
    push_json_str(out, sql);
    out.push(b'}');
}

/// Key of a ddl message: `["db","table"]`.
pub fn ddl_key(database: &str, table: &str) -> Vec<u8> {
    key_names([database, table].into_iter())
}

/// The position of row `row` of the transaction starting at `file:pos`.
pub fn msg_pos(file: &str, pos: u64, row: u64) -> PosRef<'_> {
    PosRef {
        file,
        pos,
        row,
        gtid: None,
        chunk: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn row_message_has_the_design_shape() {
        let prefix = table_prefix("orders", "shop", "or\"ders");
        let pos = position_prefix("mysql-bin.000003", 4711, Some("0-1-42"));
        let names = key_names(["id"].into_iter());
        let mut out = Vec::new();
        write_row(
            &mut out,
            &RowParts {
                prefix: &prefix,
                kind: ChangeType::Update,
                ts_ms: 1732300000000,
                position: &pos,
                row: 2,
                key_names: &names,
                before: Some(br#"{"id":7,"amount":"12.00"}"#),
                after: Some(br#"{"id":7,"amount":"12.50"}"#),
            },
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"task": "orders", "database": "shop", "table": "or\"ders", "type": "update",
                   "ts_ms": 1732300000000i64,
                   "position": {"file": "mysql-bin.000003", "pos": 4711, "gtid": "0-1-42", "row": 2},
                   "primary_key": ["id"],
                   "before": {"id": 7, "amount": "12.00"},
                   "after": {"id": 7, "amount": "12.50"}})
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "task",
                "database",
                "table",
                "type",
                "ts_ms",
                "position",
                "primary_key",
                "before",
                "after"
            ]
        );
    }

    #[test]
    fn insert_has_null_before_and_ddl_has_sql() {
        let prefix = table_prefix("t", "d", "x");
        let pos = position_prefix("f.000001", 4, None);
        let mut out = Vec::new();
        write_row(
            &mut out,
            &RowParts {
                prefix: &prefix,
                kind: ChangeType::Insert,
                ts_ms: 1,
                position: &pos,
                row: 0,
                key_names: b"[]",
                before: None,
                after: Some(b"{}"),
            },
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["before"], Value::Null);
        assert_eq!(v["position"]["gtid"], Value::Null);
        write_ddl(&mut out, &prefix, 5, &pos, 0, "ALTER TABLE x ADD \"c\" INT");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "ddl");
        assert_eq!(v["sql"], "ALTER TABLE x ADD \"c\" INT");
        assert_eq!(ddl_key("d", "x"), br#"["d","x"]"#);
    }
}
