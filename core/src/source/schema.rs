//! Table metadata the binlog does not carry, from information_schema.
//!
//! MariaDB's JSON columns are LONGTEXT with a `json_valid()` check: the
//! binlog cannot tell them from text, so their indexes come from
//! `CHECK_CONSTRAINTS`. Servers without `binlog_row_metadata` give no column
//! names nor primary key: those come from `COLUMNS`. Entries are cached per
//! table and dropped on any DDL (the pipeline calls [`SchemaCache::invalidate`]).

use crate::decode::charset::BINARY_COLLATION;
use crate::decode::{Column, Flavor, Table};
use crate::error::{DataError, TaskError};
use mysql_async::prelude::Queryable;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
struct Known {
    names: Vec<String>,
    /// `COLUMN_TYPE` by column name (Canal's `mysqlType`).
    column_types: Vec<(String, String)>,
    primary_key: Vec<usize>,
    /// Names, not indexes: the table map being completed may be of an older
    /// shape of the table than information_schema shows now.
    json_columns: Vec<String>,
}

/// Cached lookups over a metadata connection.
pub struct SchemaCache {
    conn: mysql_async::Conn,
    flavor: Flavor,
    names_from_schema: bool,
    known: HashMap<(String, String), Known>,
}

impl SchemaCache {
    pub fn new(conn: mysql_async::Conn, flavor: Flavor, names_from_schema: bool) -> Self {
        Self {
            conn,
            flavor,
            names_from_schema,
            known: HashMap::new(),
        }
    }

    /// Forgets everything (after DDL).
    pub fn invalidate(&mut self) {
        self.known.clear();
    }

    /// Completes `table` with what the binlog lacks.
    pub async fn complete(&mut self, table: &mut Table) -> Result<(), TaskError> {
        let needs_names = self.names_from_schema || !table.has_names;
        let key = (table.database.clone(), table.name.clone());
        if !self.known.contains_key(&key) {
            let k = self.lookup(&key.0, &key.1, needs_names).await?;
            self.known.insert(key.clone(), k);
        }
        let k = &self.known[&key];
        let json_in = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| k.json_columns.contains(n))
                .map(|(i, _)| i)
                .collect()
        };
        if needs_names {
            if k.names.len() != table.columns.len() {
                return Err(crate::error::DefiniteError::Decode(DataError::Columns {
                    table: format!("{}.{}", key.0, key.1),
                    binlog: table.columns.len(),
                    schema: k.names.len(),
                })
                .into());
            }
            let json = json_in(&k.names);
            table.apply_schema(&k.names, &k.primary_key, &json);
        } else if !k.json_columns.is_empty() {
            let names: Vec<String> = table.column_names().map(str::to_string).collect();
            let pk = table.primary_key.clone();
            let json = json_in(&names);
            table.apply_schema(&names, &pk, &json);
        }
        // by name: the table map may be of an older shape of the table
        for c in &mut table.columns {
            c.column_type = k
                .column_types
                .iter()
                .find(|(n, _)| *n == c.name)
                .map(|(_, t)| t.clone());
        }
        Ok(())
    }

    /// The definition of `db`.`table` as information_schema gives it now
    /// (`None` when the table does not exist): what a DDL event carries
    /// (Maxwell's `def`, Debezium's `tableChanges`).
    pub async fn definition(
        &mut self,
        db: &str,
        table: &str,
    ) -> Result<Option<TableDef>, TaskError> {
        let columns = column_defs(&mut self.conn, db, table).await?;
        if columns.is_empty() {
            return Ok(None);
        }
        let primary_key: Vec<String> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' \
                 ORDER BY SEQ_IN_INDEX",
                (db, table),
            )
            .await?;
        let charset: Option<Option<String>> = self
            .conn
            .exec_first(
                "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t \
                 JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION \
                 WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
                (db, table),
            )
            .await?;
        Ok(Some(TableDef {
            charset: charset.flatten(),
            columns,
            primary_key,
        }))
    }

    async fn lookup(&mut self, db: &str, table: &str, names: bool) -> Result<Known, TaskError> {
        let mut k = Known::default();
        let cols: Vec<(String, String, String)> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_KEY, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, table),
            )
            .await?;
        k.column_types = cols
            .iter()
            .map(|(n, _, t)| (n.clone(), t.clone()))
            .collect();
        if names {
            for (i, (name, key, _)) in cols.iter().enumerate() {
                k.names.push(name.clone());
                if key == "PRI" {
                    k.primary_key.push(i);
                }
            }
        }
        if self.flavor == Flavor::MariaDb {
            let checks: Vec<String> = self
                .conn
                .exec(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                    (db, table),
                )
                .await?;
            for clause in checks {
                if let Some(col) = json_valid_column(&clause) {
                    k.json_columns.push(col);
                }
            }
        }
        Ok(k)
    }
}

