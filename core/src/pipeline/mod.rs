//! One task's replication: binlog in, Kafka out, context committed.
//!
//! Flow: the binlog stream yields events; [`txn::TxnCursor`] tracks
//! transaction boundaries and positions; row events are decoded straight into
//! message JSON ([`message`]), rendered in the task's `sink.format`
//! ([`format`], chosen once per table) and handed to the [`KafkaSink`], which
//! removes duplicates left by an earlier writer and tracks acknowledgements.
//! Tombstones and transaction BEGIN/END events (`sink.transactions_topic`)
//! take positions of their own in their transaction, like rows; heartbeats
//! (`sink.heartbeat_ms`) go out untracked on the commit tick. Every
//! commit interval the newest fully acknowledged checkpoint is written to the
//! context (version-checked: a `BadVersion` fences this writer).
//!
//! Resume: a new run starts at the context. When the context says the last
//! writer stopped cleanly, nothing after it reached Kafka; otherwise the sink
//! fences and reads each topic's tail first and drops replayed messages
//! already there, and a graceful stop of this run is clean only once it
//! passed where the binlog ended when it began (an earlier writer may have
//! written topics this run has not reached yet).
//!
//! Source failover: the run reads the first usable server of `source.hosts`
//! ([`source::pick`]); when that is not the server of the context,
//! [`source::failover::decide`] resumes it by GTID (or stops it with a
//! definite error naming the gap), and the duplicate check orders the old
//! run's messages by GTID ([`crate::sink::dedupe`]).
//!
//! Stops: *graceful* (switchover, SIGTERM, config change, pause) finishes the
//! open transaction, flushes Kafka and writes a clean final context; *hard*
//! (fenced, lease lost) drops queued messages and returns at once.

pub mod ddl;
pub mod format;
pub mod held;
pub mod message;
pub mod route;
mod steps;
pub mod txn;

use crate::decode::{self, Event, EventHeader, Flavor, RowKind, RowOut, Table};
use crate::error::{DataError, DefiniteError, TaskError};
use crate::lease::Lease;
use crate::progress::{self, Checkpoint, ContextWriter, Stored};
use crate::sink::dedupe::PosRef;
use crate::sink::tracker::Tracker;
use crate::sink::{KafkaSink, SinkOptions};
use crate::snapshot::{self, reader::ReaderSpec, SnapshotRun};
use crate::source::{self, schema::SchemaCache, StartAt};
use format::transaction::{TxnMeta, TxnOrder};
use format::{KeyOut, TableFormat, TaskFormat};
use futures::{FutureExt, StreamExt};
use message::ChangeType;
use replicator_common::config::{NamedStart, SnapshotMode, StartPosition, TaskConfig};
use replicator_common::nodes::{SnapshotRequest, SourceServer};
use replicator_common::paths::TaskRef;
use replicator_common::position::BinlogPos;
use replicator_common::zk::Zk;
use route::Router;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use steps::{drive, resume_point, settle, take_snapshot_request, ResumePoint};
use tokio_util::sync::CancellationToken;
use txn::TxnCursor;

/// Events handled per wake-up before stops and commits get a turn.
const BURST: usize = 256;

/// Tunables of a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Source heartbeat period (idle sources still report time).
    pub heartbeat: Duration,
    /// How often the context is written when it advanced.
    pub commit_interval: Duration,
    pub message_timeout: Duration,
    pub tail_idle: Duration,
    pub flush_timeout: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(1),
            commit_interval: Duration::from_millis(200),
            message_timeout: Duration::from_secs(10),
            tail_idle: Duration::from_millis(150),
            flush_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything one run needs.
pub struct PipelineSpec {
    pub task: TaskRef,
    pub config: TaskConfig,
    pub zk: Zk,
    /// Sequence number of the instance running it (written as the context epoch).
    pub epoch: i64,
    pub lease: Lease,
    /// The control's `accept_gap` counter: above the context's
    /// `accepted_gap`, a GTID gap after a source failover is accepted once.
    pub accept_gap: u64,
    pub options: PipelineOptions,
    /// Set once this run committed a context holding row events beyond its
    /// start: the task is healthy again (ends a streak of failures).
    pub delivered: Arc<AtomicBool>,
    /// The control node's on-demand snapshot request (taken in once).
    pub snapshot_request: Option<SnapshotRequest>,
}

