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
//! taken and no table is written. Under watermarks
//! ([`super::watermark`], MySQL or `snapshot_method: watermark`) a chunk is
//! instead a LOW watermark write, a plain `SELECT` and a HIGH watermark
//! write, and its position `L` is found by the stream. Rows are rendered as
//! they arrive; the table's description for the next chunk is read meanwhile
//! on a second connection (still before that chunk's transaction begins).
//!
//! Failures: a table that no longer exists gives a chunk marked `gone` (the
//! snapshot moves on; the stream carries the DROP); a table without a
//! primary key nor a unique NOT NULL key is `skipped` with the reason;
//! server errors that may pass (lock wait, deadlock, a column that changed
//! under an ALTER, a lost connection) are retried with a capped backoff,
//! then reported as a transient error (the run restarts from its context
//! and resumes at the same chunk); missing privileges are definite.

use super::render::{self, ColKind, Rendered, SnapColumn};
use super::watermark::{ChunkMark, Edge, Signal};
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
    /// Raw keys (JSON) of the last snapshot rows of chunks from
    /// `progress.next_chunk` on that the topic tails show delivered (after
    /// an unclean stop): each row of the chunks read from there gets a flag
    /// per mark telling whether its key is at or before it, until a chunk
    /// goes past every mark ([`Chunk::passes_marks`]).
    pub marks: Vec<String>,
    /// The signal table of a watermark snapshot (`None`: MariaDB's
    /// consistent snapshot).
    pub watermark: Option<Arc<Signal>>,
}

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
    /// The read position `L` (under watermarks: empty until the stream saw
    /// the LOW watermark of `watermark`).
    pub at: BinlogPos,
    /// The watermarks the chunk waits for (watermark snapshots only).
    pub watermark: Option<ChunkMark>,
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