/// `COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME,
/// CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE,
/// DATETIME_PRECISION, EXTRA, COLUMN_COMMENT`.
type DefRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    String,
    String,
);

/// A table's definition (information_schema), for DDL events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDef {
    /// The table's default character set.
    pub charset: Option<String>,
    pub columns: Vec<ColumnDef>,
    /// Primary key column names in key order.
    pub primary_key: Vec<String>,
}

/// One column of a [`TableDef`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    /// `DATA_TYPE`, lower case (`varchar`).
    pub data_type: String,
    /// `COLUMN_TYPE` (`varchar(32)`, `int(10) unsigned`, `enum('a','b')`).
    pub column_type: String,
    pub nullable: bool,
    pub charset: Option<String>,
    /// Characters of a string column, digits of a number.
    pub length: Option<u64>,
    pub scale: Option<u64>,
    /// Fractional digits of a temporal column.
    pub fsp: Option<u64>,
    pub auto_increment: bool,
    pub generated: bool,
    pub comment: Option<String>,
}

impl ColumnDef {
    pub fn unsigned(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("unsigned")
    }

    /// The labels of an ENUM or SET column.
    pub fn labels(&self) -> Vec<String> {
        labels(&self.column_type)
    }
}

/// The columns of `db`.`table` in table order (empty when it does not exist).
pub async fn column_defs(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> Result<Vec<ColumnDef>, mysql_async::Error> {
    let rows: Vec<DefRow> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, \
             CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, \
             EXTRA, COLUMN_COMMENT FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await?;
    Ok(rows.into_iter().map(ColumnDef::from_row).collect())
}

impl ColumnDef {
    fn from_row(row: DefRow) -> ColumnDef {
        let (name, data_type, column_type, nullable, cs, chars, digits, scale, fsp, extra, comment) =
            row;
        let extra = extra.to_ascii_lowercase();
        ColumnDef {
            name,
            data_type: data_type.to_ascii_lowercase(),
            column_type,
            nullable: nullable == "YES",
            charset: cs,
            length: chars.or(digits),
            scale,
            fsp,
            auto_increment: extra.contains("auto_increment"),
            generated: extra.contains("generated")
                || extra.contains("virtual")
                || extra.contains("stored"),
            comment: (!comment.is_empty()).then_some(comment),
        }
    }
}

/// The column as a binlog table map describes it (type code, metadata,
/// signedness, binary or not, ENUM/SET labels), so that a snapshot row goes
/// through the same message format code as a stream row of the table.
/// `None` for a type snapshots do not read (see `snapshot::render::kind_of`).
pub fn table_column(c: &ColumnDef, json_text: bool) -> Option<Column> {
    use crate::decode::table::types;
    let ty = c.data_type.to_ascii_lowercase();
    let full = c.column_type.to_ascii_lowercase();
    let fsp = c.fsp.unwrap_or(0).min(6) as u16;
    let binary = c
        .charset
        .as_deref()
        .is_none_or(|cs| cs.eq_ignore_ascii_case("binary"));
    let blob_meta = |prefix: &str| match prefix {
        "tiny" => 1,
        "medium" => 3,
        "long" => 4,
        _ => 2,
    };
    let (type_code, meta) = match ty.as_str() {
        "tinyint" => (types::TINY, 0),
        "smallint" => (types::SHORT, 0),
        "mediumint" => (types::INT24, 0),
        "int" | "integer" => (types::LONG, 0),
        "bigint" => (types::LONGLONG, 0),
        "year" => (types::YEAR, 0),
        "decimal" | "numeric" => (
            types::NEWDECIMAL,
            ((c.length.unwrap_or(10) as u16) << 8) | (c.scale.unwrap_or(0) as u16 & 0xff),
        ),
        "float" => (types::FLOAT, 4),
        "double" | "real" => (types::DOUBLE, 8),
        "bit" => {
            let n = c.length.unwrap_or(1) as u16;
            (types::BIT, ((n / 8) << 8) | (n % 8))
        }
        "date" => (types::DATE, 0),
        "datetime" => (types::DATETIME2, fsp),
        "timestamp" => (types::TIMESTAMP2, fsp),
        "time" => (types::TIME2, fsp),
        "char" | "binary" => (types::STRING, 0),
        "varchar" | "varbinary" => (types::VARCHAR, 0),
        "tinytext" | "text" | "mediumtext" | "longtext" => {
            (types::BLOB, blob_meta(ty.trim_end_matches("text")))
        }
        "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            (types::BLOB, blob_meta(ty.trim_end_matches("blob")))
        }
        "enum" => (types::ENUM, 0),
        "set" => (types::SET, 0),
        "json" => (types::JSON, 0),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => (types::GEOMETRY, 0),
        _ => return None,
    };
    let mut col = Column::new(0, type_code, meta);
    col.name.clone_from(&c.name);
    col.unsigned = full.contains("unsigned");
    col.nullable = c.nullable;
    col.json_text = json_text;
    col.column_type = Some(c.column_type.clone());
    let character = matches!(
        ty.as_str(),
        "char"
            | "varchar"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "binary"
            | "varbinary"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
    );
    if character && binary {
        col.charset = Some(BINARY_COLLATION);
    }
    match ty.as_str() {
        "enum" => col.enum_values = labels(&c.column_type),
        "set" => col.set_values = labels(&c.column_type),
        _ => {}
    }
    Some(col)
}

