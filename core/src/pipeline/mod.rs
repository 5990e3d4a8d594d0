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
//!
//! Layout: [`run`] here is the list of its steps: `begin` (source server,
//! resume point, snapshot request, replay end), `claim_and_open` (context
//! claim and binlog stream), `open_outputs` (sink, snapshot run, state),
//! then `drive` and `settle` (those and the resume point in `steps.rs`); the state
//! that handles each event is `state.rs`; transactions [`txn`], routing
//! [`route`], messages [`message`] and [`format`], DDL [`ddl`], Maxwell's
//! held row [`held`].

pub mod ddl;
pub mod format;
pub mod held;
pub mod message;
pub mod route;
mod state;
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
use replicator_common::gtid::Gtid;
use replicator_common::nodes::{SnapshotRequest, SourceServer};
use replicator_common::paths::TaskRef;
use replicator_common::position::BinlogPos;
use replicator_common::zk::Zk;
use route::Router;
use state::{next_chunk, RunState, SNAPSHOT_ACK_POLL};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use steps::{drive, open_snapshot, resume_point, settle, take_snapshot_request, ResumePoint};
use tokio_util::sync::CancellationToken;
use txn::{OpenTxn, TxnCursor};

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

/// Runs the task until a stop or an error.
pub async fn run(spec: PipelineSpec, stops: Stops) -> Result<Stopped, TaskError> {
    let Begun {
        source,
        resume,
        replay_end,
        parts,
    } = begin(&spec).await?;
    let (mut writer, mut stream) = claim_and_open(&spec, &source, &resume).await?;
    crate::metrics::set_running(spec.task.name(), true);
    crate::metrics::record(
        spec.task.name(),
        resume.start.events,
        resume.start.event_ts_ms,
        0,
    );
    let tracker = Arc::new(Tracker::default());
    let (mut sink, mut state) = open_outputs(&spec, &source, &resume, parts, &tracker).await?;
    let result = drive(
        &spec,
        &stops,
        &mut state,
        &mut stream,
        &mut sink,
        &tracker,
        &mut writer,
        &resume.start,
        replay_end.as_ref(),
        heartbeat(&spec),
    )
    .await;
    let result = settle(result, &spec, &source, &resume, &state.router, &mut writer).await;
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

/// The source server a run reads and how it reaches it.
pub(super) struct RunSource {
    /// The task's source config narrowed to this server.
    pub(super) cfg: replicator_common::config::SourceConfig,
    pub(super) password: Option<replicator_common::secret::Secret>,
    pub(super) server: SourceServer,
    pub(super) checked: source::preflight::Checked,
}

/// What the run hands on to the state that handles events.
struct Parts {
    /// The metadata connection (table descriptions), after the resume steps.
    meta_conn: mysql_async::Conn,
    router: Router,
    format: TaskFormat,
}

/// A run before it claims the context: its server, where it resumes, and
/// (after an unclean stop) where the binlog ended.
struct Begun {
    source: RunSource,
    resume: ResumePoint,
    replay_end: Option<BinlogPos>,
    parts: Parts,
}

/// Steps 1-2: the config's parts, the first usable source server, where to
/// resume, an on-demand snapshot request, and the replay end.
async fn begin(spec: &PipelineSpec) -> Result<Begun, TaskError> {
    let cfg = &spec.config;
    let password = cfg
        .source
        .resolve_password()
        .map_err(|e| DefiniteError::Config(e.into()))?;
    let router = Router::new(cfg).map_err(|e| DefiniteError::Config(e.into()))?;
    let format = TaskFormat::new(cfg).map_err(|e| DefiniteError::Config(e.into()))?;
    let ctx_path = spec.zk.layout().context(&spec.task);
    let (picked, stored) = tokio::join!(
        source::pick(&cfg.source, password.as_ref()),
        progress::read(&spec.zk, &ctx_path)
    );
    let mut picked = picked?;
    let mut resume = resume_point(
        spec,
        stored?,
        &picked.server,
        &picked.gtid_pos,
        picked.checked.flavor,
        &mut picked.conn,
        &router,
    )
    .await?;
    take_snapshot_request(spec, &mut resume.start, &mut picked.conn).await?;
    let replay_end = replay_end(resume.clean, &mut picked.conn).await?;
    Ok(Begun {
        source: RunSource {
            cfg: picked.cfg,
            password,
            server: picked.server,
            checked: picked.checked,
        },
        resume,
        replay_end,
        parts: Parts {
            meta_conn: picked.conn,
            router,
            format,
        },
    })
}

/// Claims the context and opens the binlog stream at once; nothing is
/// produced before the claim succeeded.
async fn claim_and_open(
    spec: &PipelineSpec,
    source: &RunSource,
    resume: &ResumePoint,
) -> Result<(ContextWriter, mysql_async::BinlogStream), TaskError> {
    let start = &resume.start;
    let start_at = if start.pos.file.is_empty() {
        StartAt::Gtid(start.gtid.clone().unwrap_or_default())
    } else {
        StartAt::File(start.pos.clone())
    };
    let ctx_path = spec.zk.layout().context(&spec.task);
    let mut writer = ContextWriter::new(spec.zk.clone(), ctx_path, resume.version, spec.epoch);
    writer.set_source(source.server.clone(), resume.accepted_gap);
    let (claimed, stream) = tokio::join!(
        writer.write(start, false, true),
        source::open_stream(
            &source.cfg,
            source.password.as_ref(),
            source.checked.flavor,
            &start_at,
            spec.options.heartbeat,
        )
    );
    claimed?;
    let stream = stream.map_err(|e| {
        if resume.other_server {
            source::failover::gone_after_failover(e, &source.server, start.gtid.as_ref())
        } else {
            e
        }
    })?;
    tracing::info!(task = %spec.task, at = %start.pos, gtid = ?start.gtid, clean = resume.clean,
        epoch = spec.epoch, source = %source.server.addr, server = %source.server.id,
        "replication starts");
    Ok((writer, stream))
}

/// The sink (fenced in; after a failover it orders the old run's messages
/// by GTID), the snapshot where the context says, and the state that
/// handles events.
async fn open_outputs(
    spec: &PipelineSpec,
    source: &RunSource,
    resume: &ResumePoint,
    parts: Parts,
    tracker: &Arc<Tracker>,
) -> Result<(KafkaSink, RunState), TaskError> {
    let Parts {
        mut meta_conn,
        router,
        format,
    } = parts;
    let mut sink = open_sink(spec, tracker.clone(), resume.clean).await?;
    if resume.other_server {
        sink.tails_from_another_server();
    }
    let snap = open_snapshot(
        spec,
        source,
        resume,
        &mut meta_conn,
        &router,
        &mut sink,
        &format,
    )
    .await?;
    let flavor = source.checked.flavor;
    let state = RunState::new(
        spec,
        flavor,
        &resume.start,
        router,
        SchemaCache::new(meta_conn, flavor, source.checked.names_from_schema),
        format,
        snap,
    );
    Ok((sink, state))
}

/// Where the binlog ends now, after an unclean stop (else `None`): an
/// earlier writer that did not stop cleanly cannot have sent anything beyond
/// it (its lease expired before this run began, and its producer sends
/// nothing after that). Until this run passes it, a graceful stop is not
/// clean: it has not yet replayed every topic an earlier writer may have
/// written to.
async fn replay_end(
    clean: bool,
    meta_conn: &mut mysql_async::Conn,
) -> Result<Option<BinlogPos>, TaskError> {
    if clean {
        return Ok(None);
    }
    Ok(
        match source::resolve_start(meta_conn, &StartPosition::Named(NamedStart::Current)).await? {
            StartAt::File(end) => Some(end),
            StartAt::Gtid(_) => None,
        },
    )
}

/// The task's Kafka sink: its producer fenced in (after an unclean stop the
/// sink also reads the topic tails before the first message).
async fn open_sink(
    spec: &PipelineSpec,
    tracker: Arc<Tracker>,
    clean: bool,
) -> Result<KafkaSink, TaskError> {
    let cfg = &spec.config;
    KafkaSink::new(
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
        tracker,
        !clean,
        {
            let lease = spec.lease.clone();
            Arc::new(move || lease.is_valid())
        },
    )
    .await
}

/// `sink.heartbeat_ms` and its topic: the newest acknowledged position goes
/// out that often.
fn heartbeat(spec: &PipelineSpec) -> Option<(Duration, Arc<str>)> {
    let cfg = &spec.config;
    cfg.sink.heartbeat_ms.map(|ms| {
        let topic = cfg
            .sink
            .heartbeat_topic
            .clone()
            .unwrap_or_else(|| format!("__replicator-heartbeat.{}", spec.task.name()));
        (Duration::from_millis(ms), Arc::<str>::from(topic))
    })
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

/// True when `at` is at or past `end`, where the binlog ended when a run
/// after an unclean stop began (nothing to pass: `None`). Positions of
/// different logs (a failed-over source) are not comparable: not past.
fn replayed_past(at: &BinlogPos, end: Option<&BinlogPos>) -> bool {
    end.is_none_or(|end| at.compare(end).is_ok_and(|o| o.is_ge()))
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
