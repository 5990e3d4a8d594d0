//! TABLE_MAP events and their optional metadata.
//!
//! In: the body of a TABLE_MAP event. Out: a [`Table`] with one [`Column`]
//! per column: its real type (CHAR columns that are really ENUM/SET are
//! resolved), its metadata normalised as `value` documents, nullability,
//! and what `binlog_row_metadata=FULL` adds: names, signedness, collations,
//! ENUM/SET labels, the primary key. Without the optional metadata columns
//! are named `@1`, `@2`.. and signedness/collations are unknown; the caller
//! can fill names, key and JSON columns in with [`Table::apply_schema`].
//!
//! Fails on a truncated body, on a column type whose metadata size is
//! unknown, and on impossible metadata (DECIMAL scale above precision,
//! fsp above 6, ...).

use super::charset::{charset_of, decode_text, Charset};
use super::cursor::Cursor;
use super::event::Flavor;
use super::DecodeError;

/// Column type codes.
pub mod types {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    /// MariaDB: VARCHAR with column compression.
    pub const VARCHAR_COMPRESSED: u8 = 140;
    /// MariaDB: BLOB/TEXT with column compression.
    pub const BLOB_COMPRESSED: u8 = 141;
    /// MySQL 9 VECTOR.
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// Optional metadata field types (`binlog_row_metadata=FULL`).
mod opt {
    pub const SIGNEDNESS: u8 = 1;
    pub const DEFAULT_CHARSET: u8 = 2;
    pub const COLUMN_CHARSET: u8 = 3;
    pub const COLUMN_NAME: u8 = 4;
    pub const SET_STR_VALUE: u8 = 5;
    pub const ENUM_STR_VALUE: u8 = 6;
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
}

/// One column of a table map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// From COLUMN_NAME metadata; `@1`, `@2`.. (1-based) when absent.
    pub name: String,
    /// Real type: a STRING column that is an ENUM or SET has 247 / 248.
    pub type_code: u8,
    /// Type metadata, see the table in `value`'s doc.
    pub meta: u16,
    /// From SIGNEDNESS metadata (numeric columns only).
    pub unsigned: bool,
    /// Collation id of character columns and ENUM/SET; `None` if unknown.
    pub charset: Option<u16>,
    pub nullable: bool,
    pub enum_values: Vec<String>,
    pub set_values: Vec<String>,
    /// Set by the caller for text columns holding JSON (MariaDB's JSON is
    /// LONGTEXT): valid text is emitted as a raw JSON value.
    pub json_text: bool,
}

impl Column {
    /// A column with default attributes, named `@{index+1}`.
    pub fn new(index: usize, type_code: u8, meta: u16) -> Self {
        Self {
            name: format!("@{}", index + 1),
            type_code,
            meta,
            unsigned: false,
            charset: None,
            nullable: true,
            enum_values: Vec::new(),
            set_values: Vec::new(),
            json_text: false,
        }
    }

    /// Counted by SIGNEDNESS metadata. MariaDB counts YEAR too (its field
    /// class derives from TINYINT); MySQL does not.
    fn is_numeric(&self, flavor: Flavor) -> bool {
        self.type_code == types::YEAR && flavor == Flavor::MariaDb
            || matches!(
                self.type_code,
                types::TINY
                    | types::SHORT
                    | types::INT24
                    | types::LONG
                    | types::LONGLONG
                    | types::FLOAT
                    | types::DOUBLE
                    | types::DECIMAL
                    | types::NEWDECIMAL
            )
    }

    /// Counted by DEFAULT_CHARSET / COLUMN_CHARSET metadata. MariaDB counts
    /// GEOMETRY as a character column (its field class derives from BLOB);
    /// MySQL does not.
    fn is_character(&self, flavor: Flavor) -> bool {
        match self.type_code {
            types::STRING | types::VAR_STRING | types::VARCHAR | types::BLOB => true,
            types::GEOMETRY => flavor == Flavor::MariaDb,
            _ => false,
        }
    }

    fn is_enum_or_set(&self) -> bool {
        matches!(self.type_code, types::ENUM | types::SET)
    }
}

