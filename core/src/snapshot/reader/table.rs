//! A table's description for the snapshot: its columns and how each is
//! rendered, the message key (as the stream keys the table) and the chunk
//! order, read from `information_schema` ([`table_spec`]).
//!
//! Flow in: a database and table name. Flow out: a [`TableSpec`], or why
//! the table is not copied ([`NotCopied`]: dropped, or a column of a type
//! snapshots do not read). The key choice ([`choose_key`]) is pure: the
//! primary key, else the unique NOT NULL key the server takes as primary,
//! else any unique NOT NULL key for the order with the whole row as key,
//! else none (the table is read in one consistent read,
//! [`super::single`]). Server errors come back as they are; the caller
//! classifies them.

use crate::decode::Table;
use crate::snapshot::render::{self, SnapColumn};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::sync::Arc;

/// The ordering and rendering of one table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub columns: Vec<SnapColumn>,
    /// Message key columns, as the stream keys the table: the primary key,
    /// else the unique NOT NULL key the server takes as primary, else empty
    /// (the whole row).
    pub key_cols: Vec<usize>,
    /// Chunk order: the primary key, else a unique NOT NULL key.
    pub order_cols: Vec<usize>,
    /// The table as a binlog table map describes it (for the message
    /// formats), its primary key being `key_cols`.
    pub table: Arc<Table>,
}

/// Why a table is not copied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCopied {
    #[error("the table no longer exists")]
    Gone,
    #[error("column `{column}` has type {data_type}, which snapshots do not read")]
    UnreadType { column: String, data_type: String },
}

pub(super) fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Loads how to read and render `db`.`table`; `Ok(None)` when it is gone.
pub async fn table_spec(
    conn: &mut Conn,
    db: &str,
    table: &str,
) -> Result<Result<TableSpec, NotCopied>, mysql_async::Error> {
    let cols = crate::source::schema::column_defs(conn, db, table).await?;
    if cols.is_empty() {
        return Ok(Err(NotCopied::Gone));
    }
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .unwrap_or_default();
    let json: Vec<String> = checks
        .iter()
        .filter_map(|c| crate::source::schema::json_valid_column(c))
        .collect();
    let mut columns = Vec::with_capacity(cols.len());
    let mut def = Table {
        table_id: 0,
        database: db.to_string(),
        name: table.to_string(),
        columns: Vec::with_capacity(cols.len()),
        primary_key: Vec::new(),
        has_names: true,
    };
    for c in &cols {
        let json_text = json.contains(&c.name);
        let kind = render::kind_of(
            &c.data_type,
            c.fsp.map(|f| f.min(6) as u8),
            c.charset.as_deref(),
            json_text,
        );
        let (Some(kind), Some(col)) = (kind, crate::source::schema::table_column(c, json_text))
        else {
            return Ok(Err(NotCopied::UnreadType {
                column: c.name.clone(),
                data_type: c.data_type.clone(),
            }));
        };
        columns.push(SnapColumn {
            name: c.name.clone(),
            kind,
        });
        def.columns.push(col);
    }
    let index: Vec<(String, String, u32)> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME = 'PRIMARY' DESC, \
             INDEX_NAME, SEQ_IN_INDEX",
            (db, table),
        )
        .await?;
    // the columns the server shows as PRI: the primary key, or without one
    // the unique NOT NULL key it takes as such (and keys the stream by)
    let pri: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_KEY = 'PRI'",
            (db, table),
        )
        .await?;
    let pos = |c: &str| cols.iter().position(|x| x.name == c);
    let mut indexes: Vec<KeyIndex> = Vec::new();
    for (name, col, non_unique) in &index {
        if indexes.last().is_none_or(|k| k.name != *name) {
            indexes.push(KeyIndex {
                name: name.clone(),
                columns: Vec::new(),
                usable: *non_unique == 0,
            });
        }
        let k = indexes.last_mut().expect("pushed above");
        match pos(col) {
            Some(i) if !cols[i].nullable => k.columns.push(i),
            _ => k.usable = false,
        }
    }
    let pri: Vec<usize> = pri.iter().filter_map(|c| pos(c)).collect();
    let (key_cols, order_cols) = choose_key(&indexes, &pri);
    if order_cols.is_empty() {
        // dropped between the two queries: say so, not "no key"
        let still: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await?;
        if still.unwrap_or(0) == 0 {
            return Ok(Err(NotCopied::Gone));
        }
        // no usable key: the whole row is the message key, as the stream
        // keys such tables, and the table is read in one consistent read
    }
    def.primary_key.clone_from(&key_cols);
    Ok(Ok(TableSpec {
        columns,
        key_cols,
        order_cols,
        table: Arc::new(def),
    }))
}

/// A unique or plain index of a table: its columns in key order, and
/// whether it can order chunks (unique, every column NOT NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyIndex {
    name: String,
    columns: Vec<usize>,
    usable: bool,
}

/// The message key columns and the chunk order of a table, from its
/// `indexes` and the columns the server shows as `PRI` (`pri`, any order):
/// the primary key; else the unique NOT NULL key the server takes as
/// primary (the stream keys rows by it too), in its key order; else the
/// first usable unique key for the order with the whole row as message key;
/// else nothing (a single read).
fn choose_key(indexes: &[KeyIndex], pri: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let usable = || indexes.iter().filter(|k| k.usable && !k.columns.is_empty());
    if let Some(k) = usable().find(|k| k.name == "PRIMARY") {
        return (k.columns.clone(), k.columns.clone());
    }
    let same_set = |k: &&KeyIndex| {
        let (mut a, mut b) = (k.columns.clone(), pri.to_vec());
        a.sort_unstable();
        b.sort_unstable();
        !b.is_empty() && a == b
    };
    if let Some(k) = usable().find(same_set) {
        return (k.columns.clone(), k.columns.clone());
    }
    match usable().next() {
        Some(k) => (Vec::new(), k.columns.clone()),
        None => (Vec::new(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_primary_key_else_the_unique_key_the_server_takes_as_primary() {
        let k = |name: &str, columns: &[usize], usable: bool| KeyIndex {
            name: name.into(),
            columns: columns.to_vec(),
            usable,
        };
        let pk = k("PRIMARY", &[2, 0], true);
        let a = k("a_code", &[1], true);
        let b = k("b_pair", &[3, 4], true);
        let nullable = k("n", &[5], false);
        assert_eq!(
            choose_key(&[pk.clone(), a.clone()], &[0, 2]),
            (vec![2, 0], vec![2, 0])
        );
        // no primary key: the server shows b's columns as PRI (in column
        // order), and keys rows by b in its key order
        assert_eq!(
            choose_key(&[a.clone(), b.clone()], &[4, 3]),
            (vec![3, 4], vec![3, 4])
        );
        assert_eq!(
            choose_key(std::slice::from_ref(&a), &[1]),
            (vec![1], vec![1])
        );
        // a usable key the server does not show as PRI orders the chunks,
        // the whole row is the message key
        assert_eq!(
            choose_key(&[nullable.clone(), a.clone()], &[]),
            (vec![], vec![1])
        );
        assert_eq!(choose_key(&[nullable], &[]), (vec![], vec![]));
        assert_eq!(choose_key(&[], &[]), (vec![], vec![]));
    }
}