/// How to stop a run.
#[derive(Debug, Clone, Default)]
pub struct Stops {
    /// Finish the open transaction, flush, write a clean context.
    pub graceful: CancellationToken,
    /// Drop everything and return now.
    pub hard: CancellationToken,
}

/// How a run ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Stopped at a transaction boundary with everything acknowledged (`clean`)
    /// or with a final context behind what Kafka holds.
    Graceful {
        clean: bool,
        at: BinlogPos,
    },
    Hard,
}

struct TableEntry {
    table: Table,
    topic: Option<Arc<str>>,
    format: Box<dyn TableFormat>,
    /// Its changes are remembered for the snapshot merge.
    snapshot: bool,
    /// The snapshot watermark signal table: its rows are watermarks, never
    /// messages.
    signal: bool,
}

/// Runs the task until a stop or an error.
pub async fn run(spec: PipelineSpec, stops: Stops) -> Result<Stopped, TaskError> {
    let cfg = &spec.config;
    let password = cfg
        .source
        .resolve_password()
        .map_err(|e| DefiniteError::Config(e.into()))?;
    let router = Router::new(cfg).map_err(|e| DefiniteError::Config(e.into()))?;
    let task_format = TaskFormat::new(cfg).map_err(|e| DefiniteError::Config(e.into()))?;
    let ctx_path = spec.zk.layout().context(&spec.task);
    let (picked, stored) = tokio::join!(
        source::pick(&cfg.source, password.as_ref()),
        progress::read(&spec.zk, &ctx_path)
    );
    let picked = picked?;
    let (mut meta_conn, checked, source_cfg) = (picked.conn, picked.checked, picked.cfg);
    let ResumePoint {
        mut start,
        version,
        clean,
        accepted_gap,
        other_server,
    } = resume_point(
        &spec,
        stored?,
        &picked.server,
        &picked.gtid_pos,
        checked.flavor,
        &mut meta_conn,
        &router,
    )
    .await?;
    take_snapshot_request(&spec, &mut start, &mut meta_conn).await?;
    // Where the binlog ends now: an earlier writer that did not stop cleanly
    // cannot have sent anything beyond it (its lease expired before this
    // run began, and its producer sends nothing after that). Until this run
    // passes it, a graceful stop is not clean: it has not yet replayed every
    // topic an earlier writer may have written to.
    let replay_end = if clean {
        None
    } else {
        match source::resolve_start(&mut meta_conn, &StartPosition::Named(NamedStart::Current))
            .await?
        {
            StartAt::File(end) => Some(end),
            StartAt::Gtid(_) => None,
        }
    };
    let start_at = if start.pos.file.is_empty() {
        StartAt::Gtid(start.gtid.clone().unwrap_or_default())
    } else {
        StartAt::File(start.pos.clone())
    };
    // Claim the context and open the stream at once; nothing is produced
    // before the claim succeeded.
    let mut writer = ContextWriter::new(spec.zk.clone(), ctx_path.clone(), version, spec.epoch);
    writer.set_source(picked.server.clone(), accepted_gap);
    let (claimed, stream) = tokio::join!(
        writer.write(&start, false, true),
        source::open_stream(
            &source_cfg,
            password.as_ref(),
            checked.flavor,
            &start_at,
            spec.options.heartbeat,
        )
    );
    claimed?;
    let mut stream = stream.map_err(|e| {
        if other_server {
            source::failover::gone_after_failover(e, &picked.server, start.gtid.as_ref())
        } else {
            e
        }
    })?;
    tracing::info!(task = %spec.task, at = %start.pos, gtid = ?start.gtid, clean, epoch = spec.epoch,
        source = %picked.server.addr, server = %picked.server.id, "replication starts");

    crate::metrics::set_running(spec.task.name(), true);
    crate::metrics::record(spec.task.name(), start.events, start.event_ts_ms, 0);
    let tracker = Arc::new(Tracker::default());
    let mut sink = KafkaSink::new(
        SinkOptions {
            brokers: cfg.sink.brokers.clone(),
            properties: cfg.sink.properties.clone(),
            partitions: cfg.sink.partitions,
            replication_factor: cfg.sink.replication_factor,
            min_insync_replicas: cfg.sink.min_insync_replicas,
            task: spec.task.name().to_string(),
            task_path: spec.zk.layout().task(&spec.task),
            epoch: spec.epoch,
            message_timeout: spec.options.message_timeout,
            tail_idle: spec.options.tail_idle,
        },
        tracker.clone(),
        !clean,
        {
            let lease = spec.lease.clone();
            Arc::new(move || lease.is_valid())
        },
    )
    .await?;
    if other_server {
        sink.tails_from_another_server();
    }

    // The snapshot goes on where the context says, if it is not done.
    let snap = match start.snapshot.as_deref() {
        Some(p) if p.remaining() > 0 => {
            snapshot::preflight(&mut meta_conn, &cfg.source.user, p).await?;
            let watermark =
                match snapshot::watermark::method(cfg.source.snapshot_method, checked.flavor) {
                    snapshot::watermark::Method::Watermark => Some(Arc::new(
                        snapshot::watermark::preflight(
                            &mut meta_conn,
                            &source_cfg,
                            spec.task.name(),
                        )
                        .await?,
                    )),
                    snapshot::watermark::Method::ConsistentSnapshot => None,
                };
            let mut marks = Vec::new();
            if !clean {
                if let Some(t) = p.current() {
                    if let Some(topic) = router.route(&t.database, &t.table) {
                        let topic = Arc::<str>::from(topic);
                        sink.prepare_topic(&topic).await?;
                        let found = sink.snapshot_marks(&topic, p.next_chunk);
                        // a mark past the next chunk: two chunks were in flight
                        let chunks: Vec<u64> = found.iter().map(|m| m.chunk).collect();
                        tracing::info!(task = %spec.task, next_chunk = p.next_chunk, chunks = ?chunks,
                            "snapshot marks found in the topic tails");
                        marks = found.into_iter().map(|m| (m.partition, m.key)).collect();
                    }
                }
            }
            Some(SnapshotRun::start(
                task_format.clone(),
                ReaderSpec {
                    source: source_cfg.clone(),
                    password: password.clone(),
                    progress: p.clone(),
                    chunk_rows: cfg.source.snapshot_chunk_rows.max(1),
                    marks: Vec::new(),
                    watermark,
                },
                marks,
            ))
        }
        _ => None,
    };
    let mut state = RunState {
        task: spec.task.name().to_string(),
        flavor: checked.flavor,
        cursor: TxnCursor::new(start.clone()),
        tables: HashMap::new(),
        router,
        schema: SchemaCache::new(meta_conn, checked.flavor, checked.names_from_schema),
        slot: None,
        txn_events: 0,
        pos_prefix: Vec::new(),
        out: RowOut::default(),
        msg: Vec::with_capacity(1024),
        key: Vec::with_capacity(64),
        before_key: Vec::with_capacity(64),
        held: (task_format.format == replicator_common::config::MessageFormat::Maxwell)
            .then(held::Held::default),
        format: task_format,
        server_id: 0,
        txn_topic: cfg.sink.transactions_topic.as_deref().map(Arc::<str>::from),
        txn_meta: None,
        lease: spec.lease.clone(),
        snap,
    };
    // heartbeats: the newest acknowledged position, every heartbeat_ms
    let heartbeat = cfg.sink.heartbeat_ms.map(|ms| {
        let topic = cfg
            .sink
            .heartbeat_topic
            .clone()
            .unwrap_or_else(|| format!("__replicator-heartbeat.{}", spec.task.name()));
        (Duration::from_millis(ms), Arc::<str>::from(topic))
    });
    let result = drive(
        &spec,
        &stops,
        &mut state,
        &mut stream,
        &mut sink,
        &tracker,
        &mut writer,
        &start,
        replay_end.as_ref(),
        heartbeat,
    )
    .await;
    let result = settle(
        result,
        &spec,
        other_server,
        &picked.server,
        &start,
        &source_cfg,
        password.as_ref(),
        &state.router,
        &mut writer,
    )
    .await;
    if !matches!(result, Ok(Stopped::Graceful { .. })) {
        // Drop what was not sent, and let what is in flight resolve before a
        // new run reads the topic tails, so it cannot land after them.
        sink.purge();
        let _ = sink.flush(spec.options.message_timeout).await;
    }
    drop(stream);
    sink.close_in_background();
    crate::metrics::set_running(spec.task.name(), false);
    result
}