/// A table as a TABLE_MAP event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub table_id: u64,
    pub database: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// Indexes of the primary key columns, in key order; empty if unknown
    /// or the table has none.
    pub primary_key: Vec<usize>,
    /// True when the optional metadata carried column names.
    pub has_names: bool,
}

impl Table {
    /// Fills in what the binlog lacked, from the schema (information_schema):
    /// column names when the table map had none (and `names` has one per
    /// column), the primary key when the table map had none (and every index
    /// is a column), and marks `json_columns` as JSON text.
    pub fn apply_schema(
        &mut self,
        names: &[String],
        primary_key: &[usize],
        json_columns: &[usize],
    ) {
        if !self.has_names && names.len() == self.columns.len() {
            for (c, n) in self.columns.iter_mut().zip(names) {
                c.name.clone_from(n);
            }
        }
        if self.primary_key.is_empty() && primary_key.iter().all(|&i| i < self.columns.len()) {
            self.primary_key = primary_key.to_vec();
        }
        for &i in json_columns {
            if let Some(c) = self.columns.get_mut(i) {
                c.json_text = true;
            }
        }
    }

    /// Column names in table order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// Names of the primary key columns, in key order.
    pub fn primary_key_names(&self) -> impl Iterator<Item = &str> {
        self.primary_key
            .iter()
            .filter_map(|&i| self.columns.get(i).map(|c| c.name.as_str()))
    }
}

/// Table id, database and table name of a TABLE_MAP body, without decoding
/// the columns (to filter tables cheaply).
pub fn table_map_name(body: &[u8]) -> Result<(u64, &str, &str), DecodeError> {
    let mut c = Cursor::new(body);
    let table_id = c.u48("table map table id")?;
    c.u16("table map flags")?;
    let db = name_z(&mut c, "table map database")?;
    let table = name_z(&mut c, "table map table name")?;
    let bad = |_| DecodeError::Malformed {
        type_code: super::event::types::TABLE_MAP,
        what: "table name is not utf-8",
    };
    Ok((
        table_id,
        std::str::from_utf8(db).map_err(bad)?,
        std::str::from_utf8(table).map_err(bad)?,
    ))
}

fn name_z<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<&'a [u8], DecodeError> {
    let len = c.u8(what)? as usize;
    let name = c.bytes(len, what)?;
    c.u8(what)?;
    Ok(name)
}

fn bad(what: &'static str, column: usize) -> DecodeError {
    DecodeError::BadMetadata { what, column }
}

