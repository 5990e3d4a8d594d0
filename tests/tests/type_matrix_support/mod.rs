//! Helpers of the type-matrix test (tests/tests/type_matrix.rs).
//!
//! - [`Col`] and [`TableSpec`]: a column's SQL type, how its value is read
//!   back with `SELECT`, and three sets of edge values (A, B, C; a fourth
//!   set is all NULL). [`columns`] holds the tables of the test.
//! - [`render`]: the docs/design.md §7 rendering of one `SELECT` text value: the
//!   expected JSON of the Kafka message, computed without the decoder.
//! - [`Recorder`]: runs each change on one MariaDB session and records the
//!   message it must produce, with `before`/`after` read by `SELECT` just
//!   before and just after the change.
//! - [`compare`]: every message of a table's topic, in binlog order, field
//!   by field against the recorded expectations; one line per mismatch.

#![allow(dead_code, unused_imports)]

pub mod columns;
mod compare;
mod render;

use compare::shorten;
pub use compare::{compare, same};
pub use render::render;

use mysql_async::prelude::Queryable;
use replicator_common::message::POSITION_HEADER;
use replicator_tests::{Message, Stack};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// `(file, pos, 0 snapshot | 1 stream, chunk, row)` of a message, from its
/// position header: sorting by it puts a topic in binlog order, a snapshot
/// row (`file:pos:s<chunk>.<row>`) before the stream rows of the
/// transaction at its boundary `file:pos`.
pub fn position(m: &Message) -> (String, u64, u8, u64, u64) {
    let h = std::str::from_utf8(m.header(POSITION_HEADER).expect("position header")).unwrap();
    let mut it = h.rsplitn(3, ':');
    let last = it.next().unwrap();
    let at = it.next().unwrap().parse().unwrap();
    let file = it.next().unwrap().to_string();
    match last.strip_prefix('s') {
        Some(cr) => {
            let (c, r) = cr.split_once('.').expect("s<chunk>.<row>");
            (file, at, 0, c.parse().unwrap(), r.parse().unwrap())
        }
        None => (file, at, 1, 0, last.parse().unwrap()),
    }
}

/// How a column is read back and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integers: the text as a JSON number, unsigned kept unsigned.
    Int,
    /// YEAR: the text (`0000` for the zero year) as a number.
    Year,
    /// DECIMAL: the text (exactly the column's scale) as a string.
    Decimal,
    /// FLOAT: `CAST(col AS DOUBLE)` (exact; the FLOAT text has only six
    /// significant digits), compared as the same `f32`.
    Float,
    /// DOUBLE: compared as the same `f64`.
    Double,
    /// BIT: `CAST(col AS UNSIGNED)` as a number.
    Bit,
    /// DATE and TIME: the text as is.
    AsText,
    /// DATETIME: the text with `T` between date and time.
    DateTime,
    /// TIMESTAMP(fsp): `UNIX_TIMESTAMP(col)` rendered in UTC with a `Z`.
    Timestamp(u8),
    /// CHAR/VARCHAR/TEXT/ENUM/SET: the text (converted to UTF-8 by the server).
    Text,
    /// BINARY/VARBINARY/BLOB: `HEX(col)` as base64.
    Bytes,
    /// JSON: the text parsed as JSON.
    Json,
    /// GEOMETRY: `HEX(ST_AsWKB(col))` as base64.
    Geometry,
}

/// Which value set a row takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    A,
    B,
    C,
    Null,
}

/// One column: name, SQL type, rendering, and its values in sets A, B, C
/// (SQL expressions).
#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    pub ty: String,
    pub kind: Kind,
    pub vals: [String; 3],
    /// A key column: NOT NULL, its value given per row by the caller.
    pub key: bool,
}

impl Col {
    pub fn new(name: impl Into<String>, ty: impl Into<String>, kind: Kind, vals: [&str; 3]) -> Col {
        Col {
            name: name.into(),
            ty: ty.into(),
            kind,
            vals: vals.map(str::to_string),
            key: false,
        }
    }

