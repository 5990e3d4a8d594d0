//! The steps of [`super::run`], in order: where to resume
//! ([`resume_point`]), an on-demand snapshot request ([`take_snapshot_request`]),
//! the snapshot run that goes on, if any ([`open_snapshot`], after the stream
//! and the sink are open), streaming until a stop or an error ([`drive`]) and
//! what the run reports ([`settle`]). What each binlog event does is
//! [`super::state::RunState`]'s.

use super::*;
use crate::error::TransientError;
use replicator_common::gtid::GtidSet;

/// Where a run starts, from its context or, for a new task, its config.
pub(super) struct ResumePoint {
    pub(super) start: Checkpoint,
    /// The context node's version, for the claim.
    pub(super) version: i32,
    /// No earlier writer may have sent beyond the context.
    pub(super) clean: bool,
    pub(super) accepted_gap: u64,
    /// The context belongs to another source server: resume by GTID.
    pub(super) other_server: bool,
}

/// Step 1 of [`run`]: where to resume (the context's position, or its GTID
/// state on another server, or a new task's start with its snapshot plan).
pub(super) async fn resume_point(
    spec: &PipelineSpec,
    stored: Stored,
    server: &SourceServer,
    gtid_pos: &GtidSet,
    flavor: Flavor,
    meta_conn: &mut mysql_async::Conn,
    router: &Router,
) -> Result<ResumePoint, TaskError> {
    let cfg = &spec.config;
    let mut accepted_gap = 0;
    let mut other_server = false;
    let (start, version, clean) = match stored {
        Stored::Invalid(e) => return Err(DefiniteError::Config(e).into()),
        Stored::Valid { progress, version } => {
            let mut cp = Checkpoint::from_progress(&progress);
            accepted_gap = progress.accepted_gap;
            let accept = spec.accept_gap > progress.accepted_gap;
            match source::failover::decide(
                progress.server.as_ref(),
                progress.gtid.as_ref(),
                server,
                gtid_pos,
                flavor,
                accept,
            )
            .map_err(DefiniteError::SourceGap)?
            {
                source::failover::Resume::Position => (cp, version, progress.clean),
                source::failover::Resume::Gtid {
                    state,
                    accepted_gap: accepted,
                } => {
                    tracing::warn!(task = %spec.task, from = ?progress.server, to = %server.id,
                        addr = %server.addr, gtid = %state, accepted,
                        "source server changed; resuming by GTID");
                    if accepted {
                        accepted_gap = spec.accept_gap;
                    }
                    other_server = true;
                    cp.pos = BinlogPos::new("", 0);
                    cp.gtid = Some(state);
                    // after an accepted gap the old run's messages belong to
                    // another history: no duplicate check against them
                    (cp, version, progress.clean || accepted)
                }
            }
        }
        Stored::Empty { version } => {
            let at = source::resolve_start(meta_conn, &cfg.source.start).await?;
            let snapshot = match cfg.source.snapshot {
                SnapshotMode::Never => None,
                SnapshotMode::Initial | SnapshotMode::WhenNeeded => {
                    Some(Arc::new(snapshot::plan(meta_conn, router).await?))
                }
            };
            let cp = match at {
                StartAt::File(pos) => Checkpoint {
                    pos,
                    gtid: None,
                    event_ts_ms: 0,
                    events: 0,
                    snapshot,
                },
                StartAt::Gtid(g) => Checkpoint {
                    pos: BinlogPos::new("", 0),
                    gtid: Some(g),
                    event_ts_ms: 0,
                    events: 0,
                    snapshot,
                },
            };
            (cp, version, true)
        }
    };
    Ok(ResumePoint {
        start,
        version,
        clean,
        accepted_gap,
        other_server,
    })
}

