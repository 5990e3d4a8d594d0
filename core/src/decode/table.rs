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
    /// The type as `information_schema.COLUMNS.COLUMN_TYPE` gives it
    /// (`varchar(32)`, `int(11) unsigned`), when the schema was read; the
    /// binlog carries no lengths nor display widths.
    pub column_type: Option<String>,
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
            column_type: None,
        }
    }

    /// Counted by SIGNEDNESS metadata. MariaDB counts YEAR too (its field
    /// class derives from TINYINT); MySQL does not.
    pub(crate) fn is_numeric(&self, flavor: Flavor) -> bool {
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
    pub(crate) fn is_character(&self, flavor: Flavor) -> bool {
        match self.type_code {
            types::STRING | types::VAR_STRING | types::VARCHAR | types::BLOB => true,
            types::GEOMETRY => flavor == Flavor::MariaDb,
            _ => false,
        }
    }

    pub(crate) fn is_enum_or_set(&self) -> bool {
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
        super::optional::OptionalMetadata::apply(&mut table, c.rest(), flavor)?;
    }
    Ok(table)
}

/// Builders of TABLE_MAP bodies for tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A MySQL length-encoded integer.
    pub(crate) fn packed(v: u64) -> Vec<u8> {
        match v {
            0..=250 => vec![v as u8],
            251..=0xffff => {
                let mut b = vec![0xfc];
                b.extend_from_slice(&(v as u16).to_le_bytes());
                b
            }
            0x1_0000..=0xff_ffff => {
                let mut b = vec![0xfd];
                b.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
                b
            }
            _ => {
                let mut b = vec![0xfe];
                b.extend_from_slice(&v.to_le_bytes());
                b
            }
        }
    }

    /// Length-prefixed strings, as COLUMN_NAME and labels are stored.
    pub(crate) fn strings(items: &[&str]) -> Vec<u8> {
        let raw: Vec<&[u8]> = items.iter().map(|s| s.as_bytes()).collect();
        raw_strings(&raw)
    }

    /// Length-prefixed byte strings.
    pub(crate) fn raw_strings(items: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        for s in items {
            b.extend(packed(s.len() as u64));
            b.extend_from_slice(s);
        }
        b
    }

    /// A TABLE_MAP body: columns as (type, metadata bytes), all nullable
    /// but the first, then optional metadata fields (type, value).
    pub(crate) fn table_map(
        table_id: u64,
        cols: &[(u8, &[u8])],
        optional: &[(u8, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = table_id.to_le_bytes()[..6].to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(b"\x02db\x00");
        b.extend_from_slice(b"\x01t\x00");
        b.extend(packed(cols.len() as u64));
        b.extend(cols.iter().map(|c| c.0));
        let meta: Vec<u8> = cols.iter().flat_map(|c| c.1.iter().copied()).collect();
        b.extend(packed(meta.len() as u64));
        b.extend(meta);
        let mut nulls = vec![0xffu8; cols.len().div_ceil(8)];
        nulls[0] &= !1;
        b.extend(nulls);
        for (t, v) in optional {
            b.push(*t);
            b.extend(packed(v.len() as u64));
            b.extend_from_slice(v);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn without_optional_metadata_and_apply_schema() {
        let body = table_map(
            7,
            &[
                (types::LONG, &[]),
                (types::VARCHAR, &[0x2c, 0x01]),
                (types::BLOB, &[2]),
            ],
            &[],
        );
        assert_eq!(table_map_name(&body).unwrap(), (7, "db", "t"));
        let mut t = parse_table_map(&body, Flavor::MySql).unwrap();
        assert_eq!(t.column_names().collect::<Vec<_>>(), ["@1", "@2", "@3"]);
        assert!(!t.has_names && t.primary_key.is_empty());
        assert_eq!(t.columns[1].meta, 300);
        assert!(!t.columns[0].nullable && t.columns[1].nullable);
        assert_eq!(t.columns[2].charset, None);

        // Wrong number of names: ignored; out-of-range key: ignored.
        t.apply_schema(&["a".into()], &[5], &[9]);
        assert_eq!(t.columns[0].name, "@1");
        assert!(t.primary_key.is_empty());
        t.apply_schema(&["id".into(), "v".into(), "doc".into()], &[0], &[2]);
        assert_eq!(t.column_names().collect::<Vec<_>>(), ["id", "v", "doc"]);
        assert_eq!(t.primary_key, [0]);
        assert!(t.columns[2].json_text);
    }

    #[test]
    fn names_from_the_binlog_win_over_the_schema() {
        let body = table_map(7, &[(types::LONG, &[])], &[(4, strings(&["id"]))]);
        let mut t = parse_table_map(&body, Flavor::MySql).unwrap();
        assert!(t.has_names);
        t.apply_schema(&["other".into()], &[], &[]);
        assert_eq!(t.columns[0].name, "id");
    }

    #[test]
    fn string_real_types() {
        let body = table_map(
            1,
            &[
                (types::STRING, &[0xf7, 0x02]), // ENUM, 2 bytes
                (types::STRING, &[0xf8, 0x08]), // SET, 8 bytes
                (types::STRING, &[0xfe, 0x28]), // CHAR(10) utf8mb4: 40 bytes
                (types::STRING, &[0xce, 0xfc]), // CHAR(255) utf8mb4: 1020 bytes
            ],
            &[],
        );
        let t = parse_table_map(&body, Flavor::MySql).unwrap();
        let got: Vec<(u8, u16)> = t.columns.iter().map(|c| (c.type_code, c.meta)).collect();
        assert_eq!(got, [(247, 2), (248, 8), (254, 40), (254, 1020)]);
    }

    /// One table map read as MySQL and as MariaDB: YEAR counts for
    /// signedness and GEOMETRY for charsets only in MariaDB.
    #[test]
    fn flavor_differences() {
        let cols: &[(u8, &[u8])] = &[
            (types::YEAR, &[]),
            (types::LONG, &[]),
            (types::GEOMETRY, &[4]),
            (types::VARCHAR, &[10, 0]),
        ];
        let optional = [
            (1u8, vec![0b1000_0000]),
            (2u8, [packed(255), packed(0), packed(8)].concat()),
        ];
        let body = table_map(1, cols, &optional);
        let my = parse_table_map(&body, Flavor::MySql).unwrap();
        assert!(my.columns[1].unsigned);
        assert_eq!(my.columns[2].charset, None);
        assert_eq!(my.columns[3].charset, Some(8));
        let maria = parse_table_map(&body, Flavor::MariaDb).unwrap();
        assert!(maria.columns[0].unsigned && !maria.columns[1].unsigned);
        assert_eq!(maria.columns[2].charset, Some(8));
        assert_eq!(maria.columns[3].charset, Some(255));
    }

    #[test]
    fn column_charsets_labels_and_prefixed_key() {
        let cols: &[(u8, &[u8])] = &[
            (types::VARCHAR, &[10, 0]),
            (types::STRING, &[0xf7, 0x01]),
            (types::BLOB, &[2]),
            (types::STRING, &[0xf8, 0x01]),
        ];
        let optional = [
            (3u8, [packed(8), packed(63)].concat()),
            // One ENUM with the latin1 labels "äx" and "b".
            (6u8, [packed(2), raw_strings(&[b"\xe4x", b"b"])].concat()),
            (5u8, [packed(1), strings(&["s"])].concat()),
            (11u8, [packed(8), packed(45)].concat()),
            (9u8, [packed(2), packed(10), packed(0), packed(0)].concat()),
            (12u8, vec![0xff]),
            (99u8, vec![1, 2, 3]),
        ];
        let body = table_map(1, cols, &optional);
        let t = parse_table_map(&body, Flavor::MySql).unwrap();
        assert_eq!(t.columns[0].charset, Some(8));
        assert_eq!(t.columns[2].charset, Some(63));
        assert_eq!(t.columns[1].charset, Some(8));
        assert_eq!(t.columns[3].charset, Some(45));
        assert_eq!(t.columns[1].enum_values, ["äx", "b"]);
        assert_eq!(t.columns[3].set_values, ["s"]);
        assert_eq!(t.primary_key, [2, 0]);
    }

    #[test]
    fn bad_metadata() {
        type Cols<'a> = &'a [(u8, &'a [u8])];
        let cases: &[(Cols<'_>, DecodeError)] = &[
            (
                &[(types::NEWDECIMAL, &[5, 6])],
                DecodeError::BadMetadata {
                    what: "DECIMAL precision/scale out of range",
                    column: 0,
                },
            ),
            (
                &[(types::LONG, &[]), (types::DATETIME2, &[7])],
                DecodeError::BadMetadata {
                    what: "fractional seconds precision above 6",
                    column: 1,
                },
            ),
            (
                &[(types::BLOB, &[5])],
                DecodeError::BadMetadata {
                    what: "length bytes must be 1..4",
                    column: 0,
                },
            ),
            (
                &[(types::BIT, &[0, 9])],
                DecodeError::BadMetadata {
                    what: "BIT longer than 64 bits",
                    column: 0,
                },
            ),
            (
                &[(200, &[])],
                DecodeError::UnknownColumnType { ty: 200, column: 0 },
            ),
        ];
        for (cols, want) in cases {
            assert_eq!(
                &parse_table_map(&table_map(1, cols, &[]), Flavor::MySql).unwrap_err(),
                want
            );
        }
        // Metadata bytes left over.
        let mut body = table_map(1, &[(types::LONG, &[])], &[]);
        body[15] = 1;
        body.insert(16, 0);
        assert!(parse_table_map(&body, Flavor::MySql).is_err());
        // Primary key index past the columns.
        let body = table_map(1, &[(types::LONG, &[])], &[(8, packed(3))]);
        assert!(matches!(
            parse_table_map(&body, Flavor::MySql),
            Err(DecodeError::BadMetadata { .. })
        ));
    }
}