    pub fn key(name: &str, ty: &str, kind: Kind) -> Col {
        Col {
            key: true,
            ..Col::new(name, format!("{ty} NOT NULL"), kind, ["", "", ""])
        }
    }

    fn value(&self, set: Set) -> &str {
        match set {
            Set::A => &self.vals[0],
            Set::B => &self.vals[1],
            Set::C => &self.vals[2],
            Set::Null => "NULL",
        }
    }

    fn select_expr(&self) -> String {
        let n = format!("`{}`", self.name);
        match self.kind {
            Kind::Bit => format!("CAST({n} AS UNSIGNED)"),
            Kind::Float => format!("CAST({n} AS DOUBLE)"),
            Kind::Timestamp(_) => format!("UNIX_TIMESTAMP({n})"),
            Kind::Bytes => format!("HEX({n})"),
            Kind::Geometry => format!("HEX(ST_AsWKB({n}))"),
            _ => n,
        }
    }
}

/// A table of the test: its columns (key columns first) and primary key.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub db: String,
    pub name: String,
    pub cols: Vec<Col>,
    /// Primary key column names in key order (may differ from column order).
    pub pk: Vec<String>,
}

impl TableSpec {
    /// `` `db`.`name` ``
    pub fn sql_name(&self) -> String {
        format!("`{}`.`{}`", self.db, self.name)
    }

    /// The task's topic for this table (template `{database}.{table}`).
    pub fn topic(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    pub fn create_sql(&self) -> String {
        let mut defs: Vec<String> = self
            .cols
            .iter()
            .map(|c| format!("`{}` {}", c.name, c.ty))
            .collect();
        if !self.pk.is_empty() {
            let pk: Vec<String> = self.pk.iter().map(|k| format!("`{k}`")).collect();
            defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
        }
        format!(
            "CREATE TABLE {} ({}) DEFAULT CHARSET=utf8mb4",
            self.sql_name(),
            defs.join(", ")
        )
    }

    /// `INSERT` of rows given as (key column values in column order, set).
    pub fn insert_sql(&self, rows: &[(&[&str], Set)]) -> String {
        let names: Vec<String> = self.cols.iter().map(|c| format!("`{}`", c.name)).collect();
        let tuples: Vec<String> = rows
            .iter()
            .map(|(keys, set)| {
                let mut keys = keys.iter();
                let vals: Vec<&str> = self
                    .cols
                    .iter()
                    .map(|c| {
                        if c.key {
                            keys.next().expect("a value per key column")
                        } else {
                            c.value(*set)
                        }
                    })
                    .collect();
                format!("({})", vals.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.sql_name(),
            names.join(", "),
            tuples.join(", ")
        )
    }

    /// `UPDATE` setting every non-key column to `set` where `filter`.
    pub fn update_sql(&self, set: Set, filter: &str) -> String {
        let assigns: Vec<String> = self
            .cols
            .iter()
            .filter(|c| !c.key)
            .map(|c| format!("`{}` = {}", c.name, c.value(set)))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {filter}",
            self.sql_name(),
            assigns.join(", ")
        )
    }

    fn select_sql(&self, filter: &str) -> String {
        let exprs: Vec<String> = self.cols.iter().map(Col::select_expr).collect();
        let order: Vec<String> = if self.pk.is_empty() {
            self.cols.iter().map(|c| format!("`{}`", c.name)).collect()
        } else {
            self.pk.iter().map(|k| format!("`{k}`")).collect()
        };
        format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {}",
            exprs.join(", "),
            self.sql_name(),
            order.join(", ")
        )
    }

    /// Adds `col` after the column `after`.
    pub fn add_col_after(&mut self, after: &str, col: Col) {
        let i = self
            .cols
            .iter()
            .position(|c| c.name == after)
            .expect("column exists");
        self.cols.insert(i + 1, col);
    }

    pub fn drop_col(&mut self, name: &str) {
        self.cols.retain(|c| c.name != name);
    }
}

/// One expected message of a table's topic.
#[derive(Debug, Clone)]
pub enum Expect {
    Row {
        kind: &'static str,
        /// Column names and kinds at the time of the change, in table order.
        cols: Vec<(String, Kind)>,
        pk: Vec<String>,
        before: Option<Map<String, Value>>,
        after: Option<Map<String, Value>>,
    },
    Ddl {
        sql: String,
    },
}

/// Runs changes on one session and records the messages they must produce.
pub struct Recorder {
    conn: mysql_async::Conn,
    expected: HashMap<String, Vec<Expect>>,
}

impl Recorder {
    /// A session that allows zero dates and inserts TIMESTAMPs in +05:30
    /// (so that the UTC conversion shows).
    pub async fn connect(stack: &Stack) -> Recorder {
        Recorder::with_conn(stack.conn().await).await
    }