/// Graceful end: flush, then write the final context.
async fn finish(
    sink: &KafkaSink,
    tracker: &Tracker,
    writer: &mut ContextWriter,
    state: &RunState,
    replay_end: Option<&BinlogPos>,
    timeout: Duration,
) -> Result<Stopped, TaskError> {
    let flushed = sink.flush(timeout).await.is_ok() && tracker.failure().is_none();
    let last = state.cursor.last().clone();
    let acked = tracker.acked();
    // Clean means nothing after `last` is in Kafka: everything we sent is
    // acknowledged and no earlier writer's message lies beyond it either.
    let clean = flushed
        && tracker.open() == 0
        && !sink.behind_earlier_writer()
        && replayed_past(&last.pos, replay_end)
        && acked.as_ref().is_none_or(|a| a.pos == last.pos);
    let cp = if clean { last } else { acked.unwrap_or(last) };
    writer.write(&cp, clean, true).await?;
    tracing::info!(at = %cp.pos, clean, "stopped at a transaction boundary");
    Ok(Stopped::Graceful { clean, at: cp.pos })
}

struct RunState {
    task: String,
    flavor: Flavor,
    cursor: TxnCursor,
    tables: HashMap<u64, TableEntry>,
    router: Router,
    schema: SchemaCache,
    /// Tracker slot of the open transaction.
    slot: Option<u64>,
    txn_events: u64,
    pos_prefix: Vec<u8>,
    out: RowOut,
    msg: Vec<u8>,
    /// Key of a format that writes its own.
    key: Vec<u8>,
    /// The before image's key of an update (snapshot merge).
    before_key: Vec<u8>,
    format: TaskFormat,
    /// Server id of the event being handled.
    server_id: u32,
    /// `sink.transactions_topic`.
    txn_topic: Option<Arc<str>>,
    /// Transaction events of the open transaction (with `txn_topic`).
    txn_meta: Option<TxnMeta>,
    lease: Lease,
    snap: Option<SnapshotRun>,
    /// Maxwell: the newest row message of the open transaction, sent at the
    /// next row or marked `commit: true` at the commit (see [`held`]).
    held: Option<held::Held>,
}