/// Reads one column's metadata and normalises it (see `value`'s doc).
fn read_column(i: usize, ty: u8, m: &mut Cursor<'_>) -> Result<Column, DecodeError> {
    let what = "table map column metadata";
    let (ty, meta) = match ty {
        types::FLOAT | types::DOUBLE => (ty, u16::from(m.u8(what)?)),
        types::BLOB
        | types::TINY_BLOB
        | types::MEDIUM_BLOB
        | types::LONG_BLOB
        | types::GEOMETRY
        | types::JSON
        | types::BLOB_COMPRESSED
        | types::VECTOR => {
            let n = m.u8(what)?;
            if !(1..=4).contains(&n) {
                return Err(bad("length bytes must be 1..4", i));
            }
            (ty, u16::from(n))
        }
        types::VARCHAR | types::VAR_STRING | types::VARCHAR_COMPRESSED => (ty, m.u16(what)?),
        types::BIT => {
            let meta = m.u16(what)?;
            if (meta & 0xff) > 7 || super::value::bit_len(meta) > 8 {
                return Err(bad("BIT longer than 64 bits", i));
            }
            (ty, meta)
        }
        types::NEWDECIMAL => {
            let (p, s) = (m.u8(what)?, m.u8(what)?);
            if p == 0 || p > super::decimal::MAX_PRECISION || s > super::decimal::MAX_SCALE || s > p
            {
                return Err(bad("DECIMAL precision/scale out of range", i));
            }
            (ty, (u16::from(p) << 8) | u16::from(s))
        }
        types::STRING | types::ENUM | types::SET => {
            let (b0, b1) = (m.u8(what)?, m.u8(what)?);
            let (real, len) = if b0 == 0 {
                (types::STRING, u16::from_le_bytes([b0, b1]))
            } else if b0 & 0x30 != 0x30 {
                // CHAR longer than 255 bytes keeps length bits 8-9 here.
                (
                    b0 | 0x30,
                    u16::from(b1) | ((u16::from(b0 & 0x30) ^ 0x30) << 4),
                )
            } else {
                (b0, u16::from(b1))
            };
            match real {
                types::ENUM if matches!(b1, 1 | 2) => (types::ENUM, u16::from(b1)),
                types::SET if (1..=8).contains(&b1) => (types::SET, u16::from(b1)),
                types::ENUM | types::SET => return Err(bad("ENUM/SET storage size", i)),
                _ => (types::STRING, len),
            }
        }
        types::TIME2 | types::DATETIME2 | types::TIMESTAMP2 => {
            let fsp = m.u8(what)?;
            if fsp > 6 {
                return Err(bad("fractional seconds precision above 6", i));
            }
            (ty, u16::from(fsp))
        }
        types::DECIMAL
        | types::TINY
        | types::SHORT
        | types::LONG
        | types::NULL
        | types::TIMESTAMP
        | types::LONGLONG
        | types::INT24
        | types::DATE
        | types::TIME
        | types::DATETIME
        | types::YEAR
        | types::NEWDATE => (ty, 0),
        _ => return Err(DecodeError::UnknownColumnType { ty, column: i }),
    };
    Ok(Column::new(i, ty, meta))
}

/// Decodes a TABLE_MAP body.
pub fn parse_table_map(body: &[u8], flavor: Flavor) -> Result<Table, DecodeError> {
    let (table_id, database, name) = table_map_name(body)?;
    let mut c = Cursor::new(body);
    c.bytes(
        6 + 2 + 1 + database.len() + 1 + 1 + name.len() + 1,
        "table map",
    )?;
    let count = c.packed_len("table map column count")?;
    let type_bytes = c.bytes(count, "table map column types")?;
    let mut meta = Cursor::new(c.packed_bytes("table map metadata")?);
    let mut columns = Vec::with_capacity(count);
    for (i, &ty) in type_bytes.iter().enumerate() {
        columns.push(read_column(i, ty, &mut meta)?);
    }
    if !meta.is_empty() {
        return Err(bad("metadata longer than its columns", count));
    }
    let nulls = c.bytes(count.div_ceil(8), "table map null bitmap")?;
    for (i, col) in columns.iter_mut().enumerate() {
        col.nullable = nulls[i / 8] & (1 << (i % 8)) != 0;
    }
    let mut table = Table {
        table_id,
        database: database.to_string(),
        name: name.to_string(),
        columns,
        primary_key: Vec::new(),
        has_names: false,
    };
    if !c.is_empty() {
        OptionalMetadata::apply(&mut table, c.rest(), flavor)?;
    }
    Ok(table)
}

/// State gathered while walking the optional metadata fields, applied once
/// all are read (ENUM/SET labels need their charset, which comes later).
#[derive(Default)]
struct OptionalMetadata<'a> {
    enum_labels: Vec<Vec<&'a [u8]>>,
    set_labels: Vec<Vec<&'a [u8]>>,
}

