//! Debezium's MySQL connector envelope (`sink.format: debezium`), as Kafka
//! Connect's JSON converter writes it: schemaless by default, with the
//! `schema` block when `sink.debezium.schemas` is true.
//!
//! Value: `{"before", "after", "source": {...}, "op": "c"|"u"|"d"|"r",
//! "ts_ms", "ts_us", "ts_ns", "transaction": null}`; key: `{"<pk column>":
//! value, ...}` (null for a table without a primary key, as Debezium).
//! Column values are rendered as Debezium 3.x renders them with
//! `decimal.handling.mode=string`, `time.precision.mode=adaptive_time_microseconds`,
//! `binary.handling.mode=base64` and `bigint.unsigned.handling.mode=long`
//! (the per-type table is in `docs/formats.md`). `source.pos` is where the
//! transaction starts and `source.row` the message's index in it (both
//! together are the message position); `thread` and `query` are null.
//! Snapshot rows (`Read`) get `op: "r"` and `source.snapshot: "true"`.

use super::columns::{self, Col, ColKind};
use super::{is_null, DdlChange, FormatError, Image, KeyOut, RowChange, TableFormat, TaskFormat};
use crate::decode::Table;
use crate::pipeline::message::ChangeType;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Written into `source.version`.
pub const VERSION: &str = concat!("replicator-", env!("CARGO_PKG_VERSION"));

/// `debezium` rows of one table.
pub struct DebeziumTable {
    table: Table,
    cols: Vec<Col>,
    /// `,"source":{"version":..,"name":"task","ts_ms":`
    source_head: Vec<u8>,
    /// `,"db":"d","sequence":null,` (after `snapshot`)
    source_db: Vec<u8>,
    /// `,"table":"t","server_id":`
    source_table: Vec<u8>,
    /// `{"schema":..,"payload":` of values and keys (schemas enabled).
    value_schema: Option<Vec<u8>>,
    key_schema: Option<Vec<u8>>,
}

impl DebeziumTable {
    pub fn new(f: &TaskFormat, table: &Table) -> DebeziumTable {
        let cols = Col::of_table(table);
        let (source_head, source_db, source_table) =
            source_parts(&f.task, &table.database, &table.name);
        let (value_schema, key_schema) = if f.schemas {
            let (v, k) = schemas(&f.task, table, &cols);
            let wrap = |s: Value| {
                let mut b = b"{\"schema\":".to_vec();
                serde_json::to_writer(&mut b, &s).expect("writing to a Vec cannot fail");
                b.extend_from_slice(b",\"payload\":");
                b
            };
            (Some(wrap(v)), Some(wrap(k)))
        } else {
            (None, None)
        };
        DebeziumTable {
            table: table.clone(),
            cols,
            source_head,
            source_db,
            source_table,
            value_schema,
            key_schema,
        }
    }

    fn image(&self, out: &mut Vec<u8>, img: &Image<'_>, read: bool) -> Result<(), FormatError> {
        columns::write_image(out, &self.cols, img, None, |out, c, v| {
            value(out, c, v, read)
        })
    }
}

fn source_parts(task: &str, db: &str, table: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut head = b",\"source\":{\"version\":".to_vec();
    columns::push_str(&mut head, VERSION);
    head.extend_from_slice(b",\"connector\":\"mysql\",\"name\":");
    columns::push_str(&mut head, task);
    head.extend_from_slice(b",\"ts_ms\":");
    let mut dbp = b",\"db\":".to_vec();
    columns::push_str(&mut dbp, db);
    dbp.extend_from_slice(b",\"sequence\":null,");
    let mut tp = b",\"table\":".to_vec();
    columns::push_str(&mut tp, table);
    tp.extend_from_slice(b",\"server_id\":");
    (head, dbp, tp)
}