/// How often an emitted snapshot chunk's acknowledgements are checked.
const SNAPSHOT_ACK_POLL: Duration = Duration::from_millis(2);

/// The next chunk of the snapshot, if one runs (else never).
async fn next_chunk(
    snap: &mut Option<SnapshotRun>,
) -> Option<Result<snapshot::reader::Chunk, TaskError>> {
    match snap.as_mut() {
        Some(s) => s.next_chunk().await,
        None => std::future::pending().await,
    }
}

impl RunState {
    /// True when a snapshot chunk can be emitted now.
    fn snapshot_ready(&self) -> bool {
        self.snap
            .as_ref()
            .is_some_and(|s| s.ready(&self.cursor).unwrap_or(true))
    }

    /// Emits the pending snapshot chunk if the stream is at a boundary past
    /// its read view.
    async fn emit_snapshot(
        &mut self,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        let Some(snap) = self.snap.as_mut() else {
            return Ok(());
        };
        if snap.ready(&self.cursor)? {
            snap.emit(sink, tracker, &mut self.cursor, &self.router, &self.lease)
                .await?;
        }
        Ok(())
    }

    fn open_slot(&mut self, tracker: &Tracker) {
        if self.slot.is_none() {
            self.slot = Some(tracker.begin());
            self.txn_events = 0;
            let t = self.cursor.open().expect("a transaction is open");
            self.pos_prefix =
                message::position_prefix(self.cursor.file(), t.start, t.gtid.as_deref());
            self.txn_meta = self.txn_topic.as_ref().map(|_| {
                TxnMeta::new(&format::Txn {
                    file: self.cursor.file(),
                    pos: t.start,
                    gtid: t.gtid.as_deref(),
                    json_position: &[],
                })
            });
        }
    }