impl Chunk {
    /// True when no chunk after this one can hold a row at or before a
    /// tail mark: the table ends here, or this chunk's last row (the
    /// greatest key) is after every mark. Rows of chunks read without
    /// marks carry no flags, so this holds for them.
    pub fn passes_marks(&self) -> bool {
        self.done || self.rows.last().is_none_or(|r| r.at_or_before_mark == 0)
    }
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
    let mut spec_conn = None;
    let mut seq = spec.progress.next_chunk;
    // the tail marks apply from the first chunk until one passes them all
    let mut marking = !spec.marks.is_empty();
    for (index, t) in spec.progress.tables.iter().enumerate() {
        if t.done {
            continue;
        }
        let mut last = t.last_key.clone();
        let mut prefetched = None;
        loop {
            let marks: &[String] = if marking { &spec.marks } else { &[] };
            // the next chunk's table description is read on a second
            // connection while this chunk is read (still before the next
            // chunk's transaction begins)
            let (chunk, next) = tokio::join!(
                read_with_retries(
                    &spec,
                    &mut conn,
                    &t.database,
                    &t.table,
                    last.as_ref(),
                    marks,
                    prefetched.take(),
                ),
                prefetch(&spec, &mut spec_conn, &t.database, &t.table),
            );
            prefetched = next;
            let chunk = chunk?;
            let chunk = match chunk {
                Read::Chunk(c) => c,
                Read::Unkeyed(spec_t) => {
                    marking = false;
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
            marking &= !chunk.passes_marks();
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

/// The description of `db`.`table` read on `conn` (opened on first use),
/// for the next chunk; `None` when that fails (the chunk then reads it
/// itself, and its errors count there).
async fn prefetch(
    spec: &ReaderSpec,
    conn: &mut Option<Conn>,
    db: &str,
    table: &str,
) -> Option<Result<TableSpec, NotCopied>> {
    if conn.is_none() {
        *conn = open(spec).await.ok();
    }
    let c = conn.as_mut()?;
    match table_spec(c, db, table).await {
        Ok(t) => Some(t),
        Err(_) => {
            *conn = None;
            None
        }
    }
}

async fn read_with_retries(
    spec: &ReaderSpec,
    conn: &mut Conn,
    db: &str,
    table: &str,
    after: Option<&Vec<RawValue>>,
    marks: &[String],
    mut prefetched: Option<Result<TableSpec, NotCopied>>,
) -> Result<Read, TaskError> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        // a retry reads the table's description afresh
        match read_chunk(spec, conn, db, table, after, marks, prefetched.take()).await {
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
        match classify_mysql(e) {
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

async fn read_chunk(
    spec: &ReaderSpec,
    conn: &mut Conn,
    db: &str,
    table: &str,
    after: Option<&Vec<RawValue>>,
    marks: &[String],
    prefetched: Option<Result<TableSpec, NotCopied>>,
) -> Result<Read, Failure> {
    let began = std::time::Instant::now();
    let t = match prefetched {
        Some(t) => t,
        None => table_spec(conn, db, table).await?,
    };
    let t = match t {
        Ok(t) if t.order_cols.is_empty() => return Ok(Read::Unkeyed(t)),
        Ok(t) => t,
        Err(reason) => {
            return Ok(Read::Chunk(Chunk {
                seq: 0,
                table: 0,
                at: BinlogPos::new("", 0),
                watermark: None,
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

    let queried = std::time::Instant::now();
    let (at, watermark) = match &spec.watermark {
        None => (begin(conn).await?, None),
        // LOW committed, then a plain SELECT (its own read view)
        Some(signal) => (BinlogPos::new("", 0), Some(low(signal, conn, true).await?)),
    };
    // rows are rendered as they arrive, overlapping the server's sending
    let read = read_rows(spec, conn, &t, &sql, params, mark_count).await;
    let _ = conn.query_drop("COMMIT").await;
    let (out, more) = read.map_err(|e| match e {
        ReadFailure::Server(e) => Failure::from(e),
        ReadFailure::Render(e) => {
            Failure::Definite(DefiniteError::Decode(DataError::row(db, table, e)).into())
        }
    })?;
    if let (Some(signal), Some(m)) = (&spec.watermark, watermark) {
        signal.write(conn, m.n, Edge::High).await?;
    }
    let last_key = match out.last() {
        Some(row) => Some(serde_json::from_slice(&row.raw_key).map_err(|e| {
            Failure::Definite(
                DefiniteError::Decode(DataError::SnapshotKey {
                    key: String::from_utf8_lossy(&row.raw_key).into_owned(),
                    source: Box::new(e),
                })
                .into(),
            )
        })?),
        None => None,
    };
    tracing::debug!(database = %db, table = %table, rows = out.len(),
        spec_ms = (queried - began).as_millis() as u64,
        query_ms = queried.elapsed().as_millis() as u64, "snapshot chunk read");
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
        watermark,
        rows: out,
        last_key: last_key.or_else(|| after.cloned()),
        done,
        skipped: None,
        key_names,
        single_read: false,
        def: Some(t.table.clone()),
    }))
}

/// Writes the LOW watermark of a new number (committed), for a chunk that
/// will have a HIGH watermark (`high`) or not.
async fn low(signal: &Signal, conn: &mut Conn, high: bool) -> Result<ChunkMark, Failure> {
    let n = signal.next();
    signal.write(conn, n, Edge::Low).await?;
    Ok(ChunkMark { n, high })
}

/// Why [`read_rows`] stopped.
enum ReadFailure {
    Server(mysql_async::Error),
    Render(render::RenderError),
}

impl From<mysql_async::Error> for ReadFailure {
    fn from(e: mysql_async::Error) -> Self {
        ReadFailure::Server(e)
    }
}

/// Runs the chunk's `SELECT` (`chunk_rows + 1` rows at most, the table's
/// columns then one flag per mark) and renders each row as it arrives.
/// Returns the rows of the chunk and whether the table goes on.
async fn read_rows(
    spec: &ReaderSpec,
    conn: &mut Conn,
    t: &TableSpec,
    sql: &str,
    params: Vec<Value>,
    mark_count: usize,
) -> Result<(Vec<ChunkRow>, bool), ReadFailure> {
    let chunk_rows = spec.chunk_rows as usize;
    let n = t.columns.len();
    let mut out = Vec::with_capacity(chunk_rows.min(65_536));
    let mut r = Rendered::default();
    let mut more = false;
    let mut result = conn.exec_iter(sql, Params::Positional(params)).await?;
    while let Some(row) = result.next().await? {
        if out.len() == chunk_rows {
            // the extra row: the table goes on (the rest is drained below)
            more = true;
            continue;
        }
        let values = row.unwrap();
        render::render_row(
            &t.columns,
            &t.key_cols,
            &t.order_cols,
            &values[..n.min(values.len())],
            &mut r,
        )
        .map_err(ReadFailure::Render)?;
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
    }
    Ok((out, more))
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
            crate::error::PreflightError::ConsistentSnapshot.into(),
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
    let (at, watermark) = match &spec.watermark {
        None => (begin(conn).await.map_err(fail)?, None),
        // LOW committed, then the read view of the whole read
        Some(signal) => {
            let m = low(signal, conn, false).await.map_err(fail)?;
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await?;
            (BinlogPos::new("", 0), Some(m))
        }
    };
    tracing::info!(database = %db, table = %table, at = %at,
        "no primary key nor unique NOT NULL key: copying the table in one consistent read");
    let piece = |rows: Vec<ChunkRow>, seq: u64, done: bool| Chunk {
        seq,
        table: index,
        at: at.clone(),
        watermark,
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

    fn chunk(flags: &[u64], done: bool) -> Chunk {
        Chunk {
            seq: 0,
            table: 0,
            at: BinlogPos::new("b.000001", 4),
            watermark: None,
            rows: flags
                .iter()
                .map(|&f| ChunkRow {
                    key: Vec::new(),
                    after: Vec::new(),
                    raw_key: Vec::new(),
                    at_or_before_mark: f,
                })
                .collect(),
            last_key: None,
            done,
            skipped: None,
            key_names: Vec::new(),
            single_read: false,
            def: None,
        }
    }

    #[test]
    fn marks_apply_until_a_chunk_ends_past_all_of_them() {
        // the last row is at or before mark 1: the next chunk may hold more
        assert!(!chunk(&[0b11, 0b10], false).passes_marks());
        assert!(!chunk(&[0b1], false).passes_marks());
        // the last row is after every mark
        assert!(chunk(&[0b11, 0b10, 0], false).passes_marks());
        // the table ends, or the chunk is empty (the table ends too)
        assert!(chunk(&[0b1], true).passes_marks());
        assert!(chunk(&[], false).passes_marks());
        // read without marks
        assert!(chunk(&[0, 0], false).passes_marks());
    }

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
