//! Table metadata the binlog does not carry, from information_schema.
//!
//! MariaDB's JSON columns are LONGTEXT with a `json_valid()` check: the
//! binlog cannot tell them from text, so their indexes come from
//! `CHECK_CONSTRAINTS`. Servers without `binlog_row_metadata` give no column
//! names nor primary key: those come from `COLUMNS`. Entries are cached per
//! table and dropped on any DDL (the pipeline calls [`SchemaCache::invalidate`]).

use crate::decode::{Flavor, Table};
use crate::error::TaskError;
use mysql_async::prelude::Queryable;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
struct Known {
    names: Vec<String>,
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
        if self.flavor != Flavor::MariaDb && !needs_names {
            return Ok(());
        }
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
                return Err(crate::error::DefiniteError::Decode(format!(
                    "{}.{} has {} columns in the binlog but {} in information_schema",
                    key.0,
                    key.1,
                    table.columns.len(),
                    k.names.len()
                ))
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
        Ok(())
    }

    async fn lookup(&mut self, db: &str, table: &str, names: bool) -> Result<Known, TaskError> {
        let mut k = Known::default();
        let cols: Vec<(String, String)> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_KEY FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, table),
            )
            .await?;
        if names {
            for (i, (name, key)) in cols.iter().enumerate() {
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
    #[test]
    fn finds_json_valid_columns() {
        assert_eq!(
            super::json_valid_column("json_valid(`doc`)").as_deref(),
            Some("doc")
        );
        assert_eq!(super::json_valid_column("`a` > 0"), None);
    }
}