    async fn commit(
        &mut self,
        end_pos: u64,
        ts_ms: i64,
        tracker: &Tracker,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        if let Some(h) = self.held.as_mut() {
            h.send(sink, Some(format::maxwell::mark_commit)).await?;
        }
        if let Some(meta) = self.txn_meta.take().filter(|m| m.begun) {
            self.send_txn_event(&meta, true, ts_ms, sink).await?;
        }
        let cp = self.cursor.commit(end_pos, ts_ms, self.txn_events);
        match self.slot.take() {
            Some(slot) => tracker.end(slot, cp),
            None => tracker.mark(cp),
        }
        Ok(())
    }

    /// Sends the BEGIN or END event of the open transaction to the
    /// transactions topic, at the transaction's next message position.
    async fn send_txn_event(
        &mut self,
        meta: &TxnMeta,
        end: bool,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let Some(topic) = self.txn_topic.clone() else {
            return Ok(());
        };
        let slot = self.slot.ok_or_else(|| {
            DefiniteError::Decode(DataError::OutsideTransaction("transaction event"))
        })?;
        let (start, row) = self.cursor.next_row().expect("transaction is open");
        let t = self.cursor.open().expect("transaction is open");
        let txn = format::Txn {
            file: self.cursor.file(),
            pos: start,
            gtid: t.gtid.as_deref(),
            json_position: &[],
        };
        meta.write(
            self.format.format,
            &self.task,
            end,
            ts_ms,
            &txn,
            &mut self.msg,
            &mut self.key,
        );
        let pos = message::msg_pos(self.cursor.file(), start, row);
        sink.send(&topic, Some(&self.key), Some(&self.msg), pos, slot)
            .await?;
        self.txn_events += 1;
        Ok(())
    }

    async fn handle(
        &mut self,
        ev: &mysql_async::binlog::events::Event,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        let h = ev.header();
        let header = EventHeader {
            timestamp: h.timestamp(),
            type_code: h.event_type_raw(),
            server_id: h.server_id(),
            event_size: h.event_size(),
            log_pos: h.log_pos(),
            flags: h.flags_raw(),
        };
        let offset = (header.log_pos as u64).saturating_sub(header.event_size as u64);
        let at = |e, file: &str| decode_error(e, header.type_code, None, file, offset);
        if header.type_code == decode::codes::event::TRANSACTION_PAYLOAD {
            // MySQL 8 compressed transaction: its events, decompressed, go
            // through the same steps at the payload event's position.
            let events =
                decode::payload::decompress(ev.data()).map_err(|e| at(e, self.cursor.file()))?;
            for (i, inner) in decode::payload::events(&header, &events).enumerate() {
                let (inner, body) = inner.map_err(|e| at(e, self.cursor.file()))?;
                let event = decode::parse_event(&inner, body, self.flavor).map_err(|e| {
                    decode_error(e, inner.type_code, Some(i), self.cursor.file(), offset)
                })?;
                self.apply(event, &inner, offset, sink, tracker).await?;
            }
            return Ok(());
        }
        let inflated;
        let (header, data) = if decode::compressed::is_compressed(header.type_code) {
            inflated = decode::compressed::inflate(&header, ev.data())
                .map_err(|e| at(e, self.cursor.file()))?;
            (inflated.0, inflated.1.as_slice())
        } else {
            (header, ev.data())
        };
        let event = decode::parse_event(&header, data, self.flavor)
            .map_err(|e| at(e, self.cursor.file()))?;
        self.apply(event, &header, offset, sink, tracker).await
    }