/// Step 2 of [`run`]: an on-demand snapshot request not taken in yet copies
/// those tables again while the stream goes on.
pub(super) async fn take_snapshot_request(
    spec: &PipelineSpec,
    start: &mut Checkpoint,
    meta_conn: &mut mysql_async::Conn,
) -> Result<(), TaskError> {
    if let Some(req) = &spec.snapshot_request {
        let mut p = start.snapshot.as_deref().cloned().unwrap_or_default();
        let added = p.take_request(req, replicator_common::now_ms());
        if p.request != start.snapshot.as_ref().map_or(0, |s| s.request) {
            tracing::info!(task = %spec.task, request = req.seq, tables = ?added, "on-demand snapshot taken in");
            snapshot::estimate(meta_conn, &mut p).await?;
            start.snapshot = Some(Arc::new(p));
        }
    }
    Ok(())
}

/// Step three: the snapshot of the context goes on where it stopped, if it is
/// not done (its preflight, the watermark signal table when that method
/// applies, and after an unclean stop the marks of the next chunk found in
/// the topic tails).
pub(super) async fn open_snapshot(
    spec: &PipelineSpec,
    source: &RunSource,
    resume: &ResumePoint,
    meta_conn: &mut mysql_async::Conn,
    router: &Router,
    sink: &mut KafkaSink,
    task_format: &TaskFormat,
) -> Result<Option<SnapshotRun>, TaskError> {
    let cfg = &spec.config;
    let (start, clean, flavor) = (&resume.start, resume.clean, source.checked.flavor);
    let (source_cfg, password) = (&source.cfg, source.password.as_ref());
    let snap = match start.snapshot.as_deref() {
        Some(p) if p.remaining() > 0 => {
            snapshot::preflight(meta_conn, &cfg.source.user, p).await?;
            let watermark = match snapshot::watermark::method(cfg.source.snapshot_method, flavor) {
                snapshot::watermark::Method::Watermark => Some(Arc::new(
                    snapshot::watermark::preflight(meta_conn, source_cfg, spec.task.name()).await?,
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
                    password: password.cloned(),
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
    Ok(snap)
}

/// Step 3 of [`run`]: streams until a stop or an error. Binlog events go
/// through [`RunState::handle`]; snapshot chunks are merged in as they
/// arrive (up to two in flight; the stream waits while a chunk is
/// unacknowledged or not yet in the context); every
/// commit interval the acknowledged position goes to the context (and a
/// heartbeat out, when configured).
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    spec: &PipelineSpec,
    stops: &Stops,
    state: &mut RunState,
    stream: &mut mysql_async::BinlogStream,
    sink: &mut KafkaSink,
    tracker: &Tracker,
    writer: &mut ContextWriter,
    start: &Checkpoint,
    replay_end: Option<&BinlogPos>,
    heartbeat: Option<(Duration, Arc<str>)>,
) -> Result<Stopped, TaskError> {
    let mut last_cp = start.clone();
    let mut heartbeat = heartbeat.map(|(every, topic)| (HeartbeatDue::new(every), topic));
    let mut tick = commit_ticks(spec.options.commit_interval);

    loop {
        let in_txn = state.cursor.in_txn();
        let snap_wants = state.snap.as_ref().is_some_and(SnapshotRun::wants_chunk);
        let snap_awaiting = state.snap.as_ref().is_some_and(SnapshotRun::awaiting);
        tokio::select! {
            biased;
            _ = stops.hard.cancelled() => break Ok(Stopped::Hard),
            _ = tokio::time::sleep(SNAPSHOT_ACK_POLL), if snap_awaiting => {
                if !state.lease.is_valid() || sink.lease_expired() {
                    break Err(TaskError::LeaseLost);
                }
                if let Some(reason) = tracker.failure() {
                    break Err(TransientError::Delivery(reason).into());
                }
                // A chunk acknowledged frees room for the next one, which
                // goes out before the context is written: the write is off
                // the critical path, and the stream waits for it (see
                // `snapshot`'s resume rule).
                let acked = tracker.acked();
                let moved = match (state.snap.as_mut(), &acked) {
                    (Some(s), Some(cp)) => s.acked(cp),
                    _ => false,
                };
                if let Err(e) = state.emit_snapshot(sink, tracker).await {
                    break Err(e);
                }
                if let (true, Some(cp)) = (moved, &acked) {
                    let writing = std::time::Instant::now();
                    if let Err(e) = writer.write(cp, false, true).await {
                        break Err(e);
                    }
                    if let Some(s) = state.snap.as_mut() {
                        s.written(writing.elapsed());
                    }
                }
            }
            chunk = next_chunk(&mut state.snap), if snap_wants => {
                let taken = match state.snap.as_mut() {
                    Some(s) => s.received(chunk),
                    None => Ok(()),
                };
                if let Err(e) = taken {
                    break Err(e);
                }
                if let Err(e) = state.emit_snapshot(sink, tracker).await {
                    break Err(e);
                }
            }
            _ = stops.graceful.cancelled(), if !in_txn => {
                break finish(sink, tracker, writer, state, replay_end, spec.options.flush_timeout).await;
            }
            _ = tick.tick() => {
                if !state.lease.is_valid() || sink.lease_expired() {
                    break Err(TaskError::LeaseLost);
                }
                if let Some(reason) = tracker.failure() {
                    break Err(TransientError::Delivery(reason).into());
                }
                if let Some(cp) = tracker.acked() {
                    if let Err(e) = writer.write(&cp, false, false).await {
                        break Err(e);
                    }
                    if cp.events > start.events {
                        spec.delivered.store(true, Ordering::Relaxed);
                    }
                    crate::metrics::record(&state.task, cp.events, cp.event_ts_ms, sink.skipped());
                    last_cp = cp;
                }
                if let Some((due, topic)) = &mut heartbeat {
                    if due.take() {
                        state.format.heartbeat(&mut state.msg, &mut state.key, &last_cp, replicator_common::now_ms());
                        if let Err(e) = sink.send_untracked(topic, &state.key, &state.msg).await {
                            break Err(e);
                        }
                    }
                }
            }
            ev = stream.next(), if !snap_awaiting => {
                let ev = match ev {
                    None => break Err(TransientError::SourceClosed.into()),
                    Some(Err(e)) => break Err(e.into()),
                    Some(Ok(ev)) => ev,
                };
                if let Err(e) = state.handle(&ev, sink, tracker).await {
                    break Err(e);
                }
                // Take what is already buffered without another trip
                // through select!, up to a bound so stops and commits still
                // get their turn.
                let mut drained = Ok(());
                for _ in 0..BURST {
                    if stops.hard.is_cancelled() {
                        break;
                    }
                    if state.snapshot_ready() {
                        break;
                    }
                    let Some(next) = stream.next().now_or_never() else { break };
                    drained = match next {
                        None => Err(TransientError::SourceClosed.into()),
                        Some(Err(e)) => Err(e.into()),
                        Some(Ok(ev)) => state.handle(&ev, sink, tracker).await,
                    };
                    if drained.is_err() {
                        break;
                    }
                }
                if let Err(e) = drained {
                    break Err(e);
                }
                if let Err(e) = state.emit_snapshot(sink, tracker).await {
                    break Err(e);
                }
            }
        }
    }
}

/// The commit ticks of [`drive`]: one every `interval`, the first at once;
/// a tick that comes late (a long event handling) delays the next ones
/// instead of firing a burst of catch-up commits.
fn commit_ticks(interval: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// When [`drive`] sends a heartbeat: asked on every commit tick, due once
/// `every` has passed since the last one (the first, `every` after the
/// run began). So heartbeats are at least `every` apart and at most one
/// commit interval late; a heartbeat interval shorter than the commit
/// interval gives one a tick.
struct HeartbeatDue {
    every: Duration,
    last: tokio::time::Instant,
}

impl HeartbeatDue {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: tokio::time::Instant::now(),
        }
    }

    /// Whether a heartbeat is due now; if so, the next is due `every` later.
    fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.last) < self.every {
            return false;
        }
        self.last = now;
        true
    }
}

/// Step 4 of [`run`]: what an ended run reports. After a source failover
/// an error says which server the run had moved to; under `when_needed` a
/// purged binlog is not the end: the next run starts at the current
/// position and copies every table instead.
pub(super) async fn settle(
    result: Result<Stopped, TaskError>,
    spec: &PipelineSpec,
    source: &RunSource,
    resume: &ResumePoint,
    router: &Router,
    writer: &mut ContextWriter,
) -> Result<Stopped, TaskError> {
    let (other_server, server, start) = (resume.other_server, &source.server, &resume.start);
    let (source_cfg, password) = (&source.cfg, source.password.as_ref());
    let result = match (&result, other_server) {
        (Err(_), true) => result
            .map_err(|e| source::failover::gone_after_failover(e, server, start.gtid.as_ref())),
        _ => result,
    };
    // `when_needed`: a purged binlog is not the end; the next run starts at
    // the current position and copies every table instead.
    let result = match result {
        Err(TaskError::Definite(DefiniteError::BinlogGone(gone)))
            if spec.config.source.snapshot == SnapshotMode::WhenNeeded =>
        {
            // the server this run picked (`source.hosts`)
            let mut picked_cfg = spec.config.clone();
            picked_cfg.source = source_cfg.clone();
            match snapshot::restart_with_snapshot(&picked_cfg, password, router, writer, start)
                .await
            {
                Ok(at) => {
                    tracing::warn!(task = %spec.task, error = %gone.message, at = %at,
                        "binlog gone: restarting from the current position with a snapshot (when_needed)");
                    Err(TransientError::RestartWithSnapshot { at, gone }.into())
                }
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    result
}

#[cfg(test)]
mod tests {
    use super::{commit_ticks, HeartbeatDue};
    use std::time::Duration;
    use tokio::time::{advance, Instant};

    /// The times (ms after the start) of the heartbeats sent on the commit
    /// ticks of `run_ms` ms, each tick's handling taking `work_ms`.
    async fn heartbeats(commit_ms: u64, every_ms: u64, run_ms: u64, work_ms: u64) -> Vec<u64> {
        let start = Instant::now();
        let mut tick = commit_ticks(Duration::from_millis(commit_ms));
        let mut due = HeartbeatDue::new(Duration::from_millis(every_ms));
        let mut sent = Vec::new();
        while start.elapsed() < Duration::from_millis(run_ms) {
            tick.tick().await;
            if due.take() {
                sent.push(start.elapsed().as_millis() as u64);
            }
            advance(Duration::from_millis(work_ms)).await;
        }
        sent
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_are_an_interval_apart_and_at_most_a_tick_late() {
        // commits every 200 ms, a heartbeat every second, for 10 s
        let sent = heartbeats(200, 1000, 10_000, 0).await;
        assert_eq!(sent, (1..=10).map(|i| i * 1000).collect::<Vec<_>>());
        // an interval that is no multiple of the commit interval: the next
        // tick after it, never earlier
        let sent = heartbeats(300, 1000, 10_000, 0).await;
        assert_eq!(sent.len(), 8, "{sent:?}");
        assert_eq!(sent[0], 1200, "{sent:?}");
        for pair in sent.windows(2) {
            let gap = pair[1] - pair[0];
            assert!((1000..1300).contains(&gap), "{sent:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_interval_below_the_commit_interval_gives_one_a_tick() {
        let sent = heartbeats(500, 100, 3000, 0).await;
        assert_eq!(sent, [500, 1000, 1500, 2000, 2500, 3000]);
        // none in a run shorter than the interval
        assert!(heartbeats(200, 5000, 1000, 0).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn late_ticks_delay_the_next_instead_of_bursting() {
        // each tick's work takes 700 ms against a 200 ms commit interval:
        // ticks (and so context writes) follow the work, no catch-up burst
        let start = Instant::now();
        let mut tick = commit_ticks(Duration::from_millis(200));
        let mut at = Vec::new();
        for _ in 0..5 {
            tick.tick().await;
            at.push(start.elapsed().as_millis() as u64);
            advance(Duration::from_millis(700)).await;
        }
        assert_eq!(at, [0, 700, 1400, 2100, 2800]);
        // and heartbeats stay an interval apart
        let sent = heartbeats(200, 1000, 6000, 700).await;
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= 1000, "{sent:?}");
        }
        assert_eq!(sent, [1400, 2800, 4200, 5600]);
    }
}