/// The labels of `enum('a','b''c')` / `set(..)`, unquoted.
pub fn labels(column_type: &str) -> Vec<String> {
    let Some(inner) = column_type
        .find('(')
        .and_then(|i| column_type[i + 1..].strip_suffix(')'))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = inner.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (false, '\'') => quoted = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            (true, '\'') => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            (true, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (true, c) => cur.push(c),
            (false, _) => {}
        }
    }
    out
}

/// The column of a `json_valid(`col`)` check clause.
pub fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause
        .trim()
        .strip_prefix("json_valid(")?
        .strip_suffix(')')?;
    Some(inner.trim().trim_matches('`').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(data_type: &str, column_type: &str) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            ..ColumnDef::default()
        }
    }

    #[test]
    fn columns_from_information_schema_describe_the_table_map() {
        use crate::pipeline::format::columns::ColKind as F;
        let kind = |c: &ColumnDef, json: bool| F::of(&table_column(c, json).unwrap());
        let dec = ColumnDef {
            length: Some(10),
            scale: Some(2),
            ..schema("decimal", "decimal(10,2)")
        };
        assert_eq!(
            kind(&dec, false),
            F::Decimal {
                precision: 10,
                scale: 2
            }
        );
        let bit = ColumnDef {
            length: Some(12),
            ..schema("bit", "bit(12)")
        };
        assert_eq!(kind(&bit, false), F::Bit { bits: 12 });
        assert_eq!(
            kind(&schema("int", "int(10) unsigned"), false),
            F::Int {
                bits: 32,
                unsigned: true
            }
        );
        let dt = ColumnDef {
            fsp: Some(3),
            ..schema("datetime", "datetime(3)")
        };
        assert_eq!(kind(&dt, false), F::DateTime { fsp: 3 });
        let text = ColumnDef {
            charset: Some("utf8mb4".into()),
            ..schema("mediumtext", "mediumtext")
        };
        assert_eq!(
            kind(&text, false),
            F::Text {
                fixed: false,
                blob: true
            }
        );
        assert_eq!(
            F::of(&table_column(&text, false).unwrap())
                .mysql_type(&table_column(&text, false).unwrap()),
            "mediumtext"
        );
        let json_text = ColumnDef {
            charset: Some("utf8mb4".into()),
            ..schema("longtext", "longtext")
        };
        assert_eq!(kind(&json_text, true), F::Json);
        assert_eq!(
            kind(&schema("varbinary", "varbinary(16)"), false),
            F::Bytes {
                fixed: false,
                blob: false
            }
        );
        let e = table_column(&schema("enum", "enum('a','it''s','x,y')"), false).unwrap();
        assert_eq!(e.enum_values, ["a", "it's", "x,y"]);
        assert_eq!(e.column_type.as_deref(), Some("enum('a','it''s','x,y')"));
        let s = table_column(&schema("set", "set()"), false).unwrap();
        assert!(s.set_values.is_empty());
        assert_eq!(kind(&schema("point", "point"), false), F::Geometry);
        assert!(table_column(&schema("vector", "vector(3)"), false).is_none());
        let nn = ColumnDef {
            nullable: false,
            ..schema("int", "int(11)")
        };
        assert!(!table_column(&nn, false).unwrap().nullable);
    }

    #[test]
    fn finds_json_valid_columns() {
        assert_eq!(
            super::json_valid_column("json_valid(`doc`)").as_deref(),
            Some("doc")
        );
        assert_eq!(super::json_valid_column("`a` > 0"), None);
    }
}
