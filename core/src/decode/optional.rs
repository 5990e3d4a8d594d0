//! Optional metadata of TABLE_MAP events (`binlog_row_metadata=FULL`).
//!
//! In: the type-length-value fields after a table map's null bitmap. Out:
//! names, signedness, collations, ENUM/SET labels and the primary key
//! written into the [`Table`] being built. Which columns a field counts
//! depends on the server: MariaDB also counts YEAR for signedness and
//! GEOMETRY for collations.

use super::charset::{charset_of, decode_text, Charset};
use super::codes::{column as types, Flavor};
use super::column::{Column, Table};
use super::cursor::Cursor;
use super::error::DecodeError;

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

/// State gathered while walking the optional metadata fields, applied once
/// all are read (ENUM/SET labels need their charset, which comes later).
#[derive(Default)]
pub(crate) struct OptionalMetadata<'a> {
    enum_labels: Vec<Vec<&'a [u8]>>,
    set_labels: Vec<Vec<&'a [u8]>>,
}

impl<'a> OptionalMetadata<'a> {
    pub(crate) fn apply(
        table: &mut Table,
        data: &'a [u8],
        flavor: Flavor,
    ) -> Result<(), DecodeError> {
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

fn bad(what: &'static str, column: usize) -> DecodeError {
    DecodeError::BadMetadata { what, column }
}