    /// Applies one decoded event that starts at `offset` of the binlog file.
    async fn apply(
        &mut self,
        event: Event<'_>,
        header: &EventHeader,
        offset: u64,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        self.server_id = header.server_id;
        let ts_ms = header.timestamp as i64 * 1000;
        match event {
            Event::Rotate { next_file, .. } => self.cursor.rotate(&next_file),
            Event::MariaGtid { gtid, .. } => {
                self.cursor.maria_gtid(offset, gtid, ts_ms);
                self.open_slot(tracker);
            }
            Event::MySqlGtid { sid, gno } => {
                self.cursor
                    .mysql_gtid(offset, format!("{}:{gno}", uuid_text(&sid)), ts_ms);
                self.open_slot(tracker);
            }
            Event::Query { database, sql } => {
                let trimmed = sql.trim();
                if trimmed.eq_ignore_ascii_case("BEGIN") {
                    self.cursor.begin(offset, ts_ms);
                    self.open_slot(tracker);
                } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                    self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                        .await?;
                } else if self.cursor.open().is_some_and(|t| t.began) {
                    // a statement inside BEGIN..COMMIT (SAVEPOINT and the like)
                } else {
                    self.cursor.statement(offset, ts_ms);
                    self.open_slot(tracker);
                    if ddl::is_ddl(&sql) {
                        self.schema.invalidate();
                        if let Some((db, table)) = ddl::ddl_target(&sql, &database) {
                            self.emit_ddl(&db, &table, &sql, ts_ms, sink).await?;
                        }
                    }
                    self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                        .await?;
                }
            }
            Event::Xid { .. } => {
                self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                    .await?
            }
            Event::TableMap(mut table) => {
                let topic = self
                    .router
                    .route(&table.database, &table.name)
                    .map(Arc::<str>::from);
                let signal = self.router.is_signal(&table.database, &table.name);
                if let Some(t) = &topic {
                    self.schema.complete(&mut table).await?;
                    sink.prepare_topic(t).await?;
                } else if signal {
                    // its rows are read by column name
                    self.schema.complete(&mut table).await?;
                }
                let format = self.format.table(&table);
                let snapshot = self
                    .snap
                    .as_ref()
                    .is_some_and(|s| s.covers(&table.database, &table.name));
                self.tables.insert(
                    table.table_id,
                    TableEntry {
                        table,
                        topic,
                        format,
                        snapshot,
                        signal,
                    },
                );
            }
            Event::Rows(rows) => self.emit_rows(&rows, ts_ms, sink).await?,
            Event::Heartbeat => {
                if !self.cursor.in_txn() && tracker.open() == 0 {
                    tracker.mark(self.cursor.idle_at(replicator_common::now_ms()));
                }
            }
            Event::FormatDescription { .. } | Event::MariaGtidList(_) | Event::Other { .. } => {}
        }
        Ok(())
    }

    async fn emit_rows(
        &mut self,
        rows: &decode::RowsEvent<'_>,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let entry = self
            .tables
            .get(&rows.table_id)
            .ok_or_else(|| DefiniteError::Decode(DataError::UnknownTable(rows.table_id)))?;
        if entry.signal {
            return self.signal_rows(rows);
        }
        let Some(topic) = entry.topic.clone() else {
            return Ok(());
        };
        // the first included rows of a transaction: its BEGIN event first
        if let Some(meta) = self.txn_meta.as_mut().filter(|m| !m.begun) {
            meta.begun = true;
            let meta = meta.clone();
            self.send_txn_event(&meta, false, ts_ms, sink).await?;
        }
        let entry = &self.tables[&rows.table_id];
        let kind = match rows.kind {
            RowKind::Insert => ChangeType::Insert,
            RowKind::Update => ChangeType::Update,
            RowKind::Delete => ChangeType::Delete,
        };
        let slot = self
            .slot
            .ok_or(DefiniteError::Decode(DataError::OutsideTransaction(
                "row event",
            )))?;
        let mut iter = rows.rows(&entry.table);
        while iter.next_row(&mut self.out).map_err(|e| {
            DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
        })? {
            if !self.lease.is_valid() {
                return Err(TaskError::LeaseLost);
            }
            if entry.snapshot {
                if let (Some(s), Some(t)) = (self.snap.as_mut(), self.cursor.open()) {
                    // an update may change the key: both keys are merged
                    let (before, after) = match kind {
                        ChangeType::Update => {
                            self.out.before_key(&entry.table, &mut self.before_key);
                            (
                                Some(self.before_key.as_slice()),
                                Some(self.out.key.as_slice()),
                            )
                        }
                        ChangeType::Delete => (Some(self.out.key.as_slice()), None),
                        _ => (None, Some(self.out.key.as_slice())),
                    };
                    s.record(
                        &entry.table.database,
                        &entry.table.name,
                        before,
                        after,
                        self.cursor.file(),
                        t.start,
                    );
                }
            }
            let before = self.out.has_before.then_some(self.out.before.as_slice());
            let after = self.out.has_after.then_some(self.out.after.as_slice());
            let bad = |e: format::FormatError| {
                DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
            };
            // A format may write an update that changes the key as a delete
            // then an insert (Debezium does).
            let split = kind == ChangeType::Update
                && entry.format.splits_key_change(before, after).map_err(bad)?;
            let parts = if split {
                [
                    (ChangeType::Delete, before, None),
                    (ChangeType::Insert, None, after),
                ]
            } else {
                [(kind, before, after), (kind, None, None)]
            };
            for &(kind, before, after) in &parts[..if split { 2 } else { 1 }] {
                let order = self
                    .txn_meta
                    .as_mut()
                    .map(|m| m.on_row(&entry.table.database, &entry.table.name));
                let (start, row) = self.cursor.next_row().expect("transaction is open");
                let change = format::RowChange {
                    kind,
                    ts_ms,
                    server_id: self.server_id,
                    txn: format::Txn {
                        file: self.cursor.file(),
                        pos: start,
                        gtid: self.cursor.open().and_then(|t| t.gtid.as_deref()),
                        json_position: &self.pos_prefix,
                    },
                    row,
                    key: &self.out.key,
                    before,
                    after,
                    order: order.map(|(total_order, data_collection_order)| TxnOrder {
                        id: self.txn_meta.as_ref().map_or("", |m| m.id.as_str()),
                        total_order,
                        data_collection_order,
                    }),
                    snapshot: format::SnapshotMark::Stream,
                };
                let key_out = entry
                    .format
                    .row(&mut self.msg, &mut self.key, &change)
                    .map_err(bad)?;
                let key = match key_out {
                    KeyOut::Row => Some(self.out.key.as_slice()),
                    KeyOut::Written => Some(self.key.as_slice()),
                    KeyOut::Null => None,
                };
                let pos = PosRef {
                    gtid: self.cursor.open().and_then(|t| t.gtid.as_deref()),
                    ..message::msg_pos(self.cursor.file(), start, row)
                };
                match self.held.as_mut() {
                    Some(h) => {
                        h.send(sink, None).await?;
                        h.push(&topic, key, Some(&self.msg), pos, slot);
                    }
                    None => sink.send(&topic, key, Some(&self.msg), pos, slot).await?,
                }
                self.txn_events += 1;
                if kind == ChangeType::Delete && self.format.tombstones {
                    // A tombstone has a position of its own (the next row
                    // number), so duplicate removal tells it from its delete.
                    let (start, row) = self.cursor.next_row().expect("transaction is open");
                    let pos = PosRef {
                        gtid: self.cursor.open().and_then(|t| t.gtid.as_deref()),
                        ..message::msg_pos(self.cursor.file(), start, row)
                    };
                    match self.held.as_mut() {
                        Some(h) => h.push(&topic, key, None, pos, slot),
                        None => sink.send(&topic, key, None, pos, slot).await?,
                    }
                    self.txn_events += 1;
                }
            }
        }
        Ok(())
    }

    /// Rows of the watermark signal table go to the snapshot (if one runs),
    /// never to Kafka.
    fn signal_rows(&mut self, rows: &decode::RowsEvent<'_>) -> Result<(), TaskError> {
        let (Some(snap), Some(t)) = (self.snap.as_mut(), self.cursor.open()) else {
            return Ok(());
        };
        let entry = &self.tables[&rows.table_id];
        let mut iter = rows.rows(&entry.table);
        while iter.next_row(&mut self.out).map_err(|e| {
            DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
        })? {
            if self.out.has_after {
                if let Some((task, mark)) = snapshot::watermark::parse_row(&self.out.after) {
                    snap.signal(&task, &mark, self.cursor.file(), t.start);
                }
            }
        }
        Ok(())
    }

    async fn emit_ddl(
        &mut self,
        db: &str,
        table: &str,
        sql: &str,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let Some(routed) = self.router.route(db, table) else {
            return Ok(());
        };
        // Debezium writes schema changes to a topic of their own
        let topic: Arc<str> = match self.format.ddl_topic() {
            Some(t) => Arc::from(t),
            None => Arc::from(routed),
        };
        sink.prepare_topic(&topic).await?;
        let def = if self.format.wants_definition() && ddl::ddl_kind(sql) != ddl::DdlKind::DropTable
        {
            self.schema.definition(db, table).await?
        } else {
            None
        };
        if !self.lease.is_valid() {
            return Err(TaskError::LeaseLost);
        }
        let (start, row) = self.cursor.next_row().expect("transaction is open");
        self.format.ddl(
            &mut self.msg,
            &mut self.key,
            &format::DdlChange {
                database: db,
                table,
                sql,
                ts_ms,
                server_id: self.server_id,
                txn: format::Txn {
                    file: self.cursor.file(),
                    pos: start,
                    gtid: self.cursor.open().and_then(|t| t.gtid.as_deref()),
                    json_position: &self.pos_prefix,
                },
                row,
                def: def.as_ref(),
            },
        );
        let pos = PosRef {
            gtid: self.cursor.open().and_then(|t| t.gtid.as_deref()),
            ..message::msg_pos(self.cursor.file(), start, row)
        };
        let slot = self.slot.expect("statement opened a slot");
        sink.send(&topic, Some(&self.key), Some(&self.msg), pos, slot)
            .await?;
        self.txn_events += 1;
        Ok(())
    }
}

