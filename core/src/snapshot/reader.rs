//! Reads snapshot chunks from the source, off the event loop.
//!
//! Flow: a spawned task (owned by [`Reader`], aborted when it is dropped)
//! walks the tables of the snapshot progress that are not done, in order,
//! and sends one [`Chunk`] at a time through a channel of capacity one, so
//! at most three chunks exist at once (one being read, one queued, one being
//! emitted): memory is bounded by the chunk size whatever the table size.
//!
//! Each chunk is one short read-only transaction on its own connection
//! (MariaDB): `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then
//! `SHOW STATUS LIKE 'binlog_snapshot_%'` gives the binlog position `L` the
//! read view corresponds to exactly, then `SELECT .. WHERE (key) > (last)
//! ORDER BY key LIMIT n+1`, `COMMIT` (the extra row only tells whether the
//! table goes on: a table's last chunk holds its last row). No lock is
//! taken and no table is written.
//!
//! Failures: a table that no longer exists gives a chunk marked `gone` (the
//! snapshot moves on; the stream carries the DROP); a table without a
//! primary key nor a unique NOT NULL key is `skipped` with the reason;
//! server errors that may pass (lock wait, deadlock, a column that changed
//! under an ALTER, a lost connection) are retried with a capped backoff,
//! then reported as a transient error (the run restarts from its context
//! and resumes at the same chunk); missing privileges are definite.

use super::render::{self, ColKind, Rendered, SnapColumn};
use crate::decode::Table;
use crate::error::{classify_mysql, DataError, DefiniteError, TaskError};
use crate::source;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value};
use replicator_common::config::SourceConfig;
use replicator_common::nodes::{RawValue, SnapshotProgress};
use replicator_common::position::BinlogPos;
use replicator_common::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Attempts of one chunk read before a transient error ends the run.
const ATTEMPTS: u32 = 5;

/// What to read.
#[derive(Clone)]
pub struct ReaderSpec {
    pub source: SourceConfig,
    pub password: Option<Secret>,
    pub progress: SnapshotProgress,
    pub chunk_rows: u32,
    /// Raw keys (JSON) of the last rows of chunk `progress.next_chunk` that
    /// the topic tails show delivered (after an unclean stop): each row of
    /// that chunk gets a flag per mark telling whether its key is at or
    /// before it.
    pub marks: Vec<String>,
}

/// The ordering and rendering of one table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub columns: Vec<SnapColumn>,
    /// Message key columns: the primary key, or empty (the whole row, as
    /// the stream keys tables without a primary key).
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

/// One row of a chunk.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub key: Vec<u8>,
    pub after: Vec<u8>,
    /// JSON of the raw ordering key (context and message header).
    pub raw_key: Vec<u8>,
    /// Bit `i`: the key is at or before mark `i`.
    pub at_or_before_mark: u64,
}

/// A chunk of one table, consistent at `at`.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub seq: u64,
    /// Index in `SnapshotProgress::tables`.
    pub table: usize,
    pub at: BinlogPos,
    pub rows: Vec<ChunkRow>,
    pub last_key: Option<Vec<RawValue>>,
    /// The table is finished with this chunk.
    pub done: bool,
    /// Why the table was not copied (dropped, no usable key).
    pub skipped: Option<String>,
    /// Key column names of the message (`primary_key` field).
    pub key_names: Vec<String>,
    /// A piece of a table read in one consistent read (no usable key).
    pub single_read: bool,
    /// The table's columns and primary key (`None` when skipped).
    pub def: Option<Arc<Table>>,
}