/// Writes `source` (from `,"source":` to its closing brace).
#[allow(clippy::too_many_arguments)]
fn write_source(
    out: &mut Vec<u8>,
    head: &[u8],
    db: &[u8],
    table: &[u8],
    ts_ms: i64,
    snapshot: super::SnapshotMark,
    server_id: u32,
    txn: &super::Txn<'_>,
    row: u64,
) {
    out.extend_from_slice(head);
    columns::push_int(out, ts_ms);
    out.extend_from_slice(b",\"snapshot\":\"");
    out.extend_from_slice(snapshot.as_str().as_bytes());
    out.push(b'"');
    out.extend_from_slice(db);
    out.extend_from_slice(b"\"ts_us\":");
    columns::push_int(out, ts_ms * 1000);
    out.extend_from_slice(b",\"ts_ns\":");
    columns::push_int(out, ts_ms * 1_000_000);
    out.extend_from_slice(table);
    columns::push_int(out, server_id);
    out.extend_from_slice(b",\"gtid\":");
    match txn.gtid {
        Some(g) => columns::push_str(out, g),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"file\":");
    columns::push_str(out, txn.file);
    out.extend_from_slice(b",\"pos\":");
    columns::push_int(out, txn.pos);
    out.extend_from_slice(b",\"row\":");
    columns::push_int(out, row);
    out.extend_from_slice(b",\"thread\":null,\"query\":null}");
}

fn write_times(out: &mut Vec<u8>) {
    let now = replicator_common::now_ms();
    out.extend_from_slice(b",\"ts_ms\":");
    columns::push_int(out, now);
    out.extend_from_slice(b",\"ts_us\":");
    columns::push_int(out, now * 1000);
    out.extend_from_slice(b",\"ts_ns\":");
    columns::push_int(out, now * 1_000_000);
}