    /// [`Recorder::connect`] on a session of another server.
    pub async fn with_conn(conn: mysql_async::Conn) -> Recorder {
        let mut r = Recorder {
            conn,
            expected: HashMap::new(),
        };
        r.exec("SET SESSION sql_mode = '', SESSION time_zone = '+05:30', NAMES utf8mb4")
            .await;
        r
    }

    pub async fn exec(&mut self, sql: &str) {
        if let Err(e) = self.conn.query_drop(sql).await {
            panic!("SQL failed: {e}\n  statement: {}", shorten(sql, 2000));
        }
    }

    /// The rows of `t` matching `filter`, rendered, in key order.
    pub async fn rows(&mut self, t: &TableSpec, filter: &str) -> Vec<Map<String, Value>> {
        let sql = t.select_sql(filter);
        let rows: Vec<mysql_async::Row> = self
            .conn
            .query(&sql)
            .await
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n  query: {}", shorten(&sql, 2000)));
        rows.into_iter()
            .map(|row| {
                let values = row.unwrap();
                t.cols
                    .iter()
                    .zip(values)
                    .map(|(c, v)| {
                        let raw = match v {
                            mysql_async::Value::NULL => None,
                            mysql_async::Value::Bytes(b) => Some(b),
                            other => panic!("text protocol gave {other:?} for {}", c.name),
                        };
                        (c.name.clone(), render(c.kind, raw.as_deref()))
                    })
                    .collect()
            })
            .collect()
    }

    fn push(&mut self, t: &TableSpec, e: Expect) {
        self.expected.entry(t.name.clone()).or_default().push(e);
    }

    fn push_rows(
        &mut self,
        t: &TableSpec,
        kind: &'static str,
        before: Vec<Map<String, Value>>,
        after: Vec<Map<String, Value>>,
    ) {
        let cols: Vec<(String, Kind)> = t.cols.iter().map(|c| (c.name.clone(), c.kind)).collect();
        let n = before.len().max(after.len());
        let (mut before, mut after) = (before.into_iter(), after.into_iter());
        for _ in 0..n {
            self.push(
                t,
                Expect::Row {
                    kind,
                    cols: cols.clone(),
                    pk: t.pk.clone(),
                    before: before.next(),
                    after: after.next(),
                },
            );
        }
    }

    /// Runs a table DDL statement; expects a `ddl` message carrying it.
    pub async fn ddl(&mut self, t: &TableSpec, sql: &str) {
        self.exec(sql).await;
        self.push(t, Expect::Ddl { sql: sql.into() });
    }

    /// Runs an INSERT; the new rows are those matching `after`.
    pub async fn insert(&mut self, t: &TableSpec, sql: &str, after: &str) {
        self.exec(sql).await;
        let rows = self.rows(t, after).await;
        assert!(
            !rows.is_empty(),
            "insert changed no row: {}",
            shorten(sql, 300)
        );
        self.push_rows(t, "insert", Vec::new(), rows);
    }

