//! A table as the decoder knows it: [`Table`] and its [`Column`]s, plain
//! data that the table-map parser (`table`, `optional`) fills in and the
//! row decoder (`rows`, `value`) reads.

use super::codes::{column as types, Flavor};

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