/// True when `at` is at or past `end`, where the binlog ended when a run
/// after an unclean stop began (nothing to pass: `None`). Positions of
/// different logs (a failed-over source) are not comparable: not past.
fn replayed_past(at: &BinlogPos, end: Option<&BinlogPos>) -> bool {
    end.is_none_or(|end| at.compare(end).is_ok_and(|o| o.is_ge()))
}

/// A decode error as the task reports it: the event type and where the
/// event starts, and for an event inside a MySQL transaction payload which
/// one it is.
fn decode_error(
    e: decode::DecodeError,
    type_code: u8,
    inner: Option<usize>,
    file: &str,
    offset: u64,
) -> TaskError {
    let place = match inner {
        None => format!("event type {type_code} at {file}:{offset}"),
        Some(i) => format!(
            "event type {type_code}, event {i} inside the transaction payload \
             event at {file}:{offset}"
        ),
    };
    DefiniteError::Decode(DataError::Event { place, source: e }).into()
}

fn uuid_text(sid: &[u8; 16]) -> String {
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_only_past_where_the_binlog_ended_at_the_unclean_takeover() {
        let end = BinlogPos::new("mysql-bin.000003", 500);
        assert!(replayed_past(&BinlogPos::new("mysql-bin.000001", 4), None));
        assert!(!replayed_past(
            &BinlogPos::new("mysql-bin.000003", 499),
            Some(&end)
        ));
        assert!(replayed_past(
            &BinlogPos::new("mysql-bin.000003", 500),
            Some(&end)
        ));
        assert!(replayed_past(
            &BinlogPos::new("mysql-bin.000004", 4),
            Some(&end)
        ));
        assert!(!replayed_past(
            &BinlogPos::new("other-bin.000009", 4),
            Some(&end)
        ));
    }
}
