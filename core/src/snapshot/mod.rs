//! Snapshots: a consistent copy of the rows that exist already, merged into
//! the stream without locks, exactly once, resumable (issue 16;
//! `docs/snapshots.md` is the user's guide).
//!
//! Flow in: the snapshot progress of the context (a new task with
//! `source.snapshot` other than `never` gets a [`plan`]: every included base
//! table, in name order). A [`reader::Reader`] task reads the tables in
//! primary-key chunks, each consistent at an exact binlog position `L`.
//! Flow out: `read` messages (after image only, keyed and partitioned like
//! the stream), emitted by [`SnapshotRun::emit`] from the event loop at a
//! transaction boundary `B >= L` of the stream, leaving out every key the
//! stream changed at or after `L` ([`merge`]). `L` is the read view's exact
//! position on MariaDB (`binlog_snapshot_file/position`); under watermarks
//! (MySQL, or `source.snapshot_method: watermark`) it is the LOW watermark
//! row the stream sees, and `B` is past the HIGH one ([`watermark`]).
//!
//! Positions: a snapshot row's position is `B` plus the chunk's sequence
//! number and its row in the chunk (`file:pos:s<chunk>.<row>`), ordering it
//! after every message of the transactions before `B` and before the
//! transaction that starts at `B`. Its raw key travels in a header.
//!
//! Pipelining: the reader reads ahead (see [`reader`]), and up to two
//! chunks of one table are emitted before Kafka acknowledged the first
//! ([`inflight`]). The stream takes no binlog event while a chunk is
//! unacknowledged, or acknowledged but not yet in the context; the context
//! is written with the acknowledged checkpoint after the next chunk went
//! out (off the critical path), and before the first chunk of another table
//! goes out every chunk before it is acknowledged and in the context.
//!
//! Resume: the context names a complete chunk `C` (the last one whose rows
//! and everything before them Kafka acknowledged), and any rows in Kafka
//! beyond it belong to chunks `C+1, C+2, ...` of the same table as `C+1`
//! (another table's chunk waits for a context naming every chunk before).
//! Those chunks were read one after the other from `C`'s last key, so each
//! partition received their rows in key order, and since the stream sent
//! nothing while they were in flight, a partition's last message is its
//! last snapshot row: every row of those chunks routed to that partition up
//! to that key arrived, none after it. The new run reads from `C`'s last
//! key again (the chunks may now hold other rows) and, in every chunk until
//! one ends past every mark ([`reader::Chunk::passes_marks`]), leaves out
//! per partition the rows whose key is at or before the key found in that
//! partition's tail (compared by the source in SQL, so collations and types
//! compare as the chunk order does). A row left out that the earlier run
//! did not send was changed or inserted by the stream after that run's read
//! view, and the stream (replayed from the context's position, duplicates
//! removed by position) carries it. So this holds for any number of chunks
//! of one table in flight; two bound the rows in the producer.
//!
//! Failure: reading errors come through the reader (transient: the run
//! restarts from its context at the same chunk; definite: the task stops
//! with the error in its instance node). A table dropped during the copy is
//! finished empty (the stream carries the DROP). A table without a usable
//! key is read in one consistent read, streamed in pieces at the same
//! position (`mode: single_read` in the progress); a run that stops during
//! it reads that table again from its start.

pub mod inflight;
pub mod merge;
pub mod reader;
pub mod render;
pub mod watermark;

use crate::error::{ConfigError, DataError, DefiniteError, PreflightError, TaskError};
use crate::lease::Lease;
use crate::pipeline::format::{self, KeyOut, SnapshotMark, TaskFormat};
use crate::pipeline::message::{self, ChangeType};
use crate::pipeline::route::Router;
use crate::pipeline::txn::TxnCursor;
use crate::progress::{Checkpoint, ContextWriter};
use crate::sink::dedupe::PosRef;
use crate::sink::tracker::Tracker;
use crate::sink::KafkaSink;
use crate::source::{self, StartAt};
use inflight::InFlight;
use merge::Changes;
use mysql_async::prelude::Queryable;
use reader::{Chunk, Reader, ReaderSpec};
use replicator_common::config::{NamedStart, StartPosition, TaskConfig};
use replicator_common::nodes::{CopyMode, SnapshotProgress, SnapshotTable};
use replicator_common::position::BinlogPos;
use std::collections::HashMap;
use std::sync::Arc;
use watermark::Watermarks;