impl TableFormat for DebeziumTable {
    fn row(
        &self,
        out: &mut Vec<u8>,
        key: &mut Vec<u8>,
        r: &RowChange<'_>,
    ) -> Result<KeyOut, FormatError> {
        out.clear();
        key.clear();
        let (before, after) = Image::of_change(r, &self.table)?;
        let read = r.kind == ChangeType::Read;
        if let Some(s) = &self.value_schema {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(b"{\"before\":");
        match &before {
            Some(img) => self.image(out, img, read)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"after\":");
        match &after {
            Some(img) => self.image(out, img, read)?,
            None => out.extend_from_slice(b"null"),
        }
        write_source(
            out,
            &self.source_head,
            &self.source_db,
            &self.source_table,
            r.ts_ms,
            if r.kind == ChangeType::Read {
                match r.snapshot {
                    super::SnapshotMark::Stream => super::SnapshotMark::Row,
                    m => m,
                }
            } else {
                super::SnapshotMark::Stream
            },
            r.server_id,
            &r.txn,
            r.row,
        );
        out.extend_from_slice(b",\"transaction\":");
        match &r.order {
            Some(o) => {
                out.extend_from_slice(b"{\"id\":");
                columns::push_str(out, o.id);
                out.extend_from_slice(b",\"total_order\":");
                columns::push_int(out, o.total_order);
                out.extend_from_slice(b",\"data_collection_order\":");
                columns::push_int(out, o.data_collection_order);
                out.extend_from_slice(b"}");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(match r.kind {
            ChangeType::Insert => b",\"op\":\"c\"",
            ChangeType::Update => b",\"op\":\"u\"",
            ChangeType::Delete => b",\"op\":\"d\"",
            ChangeType::Read => b",\"op\":\"r\"",
            ChangeType::Ddl => b",\"op\":\"ddl\"",
        });
        write_times(out);
        out.push(b'}');
        if self.value_schema.is_some() {
            out.push(b'}');
        }
        // key: the primary key of the row (after, or before for deletes)
        if self.table.primary_key.is_empty() {
            return Ok(KeyOut::Null);
        }
        let Some(img) = after.as_ref().or(before.as_ref()) else {
            return Ok(KeyOut::Null);
        };
        if let Some(s) = &self.key_schema {
            key.extend_from_slice(s);
        }
        key.push(b'{');
        for (n, &i) in self.table.primary_key.iter().enumerate() {
            if n > 0 {
                key.push(b',');
            }
            let c = &self.cols[i];
            key.extend_from_slice(&c.label);
            value(key, c, img.0[i], read)?;
        }
        key.push(b'}');
        if self.key_schema.is_some() {
            key.push(b'}');
        }
        Ok(KeyOut::Written)
    }

    /// Debezium writes an update of the primary key as a delete (and its
    /// tombstone) of the old key, then a create of the new one.
    fn splits_key_change(
        &self,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
    ) -> Result<bool, FormatError> {
        let (Some(b), Some(a)) = (before, after) else {
            return Ok(false);
        };
        if self.table.primary_key.is_empty() {
            return Ok(false);
        }
        let (b, a) = (Image::parse(b, &self.table)?, Image::parse(a, &self.table)?);
        Ok(self
            .table
            .primary_key
            .iter()
            .any(|&i| b.0[i].get() != a.0[i].get()))
    }
}

/// One column value as Debezium renders it; `read`: as its snapshot renders
/// it, which reads rows over JDBC (text protocol) where its stream reads the
/// binlog: FLOAT with the 6 significant digits the server prints, TIMESTAMP
/// without trailing fractional zeros, the zero YEAR as 2000.
fn value(out: &mut Vec<u8>, c: &Col, raw: &RawValue, read: bool) -> Result<(), FormatError> {
    if is_null(raw) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let text = raw.get();
    let zero = |out: &mut Vec<u8>, v: &[u8]| {
        out.extend_from_slice(if c.nullable { b"null" } else { v });
    };
    match c.kind {
        ColKind::Int {
            bits: 64,
            unsigned: true,
        } => {
            let v: u64 = text
                .parse()
                .map_err(|_| FormatError::value(&c.name, "an unsigned integer", text))?;
            // bigint.unsigned.handling.mode=long: a Java long
            columns::push_int(out, v as i64);
        }
        ColKind::Bit { bits } => {
            let v: u64 = text
                .parse()
                .map_err(|_| FormatError::value(&c.name, "a bit value", text))?;
            if bits == 1 {
                out.extend_from_slice(if v != 0 { b"true" } else { b"false" });
            } else {
                // io.debezium.data.Bits: little-endian bytes
                let n = (bits as usize).div_ceil(8);
                columns::push_base64(out, &v.to_le_bytes()[..n.min(8)]);
            }
        }
        ColKind::Date => match columns::date_days(&columns::string(raw, &c.name)?, &c.name)? {
            Some(d) => columns::push_int(out, d),
            None => zero(out, b"0"),
        },
        ColKind::DateTime { fsp } => {
            match columns::datetime_us(&columns::string(raw, &c.name)?, &c.name)? {
                Some(us) if fsp <= 3 => columns::push_int(out, us.div_euclid(1000)),
                Some(us) => columns::push_int(out, us),
                None => zero(out, b"0"),
            }
        }
        ColKind::Timestamp { fsp } => {
            let s = columns::string(raw, &c.name)?;
            if s.starts_with("0000-00-00") {
                if c.nullable {
                    out.extend_from_slice(b"null");
                } else {
                    let frac = if fsp > 0 {
                        format!(".{}", "0".repeat(fsp as usize))
                    } else {
                        String::new()
                    };
                    columns::push_str(out, &format!("1970-01-01T00:00:00{frac}Z"));
                }
            } else if read {
                // `2024-01-02T03:04:05.120Z` -> `…05.12Z`, `…05.000Z` -> `…05Z`
                let body = s.strip_suffix('Z').unwrap_or(&s);
                let body = match body.split_once('.') {
                    Some((whole, frac)) => match frac.trim_end_matches('0') {
                        "" => whole.to_string(),
                        f => format!("{whole}.{f}"),
                    },
                    None => body.to_string(),
                };
                columns::push_str(out, &format!("{body}Z"));
            } else {
                out.extend_from_slice(text.as_bytes());
            }
        }
        ColKind::Float if read => {
            let v: f32 = text
                .parse()
                .map_err(|_| FormatError::value(&c.name, "a float", text))?;
            let shown: f32 = format!("{v:.5e}").parse().unwrap_or(v);
            crate::decode::float::write_f32(out, shown);
        }
        ColKind::Year if read && text == "0" => out.extend_from_slice(b"2000"),
        ColKind::Time { .. } => columns::push_int(
            out,
            columns::time_us(&columns::string(raw, &c.name)?, &c.name)?,
        ),
        // the binlog stores YEAR as year - 1900; Debezium's binlog client
        // adds 1900 to the zero year's 0 as to any other
        ColKind::Year if text == "0" => out.extend_from_slice(b"1900"),
        ColKind::Json => columns::push_str(out, text),
        ColKind::Geometry => {
            out.extend_from_slice(b"{\"wkb\":");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b",\"srid\":null}");
        }
        ColKind::Int { .. }
        | ColKind::Year
        | ColKind::Decimal { .. }
        | ColKind::Float
        | ColKind::Double
        | ColKind::Text { .. }
        | ColKind::Bytes { .. }
        | ColKind::Enum
        | ColKind::Set => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// The Kafka Connect schema of one column.
fn field_schema(c: &Col, table: &Table, i: usize) -> Value {
    let col = &table.columns[i];
    let (ty, name, params): (&str, Option<&str>, Option<Value>) = match c.kind {
        ColKind::Int { bits: 8, .. } => ("int16", None, None),
        ColKind::Int { bits: 16, unsigned } => {
            (if unsigned { "int32" } else { "int16" }, None, None)
        }
        ColKind::Int { bits: 24, .. } => ("int32", None, None),
        ColKind::Int { bits: 32, unsigned } => {
            (if unsigned { "int64" } else { "int32" }, None, None)
        }
        ColKind::Int { .. } => ("int64", None, None),
        ColKind::Year => ("int32", Some("io.debezium.time.Year"), None),
        ColKind::Decimal { .. } => ("string", None, None),
        // Kafka Connect's JSON converter spells FLOAT32/FLOAT64 so
        ColKind::Float => ("float", None, None),
        ColKind::Double => ("double", None, None),
        ColKind::Bit { bits: 1 } => ("boolean", None, None),
        ColKind::Bit { bits } => (
            "bytes",
            Some("io.debezium.data.Bits"),
            Some(json!({"length": bits.to_string()})),
        ),
        ColKind::Date => ("int32", Some("io.debezium.time.Date"), None),
        ColKind::DateTime { fsp } if fsp <= 3 => {
            ("int64", Some("io.debezium.time.Timestamp"), None)
        }
        ColKind::DateTime { .. } => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
        ColKind::Timestamp { .. } => ("string", Some("io.debezium.time.ZonedTimestamp"), None),
        ColKind::Time { .. } => ("int64", Some("io.debezium.time.MicroTime"), None),
        ColKind::Text { .. } => ("string", None, None),
        // binary.handling.mode=base64: a string schema
        ColKind::Bytes { .. } => ("string", None, None),
        ColKind::Enum => (
            "string",
            Some("io.debezium.data.Enum"),
            Some(json!({"allowed": col.enum_values.join(",")})),
        ),
        ColKind::Set => (
            "string",
            Some("io.debezium.data.EnumSet"),
            Some(json!({"allowed": col.set_values.join(",")})),
        ),
        // MySQL's JSON type; MariaDB's JSON is a LONGTEXT to Debezium
        ColKind::Json if col.type_code == crate::decode::table::types::JSON => {
            ("string", Some("io.debezium.data.Json"), None)
        }
        ColKind::Json => ("string", None, None),
        ColKind::Geometry => {
            return json!({"type": "struct", "fields": [
                    {"type": "bytes", "optional": false, "field": "wkb"},
                    {"type": "int32", "optional": true, "field": "srid"}],
                "optional": c.nullable, "name": "io.debezium.data.geometry.Geometry",
                "version": 1, "doc": "Geometry", "field": c.name});
        }
    };
    let mut f = json!({"type": ty, "optional": c.nullable});
    if let Some(n) = name {
        f["name"] = json!(n);
        f["version"] = json!(1);
    }
    if let Some(p) = params {
        f["parameters"] = p;
    }
    f["field"] = json!(c.name);
    f
}

fn source_schema() -> Value {
    let f = |ty: &str, optional: bool, field: &str| json!({"type": ty, "optional": optional, "field": field});
    json!({"type": "struct", "fields": [
        f("string", false, "version"), f("string", false, "connector"), f("string", false, "name"),
        f("int64", false, "ts_ms"),
        {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
         "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
         "default": "false", "field": "snapshot"},
        f("string", false, "db"), f("string", true, "sequence"), f("int64", true, "ts_us"),
        f("int64", true, "ts_ns"), f("string", true, "table"), f("int64", false, "server_id"),
        f("string", true, "gtid"), f("string", false, "file"), f("int64", false, "pos"),
        f("int32", false, "row"), f("int64", true, "thread"), f("string", true, "query")],
        "optional": false, "name": "io.debezium.connector.mysql.Source", "version": 1,
        "field": "source"})
}

/// Value and key schemas of a table.
fn schemas(task: &str, table: &Table, cols: &[Col]) -> (Value, Value) {
    let prefix = format!("{task}.{}.{}", table.database, table.name);
    let fields: Vec<Value> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| field_schema(c, table, i))
        .collect();
    let image = |field: &str| {
        json!({"type": "struct", "fields": fields, "optional": true,
               "name": format!("{prefix}.Value"), "field": field})
    };
    let value = json!({"type": "struct", "fields": [
        image("before"), image("after"), source_schema(),
        {"type": "struct", "fields": [
            {"type": "string", "optional": false, "field": "id"},
            {"type": "int64", "optional": false, "field": "total_order"},
            {"type": "int64", "optional": false, "field": "data_collection_order"}],
         "optional": true, "name": "event.block", "version": 1, "field": "transaction"},
        {"type": "string", "optional": false, "field": "op"},
        {"type": "int64", "optional": true, "field": "ts_ms"},
        {"type": "int64", "optional": true, "field": "ts_us"},
        {"type": "int64", "optional": true, "field": "ts_ns"}],
        "optional": false, "name": format!("{prefix}.Envelope"), "version": 2});
    let key_fields: Vec<Value> = table
        .primary_key
        .iter()
        .map(|&i| field_schema(&cols[i], table, i))
        .collect();
    let key = json!({"type": "struct", "fields": key_fields, "optional": false,
                     "name": format!("{prefix}.Key")});
    (value, key)
}

/// `tableChanges` of a schema change: for CREATE and ALTER (RENAME, index
/// changes) of a table that exists, `[{"type", "id": "\"db\".\"table\"",
/// "table": {"defaultCharsetName", "primaryKeyColumnNames", "columns":
/// [..], "comment"}}]` from the table's definition after the statement;
/// for DROP `[{"type": "DROP", "id", "table": null}]`; otherwise (TRUNCATE,
/// statements that are not table DDL, a table gone by the time the Core
/// read it) `[]`.
fn table_changes(d: &DdlChange<'_>) -> Value {
    use crate::pipeline::ddl::{ddl_kind, DdlKind};
    let id = format!("\"{}\".\"{}\"", d.database, d.table);
    let kind = match ddl_kind(d.sql) {
        DdlKind::CreateTable => "CREATE",
        DdlKind::DropTable => return json!([{"type": "DROP", "id": id, "table": null}]),
        DdlKind::AlterTable | DdlKind::RenameTable | DdlKind::CreateIndex | DdlKind::DropIndex => {
            "ALTER"
        }
        DdlKind::Truncate | DdlKind::Other => return json!([]),
    };
    let Some(def) = d.def else {
        return json!([]);
    };
    let columns: Vec<Value> = def
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = if c.unsigned() {
                format!("{} UNSIGNED", c.data_type.to_ascii_uppercase())
            } else {
                c.data_type.to_ascii_uppercase()
            };
            let jdbc = crate::source::schema::table_column(c, false)
                .map(|col| ColKind::of(&col).java_sql_type());
            let labels = matches!(c.data_type.as_str(), "enum" | "set").then(|| c.labels());
            json!({"name": c.name, "jdbcType": jdbc, "nativeType": null, "typeName": name,
                   "typeExpression": name, "charsetName": c.charset, "length": c.length,
                   "scale": c.scale.or(c.fsp), "position": i + 1, "optional": c.nullable,
                   "autoIncremented": c.auto_increment, "generated": c.generated,
                   "comment": c.comment, "defaultValueExpression": null, "enumValues": labels})
        })
        .collect();
    json!([{"type": kind, "id": id, "table": {
        "defaultCharsetName": def.charset, "primaryKeyColumnNames": def.primary_key,
        "columns": columns, "comment": null}}])
}

/// Kafka Connect schema of one `tableChanges` item
/// (`io.debezium.connector.schema.Change`).
fn table_change_schema() -> Value {
    let f = |ty: &str, optional: bool, field: &str| json!({"type": ty, "optional": optional, "field": field});
    let strings = |field: &str| {
        json!({"type": "array", "items": {"type": "string", "optional": false},
                                       "optional": true, "field": field})
    };
    let column = json!({"type": "struct", "optional": false, "name": "io.debezium.connector.schema.Column",
        "version": 1, "fields": [
        f("string", false, "name"), f("int32", false, "jdbcType"), f("int32", true, "nativeType"),
        f("string", false, "typeName"), f("string", true, "typeExpression"),
        f("string", true, "charsetName"), f("int32", true, "length"), f("int32", true, "scale"),
        f("int32", false, "position"), f("boolean", true, "optional"),
        f("boolean", true, "autoIncremented"), f("boolean", true, "generated"),
        f("string", true, "comment"), f("string", true, "defaultValueExpression"),
        strings("enumValues")]});
    json!({"type": "struct", "optional": false, "name": "io.debezium.connector.schema.Change",
        "version": 1, "fields": [
        f("string", false, "type"), f("string", false, "id"),
        {"type": "struct", "optional": true, "name": "io.debezium.connector.schema.Table",
         "version": 1, "field": "table", "fields": [
            f("string", true, "defaultCharsetName"), strings("primaryKeyColumnNames"),
            {"type": "array", "items": column, "optional": false, "field": "columns"},
            f("string", true, "comment")]}]})
}

/// A schema change event (Debezium's schema change topic shape), keyed
/// `{"databaseName": db}`, written to the schema change topic
/// ([`TaskFormat::ddl_topic`]).
pub fn ddl(out: &mut Vec<u8>, key: &mut Vec<u8>, f: &TaskFormat, d: &DdlChange<'_>) {
    let (head, db, table) = source_parts(&f.task, d.database, d.table);
    if f.schemas {
        let s = json!({"type": "struct", "fields": [
            source_schema(),
            {"type": "int64", "optional": false, "field": "ts_ms"},
            {"type": "string", "optional": true, "field": "databaseName"},
            {"type": "string", "optional": true, "field": "schemaName"},
            {"type": "string", "optional": true, "field": "ddl"},
            {"type": "array", "items": table_change_schema(), "optional": false,
             "field": "tableChanges"}],
            "optional": false, "name": "io.debezium.connector.mysql.SchemaChangeValue", "version": 1});
        out.extend_from_slice(b"{\"schema\":");
        serde_json::to_writer(&mut *out, &s).expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"payload\":");
    }
    // `{"source":` without the leading comma of the row form
    out.push(b'{');
    write_source(
        out,
        &head[1..],
        &db,
        &table,
        d.ts_ms,
        super::SnapshotMark::Stream,
        d.server_id,
        &d.txn,
        d.row,
    );
    let now = replicator_common::now_ms();
    out.extend_from_slice(b",\"ts_ms\":");
    columns::push_int(out, now);
    out.extend_from_slice(b",\"databaseName\":");
    columns::push_str(out, d.database);
    out.extend_from_slice(b",\"schemaName\":null,\"ddl\":");
    columns::push_str(out, d.sql);
    out.extend_from_slice(b",\"tableChanges\":");
    serde_json::to_writer(&mut *out, &table_changes(d)).expect("writing to a Vec cannot fail");
    out.push(b'}');
    if f.schemas {
        out.push(b'}');
        key.extend_from_slice(
            br#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"databaseName"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeKey","version":1},"payload":"#,
        );
    }
    key.extend_from_slice(b"{\"databaseName\":");
    columns::push_str(key, d.database);
    key.push(b'}');
    if f.schemas {
        key.push(b'}');
    }
}
