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
//! Layout, one job per module:
//! - this module: what to read ([`ReaderSpec`]), what comes out ([`Chunk`]),
//!   and the task ([`Reader`]) that walks the tables, reads the next
//!   chunk's table description ahead and retries a chunk read;
//! - [`table`]: a table's description (columns, rendering, message key and
//!   chunk order);
//! - [`keyed`]: one chunk in key order after the last key read;
//! - [`single`]: a table without a usable key, in one consistent read;
//! - [`view`]: the connections and read views both kinds of read start
//!   with, and which server errors are retried.
//!
//! Failures: a table that no longer exists gives a chunk marked `gone` (the
//! snapshot moves on; the stream carries the DROP); a table without a
//! primary key nor a unique NOT NULL key is `skipped` with the reason;
//! server errors that may pass (lock wait, deadlock, a column that changed
//! under an ALTER, a lost connection) are retried with a capped backoff,
//! then reported as a transient error (the run restarts from its context
//! and resumes at the same chunk); missing privileges are definite.

mod keyed;
mod single;
mod table;
mod view;

use super::watermark::{ChunkMark, Signal};
use crate::decode::Table;
use crate::error::TaskError;
use keyed::{read_chunk, Read};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use replicator_common::config::SourceConfig;
use replicator_common::nodes::{RawValue, SnapshotProgress};
use replicator_common::position::BinlogPos;
use replicator_common::secret::Secret;
use single::single_read;
use std::sync::Arc;
use std::time::Duration;
use table::{table_spec, NotCopied, TableSpec};
use tokio::sync::mpsc;
use view::{open, Failure};

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
}