/// Schemas never copied.
const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// The snapshot of a new task: every included base table, in name order,
/// with the source's row estimate.
pub async fn plan(
    conn: &mut mysql_async::Conn,
    router: &Router,
) -> Result<SnapshotProgress, TaskError> {
    let rows: Vec<(String, String, Option<u64>)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await?;
    let tables = rows
        .into_iter()
        // (the router refuses the watermark signal table)
        .filter(|(db, t, _)| !SYSTEM_SCHEMAS.contains(&db.as_str()) && router.accepts(db, t))
        .map(|(database, table, estimate)| SnapshotTable {
            database,
            table,
            done: false,
            last_key: None,
            rows: 0,
            estimate: estimate.unwrap_or(0),
            skipped: None,
            mode: None,
        })
        .collect();
    Ok(SnapshotProgress {
        tables,
        next_chunk: 0,
        rows: 0,
        started_ms: replicator_common::now_ms(),
        request: 0,
    })
}

/// Fills in the row estimate of tables not copied yet that have none.
pub async fn estimate(
    conn: &mut mysql_async::Conn,
    progress: &mut SnapshotProgress,
) -> Result<(), TaskError> {
    for t in progress
        .tables
        .iter_mut()
        .filter(|t| !t.done && t.estimate == 0)
    {
        let rows: Option<Option<u64>> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.database, &t.table),
            )
            .await?;
        t.estimate = rows.flatten().unwrap_or(0);
    }
    Ok(())
}

/// Server errors of a `SELECT` the user may not run (table, column).
const DENIED: &[u16] = &[1142, 1143];