/// The reading task; dropping it stops the task.
pub struct Reader {
    rx: mpsc::Receiver<Result<Chunk, TaskError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    pub fn spawn(spec: ReaderSpec) -> Reader {
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            if let Err(e) = read_all(spec, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Reader { rx, task }
    }

    /// The next chunk; `None` once every table is read.
    pub async fn next(&mut self) -> Option<Result<Chunk, TaskError>> {
        self.rx.recv().await
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_all(
    spec: ReaderSpec,
    tx: &mpsc::Sender<Result<Chunk, TaskError>>,
) -> Result<(), TaskError> {
    let mut conn = open(&spec).await?;
    let mut seq = spec.progress.next_chunk;
    let first = seq;
    for (index, t) in spec.progress.tables.iter().enumerate() {
        if t.done {
            continue;
        }
        let mut last = t.last_key.clone();
        loop {
            let marks: &[String] = if seq == first { &spec.marks } else { &[] };
            let chunk = read_with_retries(
                &spec,
                &mut conn,
                &t.database,
                &t.table,
                last.as_ref(),
                marks,
            )
            .await?;
            let chunk = match chunk {
                Read::Chunk(c) => c,
                Read::Unkeyed(spec_t) => {
                    let more = single_read(
                        &spec,
                        &mut conn,
                        &spec_t,
                        &t.database,
                        &t.table,
                        index,
                        &mut seq,
                        tx,
                    )
                    .await?;
                    if !more {
                        return Ok(());
                    }
                    break;
                }
            };
            let done = chunk.done;
            let next = chunk.last_key.clone();
            let Ok(()) = tx
                .send(Ok(Chunk {
                    seq,
                    table: index,
                    ..chunk
                }))
                .await
                .map_err(|_| ())
            else {
                return Ok(());
            };
            seq += 1;
            if done {
                break;
            }
            // The next chunk starts after the last key read.
            last = next;
        }
    }
    Ok(())
}

async fn open(spec: &ReaderSpec) -> Result<Conn, TaskError> {
    let mut conn = source::connect(&spec.source, spec.password.as_ref()).await?;
    conn.query_drop("SET NAMES utf8mb4").await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'").await?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    Ok(conn)
}

async fn read_with_retries(
    spec: &ReaderSpec,
    conn: &mut Conn,
    db: &str,
    table: &str,
    after: Option<&Vec<RawValue>>,
    marks: &[String],
) -> Result<Read, TaskError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match read_chunk(spec, conn, db, table, after, marks).await {
            Ok(c) => return Ok(c),
            Err(Failure::Definite(e)) => return Err(e),
            Err(Failure::Retry(e)) if attempt >= ATTEMPTS => return Err(e),
            Err(Failure::Retry(e)) => {
                tracing::warn!(database = %db, table = %table, attempt, error = %e, "snapshot chunk read failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
                if conn.ping().await.is_err() {
                    *conn = open(spec).await?;
                }
            }
        }
    }
}

enum Failure {
    Retry(TaskError),
    Definite(TaskError),
}

impl From<mysql_async::Error> for Failure {
    fn from(e: mysql_async::Error) -> Self {
        match classify_mysql(&e) {
            TaskError::Definite(d) => Failure::Definite(TaskError::Definite(d)),
            other => Failure::Retry(other),
        }
    }
}

fn quote(name: &str) -> String {
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
    let pos = |c: &str| cols.iter().position(|x| x.name == c);
    let nullable = |i: usize| cols[i].nullable;
    let mut key_cols = Vec::new();
    let mut order_cols: Vec<usize> = Vec::new();
    let mut current: Option<&str> = None;
    let mut candidate: Vec<usize> = Vec::new();
    let mut ok = true;
    let mut chosen = false;
    let mut finish = |name: Option<&str>, cols: &[usize], ok: bool, chosen: &mut bool| {
        if !*chosen && ok && !cols.is_empty() {
            if name == Some("PRIMARY") {
                key_cols = cols.to_vec();
            }
            order_cols = cols.to_vec();
            *chosen = true;
        }
    };
    for (name, col, non_unique) in &index {
        if current != Some(name.as_str()) {
            finish(current, &candidate, ok, &mut chosen);
            current = Some(name.as_str());
            candidate.clear();
            ok = *non_unique == 0;
        }
        match pos(col) {
            Some(i) if !nullable(i) => candidate.push(i),
            _ => ok = false,
        }
    }
    finish(current, &candidate, ok, &mut chosen);
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

async fn read_chunk(
    spec: &ReaderSpec,
    conn: &mut Conn,
    db: &str,
    table: &str,
    after: Option<&Vec<RawValue>>,
    marks: &[String],
) -> Result<Read, Failure> {
    let t = match table_spec(conn, db, table).await? {
        Ok(t) if t.order_cols.is_empty() => return Ok(Read::Unkeyed(t)),
        Ok(t) => t,
        Err(reason) => {
            return Ok(Read::Chunk(Chunk {
                seq: 0,
                table: 0,
                at: BinlogPos::new("", 0),
                rows: Vec::new(),
                last_key: None,
                done: true,
                skipped: Some(reason.to_string()),
                key_names: Vec::new(),
                single_read: false,
                def: None,
            }))
        }
    };
    let order: Vec<String> = t
        .order_cols
        .iter()
        .map(|&i| quote(&t.columns[i].name))
        .collect();
    let order = order.join(",");
    let placeholders = t
        .order_cols
        .iter()
        .map(|&i| placeholder(t.columns[i].kind))
        .collect::<Vec<_>>()
        .join(",");
    let mut sql = String::from("SELECT ");
    sql.push_str(
        &t.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut params: Vec<Value> = Vec::new();
    let mut mark_count = 0;
    for m in marks.iter().take(64) {
        let raw: Vec<RawValue> = serde_json::from_str(m).map_err(|e| {
            Failure::Definite(
                DefiniteError::Decode(DataError::SnapshotKey {
                    key: m.to_string(),
                    source: e.into(),
                })
                .into(),
            )
        })?;
        if raw.len() != t.order_cols.len() {
            // The key shape changed (ALTER): no row can match that mark.
            continue;
        }
        sql.push_str(&format!(", (({order}) <= ({placeholders}))"));
        for (r, &i) in raw.iter().zip(&t.order_cols) {
            params.push(key_param(r, t.columns[i].kind)?);
        }
        mark_count += 1;
    }
    sql.push_str(&format!(" FROM {}.{}", quote(db), quote(table)));
    if let Some(after) = after {
        if after.len() == t.order_cols.len() {
            sql.push_str(&format!(" WHERE ({order}) > ({placeholders})"));
            for (r, &i) in after.iter().zip(&t.order_cols) {
                params.push(key_param(r, t.columns[i].kind)?);
            }
        } else {
            return Err(Failure::Definite(
                DefiniteError::Decode(DataError::KeyColumns {
                    table: format!("{db}.{table}"),
                    now: t.order_cols.len(),
                    began: after.len(),
                })
                .into(),
            ));
        }
    }
    // one row more than a chunk: whether the table goes on is known
    // exactly, so a table's last chunk is never empty unless the table is
    sql.push_str(&format!(
        " ORDER BY {order} LIMIT {}",
        u64::from(spec.chunk_rows) + 1
    ));

    let at = begin(conn).await?;
    let rows: Result<Vec<mysql_async::Row>, _> =
        conn.exec(sql.as_str(), Params::Positional(params)).await;
    let _ = conn.query_drop("COMMIT").await;
    let mut rows = rows?;
    let more = rows.len() > spec.chunk_rows as usize;
    rows.truncate(spec.chunk_rows as usize);

    let n = t.columns.len();
    let mut out = Vec::with_capacity(rows.len());
    let mut r = Rendered::default();
    let mut last_key = None;
    for row in rows {
        let values = row.unwrap();
        render::render_row(
            &t.columns,
            &t.key_cols,
            &t.order_cols,
            &values[..n.min(values.len())],
            &mut r,
        )
        .map_err(|e| {
            Failure::Definite(DefiniteError::Decode(DataError::row(db, table, e)).into())
        })?;
        let mut flags = 0u64;
        for i in 0..mark_count {
            if matches!(
                values.get(n + i),
                Some(Value::Int(1)) | Some(Value::UInt(1))
            ) {
                flags |= 1 << i;
            }
        }
        out.push(ChunkRow {
            key: r.key.clone(),
            after: r.after.clone(),
            raw_key: serde_json::to_vec(&r.raw_key).expect("raw keys serialize"),
            at_or_before_mark: flags,
        });
        last_key = Some(std::mem::take(&mut r.raw_key));
    }
    let done = !more;
    let key_names = t
        .key_cols
        .iter()
        .map(|&i| t.columns[i].name.clone())
        .collect();
    Ok(Read::Chunk(Chunk {
        seq: 0,
        table: 0,
        at,
        rows: out,
        last_key: last_key.or_else(|| after.cloned()),
        done,
        skipped: None,
        key_names,
        single_read: false,
        def: Some(t.table.clone()),
    }))
}

/// Starts a consistent-snapshot transaction and returns the binlog
/// position its read view corresponds to (MariaDB's `binlog_snapshot_*`).
async fn begin(conn: &mut Conn) -> Result<BinlogPos, Failure> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let status: Vec<(String, String)> =
        match conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await {
            Ok(s) => s,
            Err(e) => {
                let _ = conn.query_drop("ROLLBACK").await;
                return Err(e.into());
            }
        };
    let get = |n: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let (Some(file), Some(pos)) = (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
    else {
        let _ = conn.query_drop("ROLLBACK").await;
        return Err(Failure::Definite(
            DefiniteError::Preflight(
                "snapshots need MariaDB (binlog_snapshot_file/position status); \
                 use \"snapshot\": \"never\" with this server"
                    .into(),
            )
            .into(),
        ));
    };
    Ok(BinlogPos::new(file, pos.parse().unwrap_or(0)))
}

/// Reads table `index` (`db`.`table`, without a usable key) in one
/// consistent read, streamed: pieces of `chunk_rows` rows, all at the same
/// position, sent as they fill (the last one `done`). Returns `false` when
/// the receiver is gone. Nothing is retried here: a failure ends the run
/// (transient or definite as classified) and the next run reads the table
/// again from its start.
#[allow(clippy::too_many_arguments)]
async fn single_read(
    spec: &ReaderSpec,
    conn: &mut Conn,
    t: &TableSpec,
    db: &str,
    table: &str,
    index: usize,
    seq: &mut u64,
    tx: &mpsc::Sender<Result<Chunk, TaskError>>,
) -> Result<bool, TaskError> {
    let fail = |f: Failure| match f {
        Failure::Retry(e) | Failure::Definite(e) => e,
    };
    // the server waits on us while a piece waits for the stream
    conn.query_drop("SET SESSION net_write_timeout = 86400")
        .await?;
    let sql = format!(
        "SELECT {} FROM {}.{}",
        t.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(","),
        quote(db),
        quote(table)
    );
    let at = begin(conn).await.map_err(fail)?;
    tracing::info!(database = %db, table = %table, at = %at,
        "no primary key nor unique NOT NULL key: copying the table in one consistent read");
    let piece = |rows: Vec<ChunkRow>, seq: u64, done: bool| Chunk {
        seq,
        table: index,
        at: at.clone(),
        rows,
        last_key: None,
        done,
        skipped: None,
        key_names: Vec::new(),
        single_read: true,
        def: Some(t.table.clone()),
    };
    let chunk_rows = spec.chunk_rows as usize;
    let mut r = Rendered::default();
    let mut rows = Vec::with_capacity(chunk_rows.min(65_536));
    let read: Result<bool, TaskError> = async {
        let mut result = conn.exec_iter(sql.as_str(), ()).await?;
        while let Some(row) = result.next().await? {
            let values = row.unwrap();
            render::render_row(&t.columns, &t.key_cols, &t.order_cols, &values, &mut r)
                .map_err(|e| DefiniteError::Decode(DataError::row(db, table, e)))?;
            rows.push(ChunkRow {
                key: r.key.clone(),
                after: r.after.clone(),
                raw_key: b"[]".to_vec(),
                at_or_before_mark: 0,
            });
            if rows.len() == chunk_rows {
                let full = std::mem::replace(&mut rows, Vec::with_capacity(chunk_rows.min(65_536)));
                if tx.send(Ok(piece(full, *seq, false))).await.is_err() {
                    return Ok(false);
                }
                *seq += 1;
            }
        }
        Ok(true)
    }
    .await;
    let _ = conn.query_drop("COMMIT").await;
    if !read? {
        return Ok(false);
    }
    let last = piece(std::mem::take(&mut rows), *seq, true);
    if tx.send(Ok(last)).await.is_err() {
        return Ok(false);
    }
    *seq += 1;
    Ok(true)
}

/// What one read of a table gives.
enum Read {
    Chunk(Chunk),
    /// The table has no usable key: read it with [`single_read`].
    Unkeyed(TableSpec),
}

/// A placeholder for an ordering column: DECIMAL compared as DECIMAL (a
/// string parameter would compare as a double and lose digits).
fn placeholder(kind: ColKind) -> &'static str {
    match kind {
        ColKind::Decimal => "CAST(? AS DECIMAL(65,30))",
        _ => "?",
    }
}

/// A raw key value as a parameter for a column of `kind`: integers bound as
/// integers (a string would compare as a double and lose digits).
fn key_param(r: &RawValue, kind: ColKind) -> Result<Value, Failure> {
    if let (ColKind::Int, RawValue::Text(s)) = (kind, r) {
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Ok(Value::UInt(u));
        }
    }
    render::param(r).map_err(|e| {
        let key = serde_json::to_string(r).unwrap_or_default();
        Failure::Definite(
            DefiniteError::Decode(DataError::SnapshotKey {
                key,
                source: e.into(),
            })
            .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_bind_with_their_column_type() {
        assert_eq!(placeholder(ColKind::Decimal), "CAST(? AS DECIMAL(65,30))");
        assert_eq!(placeholder(ColKind::Int), "?");
        let p = |s: &str, k| match key_param(&RawValue::Text(s.into()), k) {
            Ok(v) => v,
            Err(_) => panic!("no param"),
        };
        assert_eq!(
            p("9007199254740993", ColKind::Int),
            Value::Int(9007199254740993)
        );
        assert_eq!(
            p("18446744073709551615", ColKind::Int),
            Value::UInt(u64::MAX)
        );
        assert_eq!(p("12", ColKind::Text), Value::Bytes(b"12".to_vec()));
    }
}