impl<'a> OptionalMetadata<'a> {
    fn apply(table: &mut Table, data: &'a [u8], flavor: Flavor) -> Result<(), DecodeError> {
        let mut st = OptionalMetadata::default();
        let mut c = Cursor::new(data);
        while !c.is_empty() {
            let kind = c.u8("optional metadata type")?;
            let value = c.packed_bytes("optional metadata field")?;
            st.field(table, kind, value, flavor)?;
        }
        let columns = &mut table.columns;
        let mut enums = st.enum_labels.into_iter();
        let mut sets = st.set_labels.into_iter();
        for col in columns.iter_mut() {
            let cs = col.charset.map(charset_of).unwrap_or(Charset::Utf8);
            let labels = match col.type_code {
                types::ENUM => enums.next(),
                types::SET => sets.next(),
                _ => continue,
            };
            let labels: Vec<String> = labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| decode_text(l, cs))
                .collect();
            if col.type_code == types::ENUM {
                col.enum_values = labels;
            } else {
                col.set_values = labels;
            }
        }
        Ok(())
    }

    fn field(
        &mut self,
        table: &mut Table,
        kind: u8,
        value: &'a [u8],
        flavor: Flavor,
    ) -> Result<(), DecodeError> {
        let mut v = Cursor::new(value);
        let cols = &mut table.columns;
        match kind {
            opt::SIGNEDNESS => {
                for (n, col) in cols.iter_mut().filter(|c| c.is_numeric(flavor)).enumerate() {
                    let byte = value.get(n / 8).ok_or(DecodeError::Truncated {
                        what: "signedness bitmap",
                    })?;
                    col.unsigned = byte & (0x80 >> (n % 8)) != 0;
                }
            }
            opt::DEFAULT_CHARSET | opt::ENUM_AND_SET_DEFAULT_CHARSET => {
                let enum_set = kind == opt::ENUM_AND_SET_DEFAULT_CHARSET;
                let default = v.packed("default charset")? as u16;
                let mut targets: Vec<&mut Column> = cols
                    .iter_mut()
                    .filter(|c| {
                        if enum_set {
                            c.is_enum_or_set()
                        } else {
                            c.is_character(flavor)
                        }
                    })
                    .collect();
                for col in targets.iter_mut() {
                    col.charset = Some(default);
                }
                while !v.is_empty() {
                    let idx = v.packed_len("charset column index")?;
                    let coll = v.packed("charset collation")? as u16;
                    let col = targets.get_mut(idx).ok_or(bad(
                        "charset for a column that is not a character column",
                        idx,
                    ))?;
                    col.charset = Some(coll);
                }
            }
            opt::COLUMN_CHARSET | opt::ENUM_AND_SET_COLUMN_CHARSET => {
                let enum_set = kind == opt::ENUM_AND_SET_COLUMN_CHARSET;
                for col in cols.iter_mut().filter(|c| {
                    if enum_set {
                        c.is_enum_or_set()
                    } else {
                        c.is_character(flavor)
                    }
                }) {
                    col.charset = Some(v.packed("column charset")? as u16);
                }
            }
            opt::COLUMN_NAME => {
                for col in cols.iter_mut() {
                    let name = v.packed_bytes("column name")?;
                    col.name = String::from_utf8_lossy(name).into_owned();
                }
                table.has_names = true;
            }
            opt::SET_STR_VALUE | opt::ENUM_STR_VALUE => {
                let want = if kind == opt::SET_STR_VALUE {
                    types::SET
                } else {
                    types::ENUM
                };
                let n = cols.iter().filter(|c| c.type_code == want).count();
                let mut all = Vec::with_capacity(n);
                for _ in 0..n {
                    let count = v.packed_len("enum/set label count")?;
                    if count > v.len() {
                        return Err(DecodeError::Truncated {
                            what: "enum/set labels",
                        });
                    }
                    let mut labels = Vec::with_capacity(count);
                    for _ in 0..count {
                        labels.push(v.packed_bytes("enum/set label")?);
                    }
                    all.push(labels);
                }
                if kind == opt::SET_STR_VALUE {
                    self.set_labels = all;
                } else {
                    self.enum_labels = all;
                }
            }
            opt::SIMPLE_PRIMARY_KEY | opt::PRIMARY_KEY_WITH_PREFIX => {
                while !v.is_empty() {
                    let idx = v.packed_len("primary key column")?;
                    if kind == opt::PRIMARY_KEY_WITH_PREFIX {
                        v.packed("primary key prefix")?;
                    }
                    if idx >= cols.len() {
                        return Err(bad("primary key column out of range", idx));
                    }
                    table.primary_key.push(idx);
                }
            }
            // GEOMETRY_TYPE, COLUMN_VISIBILITY and future fields: not needed.
            _ => {}
        }
        Ok(())
    }
}