/// Preflight before copying: every table still to copy must be readable by
/// the source user. Returns a definite error naming every table whose
/// `SELECT` is denied (a table gone since it was planned is left to the
/// reader, which finishes it as gone).
pub async fn preflight(
    conn: &mut mysql_async::Conn,
    user: &str,
    progress: &SnapshotProgress,
) -> Result<(), TaskError> {
    let mut denied = Vec::new();
    for t in progress.tables.iter().filter(|t| !t.done) {
        let sql = format!(
            "SELECT 1 FROM `{}`.`{}` LIMIT 0",
            t.database.replace('`', "``"),
            t.table.replace('`', "``")
        );
        match conn.query_drop(sql).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(e)) if DENIED.contains(&e.code) => {
                denied.push(format!("{}.{}", t.database, t.table));
            }
            Err(mysql_async::Error::Server(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if denied.is_empty() {
        return Ok(());
    }
    Err(PreflightError::SnapshotSelect {
        user: user.to_string(),
        tables: denied,
    }
    .into())
}

/// `when_needed` after a purged binlog: writes a context at the source's
/// current position with a snapshot of every included table (nothing after
/// it was sent by the failed run).
pub async fn restart_with_snapshot(
    cfg: &TaskConfig,
    password: Option<&replicator_common::secret::Secret>,
    router: &Router,
    writer: &mut ContextWriter,
    start: &Checkpoint,
) -> Result<BinlogPos, TaskError> {
    let mut conn = source::connect(&cfg.source, password).await?;
    let at =
        match source::resolve_start(&mut conn, &StartPosition::Named(NamedStart::Current)).await? {
            StartAt::File(p) => p,
            StartAt::Gtid(g) => {
                return Err(DefiniteError::Config(ConfigError::SnapshotAtGtid(g)).into())
            }
        };
    let plan = plan(&mut conn, router).await?;
    let cp = Checkpoint {
        pos: at.clone(),
        gtid: None,
        event_ts_ms: 0,
        events: start.events,
        snapshot: Some(Arc::new(plan)),
    };
    writer.write(&cp, false, true).await?;
    Ok(at)
}

/// The snapshot part of a running pipeline.
pub struct SnapshotRun {
    task: String,
    reader: Option<Reader>,
    pending: Option<Chunk>,
    /// Chunks emitted and not yet acknowledged (or not yet in the context).
    in_flight: InFlight,
    progress: SnapshotProgress,
    changes: Changes,
    /// For each partition with a tail mark, the mark's index; rows are
    /// checked against them until a chunk goes past every mark
    /// ([`Chunk::passes_marks`]).
    marks: HashMap<i32, usize>,
    /// The task's message format: snapshot rows are rendered by the same
    /// format code as stream rows.
    format: TaskFormat,
    msg: Vec<u8>,
    key: Vec<u8>,
    logged_done: bool,
    /// The watermarks the stream saw (watermark snapshots only).
    watermarks: Option<Watermarks>,
    /// When the last chunk's emission ended (for the per-chunk timings).
    emitted_at: Option<std::time::Instant>,
}

impl SnapshotRun {
    /// Starts reading where `progress` says. `marks` are the tail marks of
    /// chunk `progress.next_chunk` (partition, raw key), empty after a clean
    /// stop.
    pub fn start(
        format: TaskFormat,
        mut spec: ReaderSpec,
        marks: Vec<(i32, String)>,
    ) -> SnapshotRun {
        let task = format.task.clone();
        let progress = spec.progress.clone();
        let watermarks = spec.watermark.as_deref().map(Watermarks::new);
        spec.marks = marks.iter().map(|(_, k)| k.clone()).collect();
        let by_partition = marks
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect();
        tracing::info!(task = %task, tables = progress.remaining(), next_chunk = progress.next_chunk,
            marks = marks.len(), "snapshot reading starts");
        SnapshotRun {
            task: task.to_string(),
            reader: Some(Reader::spawn(spec)),
            pending: None,
            in_flight: InFlight::default(),
            progress,
            changes: Changes::default(),
            marks: by_partition,
            format,
            msg: Vec::with_capacity(1024),
            key: Vec::with_capacity(64),
            logged_done: false,
            watermarks,
            emitted_at: None,
        }
    }

    /// True when the stream's changes of `db`.`table` must be remembered.
    pub fn covers(&self, db: &str, table: &str) -> bool {
        self.progress
            .tables
            .iter()
            .any(|t| !t.done && t.database == db && t.table == table)
    }

    /// The stream changed a row from key `before` to key `after` in the
    /// transaction starting at `at` (see [`Changes::record_row`]).
    pub fn record(
        &mut self,
        db: &str,
        table: &str,
        before: Option<&[u8]>,
        after: Option<&[u8]>,
        file: &str,
        at: u64,
    ) {
        self.changes
            .record_row(db, table, before, after, &BinlogPos::new(file, at));
    }

    /// A row of the watermark signal table, written by the transaction
    /// starting at `file`:`at` (see [`watermark::Watermarks::observe`]).
    pub fn signal(&mut self, task: &str, mark: &str, file: &str, at: u64) {
        if let Some(w) = self.watermarks.as_mut() {
            let at = BinlogPos::new(file, at);
            tracing::debug!(task = %self.task, signal_task = %task, mark = %mark, at = %at,
                "snapshot watermark seen");
            w.observe(task, mark, &at);
        }
    }

    /// True when the next chunk may be taken from the reader.
    pub fn wants_chunk(&self) -> bool {
        self.reader.is_some() && self.pending.is_none()
    }

    /// The next chunk of the reader (pending forever when there is none).
    pub async fn next_chunk(&mut self) -> Option<Result<Chunk, TaskError>> {
        match self.reader.as_mut() {
            Some(r) => r.next().await,
            None => std::future::pending().await,
        }
    }

    /// Takes what [`Self::next_chunk`] gave.
    pub fn received(&mut self, chunk: Option<Result<Chunk, TaskError>>) -> Result<(), TaskError> {
        match chunk {
            None => {
                self.reader = None;
                Ok(())
            }
            Some(Err(e)) => Err(e),
            Some(Ok(c)) => {
                self.pending = Some(c);
                Ok(())
            }
        }
    }

    /// True while the stream must wait: a chunk is unacknowledged, or
    /// acknowledged and not yet in the context (see the module doc).
    pub fn awaiting(&self) -> bool {
        self.in_flight.holds_stream()
    }

    /// Takes in the acknowledged checkpoint `acked`. Returns true when it
    /// acknowledged a chunk in flight: the caller writes the context with
    /// it, then calls [`Self::written`].
    pub fn acked(&mut self, acked: &Checkpoint) -> bool {
        let next = acked.snapshot.as_ref().map_or(0, |s| s.next_chunk);
        let in_flight = self.in_flight.len();
        let moved = self.in_flight.acked_before(next);
        if moved {
            if let Some(at) = self.emitted_at {
                tracing::debug!(task = %self.task, chunk = next.saturating_sub(1),
                    in_flight = in_flight, ack_ms = at.elapsed().as_millis() as u64,
                    "snapshot chunk acknowledged");
            }
        }
        moved
    }

    /// The context was written with the checkpoint of the last
    /// [`Self::acked`] (which took `write`).
    pub fn written(&mut self, write: std::time::Duration) {
        self.in_flight.written();
        tracing::debug!(task = %self.task, write_ms = write.as_millis() as u64,
            "snapshot chunk context written");
        if self.in_flight.is_empty() && self.progress.remaining() == 0 && !self.logged_done {
            self.logged_done = true;
            let took = replicator_common::now_ms() - self.progress.started_ms;
            tracing::info!(task = %self.task, rows = self.progress.rows, took_ms = took,
                tables = self.progress.tables.len(), "snapshot done");
        }
    }

    /// Progress as emitted so far.
    pub fn progress(&self) -> &SnapshotProgress {
        &self.progress
    }

    /// True when a pending chunk may be emitted at the cursor's boundary.
    pub fn ready(&self, cursor: &TxnCursor) -> Result<bool, TaskError> {
        if let Some(w) = &self.watermarks {
            w.check_probe(&cursor.last().pos)?;
        }
        if cursor.in_txn() {
            return Ok(false);
        }
        let Some(c) = &self.pending else {
            return Ok(false);
        };
        if !self.in_flight.may_emit(c.table) {
            return Ok(false);
        }
        if c.skipped.is_some() {
            return Ok(true);
        }
        if cursor.last().pos.file.is_empty() {
            // Started from a GTID: the file is known from the first commit on.
            return Ok(false);
        }
        let against = |source| {
            DefiniteError::Decode(DataError::Position {
                what: "snapshot position against the stream",
                source,
            })
        };
        match (c.watermark, &self.watermarks) {
            (Some(m), Some(w)) => Ok(w.ready(m, &cursor.last().pos).map_err(against)?.is_some()),
            _ => merge::ready(&cursor.last().pos, &c.at).map_err(|e| against(e).into()),
        }
    }

    /// Emits the pending chunk at the cursor's boundary (see the module doc).
    pub async fn emit(
        &mut self,
        sink: &mut KafkaSink,
        tracker: &Tracker,
        cursor: &mut TxnCursor,
        router: &Router,
        lease: &Lease,
    ) -> Result<(), TaskError> {
        let Some(mut chunk) = self.pending.take() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        if let (Some(m), Some(w)) = (chunk.watermark, self.watermarks.as_mut()) {
            // its read position is where the stream saw its LOW watermark
            match w.ready(m, &cursor.last().pos) {
                Ok(Some(low)) => chunk.at = low,
                _ => {
                    self.pending = Some(chunk);
                    return Ok(());
                }
            }
            w.emitted(m.n);
        }
        let (db, name) = {
            let t = &self.progress.tables[chunk.table];
            (t.database.clone(), t.table.clone())
        };
        let topic = router.route(&db, &name).map(Arc::<str>::from);
        let boundary = cursor.last().clone();
        let slot = tracker.begin();
        let mut delivered = 0u64;
        if let Some(reason) = &chunk.skipped {
            tracing::warn!(task = %self.task, database = %db, table = %name, reason = %reason,
                "table not copied by the snapshot");
        } else if let (Some(topic), Some(def)) = (&topic, &chunk.def) {
            sink.prepare_topic(topic).await?;
            let table = self.format.table(def);
            let gtid = boundary.gtid.as_ref().map(ToString::to_string);
            let position =
                message::position_prefix(&boundary.pos.file, boundary.pos.pos, gtid.as_deref());
            let ts_ms = replicator_common::now_ms();
            let check_marks = !self.marks.is_empty();
            // rows the stream changed since the read view are left out (it
            // sends them); the first and last rows written get the marks
            let mut keep = Vec::with_capacity(chunk.rows.len());
            let merging = self.changes.has_table(&db, &name);
            for (i, row) in chunk.rows.iter().enumerate() {
                let changed = merging
                    && self
                        .changes
                        .changed_since(&db, &name, &row.key, &chunk.at)
                        .map_err(|source| {
                            DefiniteError::Decode(DataError::Position {
                                what: "snapshot merge",
                                source,
                            })
                        })?;
                if !changed {
                    keep.push(i);
                }
            }
            let t = &self.progress.tables[chunk.table];
            let first_row = t.rows == 0 && t.last_key.is_none();
            let last_table = chunk.table + 1 == self.progress.tables.len();
            for (n, &i) in keep.iter().enumerate() {
                let row = &chunk.rows[i];
                if !lease.is_valid() {
                    return Err(TaskError::LeaseLost);
                }
                let mark = SnapshotMark::of(
                    chunk.table == 0,
                    last_table,
                    first_row && n == 0,
                    chunk.done && n + 1 == keep.len(),
                );
                let change = format::RowChange {
                    kind: ChangeType::Read,
                    ts_ms,
                    server_id: 0,
                    txn: format::Txn {
                        file: &boundary.pos.file,
                        pos: boundary.pos.pos,
                        gtid: gtid.as_deref(),
                        json_position: &position,
                    },
                    row: i as u64,
                    key: &row.key,
                    before: None,
                    after: Some(&row.after),
                    order: None,
                    snapshot: mark,
                };
                let key = match table
                    .row(&mut self.msg, &mut self.key, &change)
                    .map_err(|e| DefiniteError::Decode(DataError::row(&db, &name, e)))?
                {
                    KeyOut::Row => Some(row.key.as_slice()),
                    KeyOut::Written => Some(self.key.as_slice()),
                    KeyOut::Null => None,
                };
                if check_marks {
                    let mark = sink
                        .partition_of(topic, key)
                        .and_then(|p| self.marks.get(&p));
                    if mark.is_some_and(|&m| row.at_or_before_mark & (1 << m) != 0) {
                        sink.count_skipped();
                        delivered += 1;
                        continue;
                    }
                }
                let pos = PosRef {
                    file: &boundary.pos.file,
                    pos: boundary.pos.pos,
                    row: i as u64,
                    gtid: None,
                    chunk: Some(chunk.seq),
                };
                sink.send_snapshot_row(topic, key, &self.msg, pos, slot, &row.raw_key)
                    .await?;
                delivered += 1;
            }
        }
        if chunk.passes_marks() {
            self.marks.clear();
        }
        let t = &mut self.progress.tables[chunk.table];
        t.rows += delivered;
        t.last_key = chunk.last_key.clone();
        t.done = chunk.done || topic.is_none();
        if chunk.skipped.is_some() {
            t.skipped = chunk.skipped.clone();
        }
        if chunk.single_read {
            t.mode = Some(CopyMode::SingleRead);
        }
        self.progress.rows += delivered;
        self.progress.next_chunk = chunk.seq + 1;
        if !chunk.at.file.is_empty() {
            self.changes.prune(&chunk.at);
        }
        crate::metrics::record_snapshot(&self.task, &self.progress);
        tracing::debug!(task = %self.task, database = %db, table = %name, chunk = chunk.seq,
            rows = delivered, read = chunk.rows.len(), at = %chunk.at, boundary = %boundary.pos,
            emit_ms = started.elapsed().as_millis() as u64, "snapshot chunk emitted");
        self.emitted_at = Some(std::time::Instant::now());
        cursor.set_snapshot(Some(Arc::new(self.progress.clone())));
        tracker.end(slot, cursor.last().clone());
        self.in_flight.emitted(chunk.seq, chunk.table);
        Ok(())
    }
}