    /// Runs an INSERT before the task starts: its rows (those matching
    /// `after`) are expected as snapshot `read` messages.
    pub async fn existing(&mut self, t: &TableSpec, sql: &str, after: &str) {
        self.exec(sql).await;
        let rows = self.rows(t, after).await;
        assert!(
            !rows.is_empty(),
            "insert added no row: {}",
            shorten(sql, 300)
        );
        self.push_rows(t, "read", Vec::new(), rows);
    }

    /// Runs an UPDATE; the rows match `before` before it and `after` after
    /// it, in the same (key) order.
    pub async fn update(&mut self, t: &TableSpec, sql: &str, before: &str, after: &str) {
        let old = self.rows(t, before).await;
        self.exec(sql).await;
        let new = self.rows(t, after).await;
        assert_eq!(old.len(), new.len(), "update: {}", shorten(sql, 300));
        assert!(
            !old.is_empty(),
            "update changed no row: {}",
            shorten(sql, 300)
        );
        self.push_rows(t, "update", old, new);
    }

    /// Runs a DELETE of the rows matching `before`.
    pub async fn delete(&mut self, t: &TableSpec, sql: &str, before: &str) {
        let old = self.rows(t, before).await;
        assert!(!old.is_empty(), "delete of no row: {sql}");
        self.exec(sql).await;
        self.push_rows(t, "delete", old, Vec::new());
    }

    /// Creates `types` with rows 101, 102, 103 (sets A, B, C) and 104
    /// (NULLs), recorded as rows that exist before the task starts (the
    /// format tests' snapshot rows).
    pub async fn existing_type_rows(&mut self, types: &TableSpec) {
        self.exec(&types.create_sql()).await;
        let sql = types.insert_sql(&[
            (&["101"], Set::A),
            (&["102"], Set::B),
            (&["103"], Set::C),
            (&["104"], Set::Null),
        ]);
        self.existing(types, &sql, "id IN (101, 102, 103, 104)")
            .await;
    }

    /// The stream's changes of rows 101 and 102 of the snapshot of `types`
    /// (the format tests): 101 updated to set C, 102 deleted.
    pub async fn change_snapshot_rows(&mut self, types: &TableSpec) {
        let tq = types.sql_name();
        let sql = types.update_sql(Set::C, "id = 101");
        self.update(types, &sql, "id = 101", "id = 101").await;
        let sql = format!("DELETE FROM {tq} WHERE id = 102");
        self.delete(types, &sql, "id = 102").await;
    }

    /// The type-matrix changes every type and format test runs on `types`:
    /// rows 1, 2, 3 inserted (one statement, sets A, B, C) and 4 (NULLs),
    /// 1 and 4 updated to other sets, 3's key changed to 30, then 2 and 30
    /// set to NULLs (one statement).
    pub async fn type_matrix_changes(&mut self, types: &TableSpec) {
        let tq = types.sql_name();
        let (a, b, c, null) = (Set::A, Set::B, Set::C, Set::Null);
        let sql = types.insert_sql(&[(&["1"], a), (&["2"], b), (&["3"], c)]);
        self.insert(types, &sql, "id IN (1, 2, 3)").await;
        self.insert(types, &types.insert_sql(&[(&["4"], null)]), "id = 4")
            .await;
        self.update(types, &types.update_sql(c, "id = 1"), "id = 1", "id = 1")
            .await;
        self.update(types, &types.update_sql(a, "id = 4"), "id = 4", "id = 4")
            .await;
        let sql = format!("UPDATE {tq} SET id = 30 WHERE id = 3");
        self.update(types, &sql, "id = 3", "id = 30").await;
        let sql = types.update_sql(null, "id IN (2, 30)");
        self.update(types, &sql, "id IN (2, 30)", "id IN (2, 30)")
            .await;
    }

    /// The messages recorded for `table`, in binlog order.
    pub fn expected(&self, table: &str) -> &[Expect] {
        self.expected.get(table).map_or(&[], Vec::as_slice)
    }
}
