//! Hot standby of one task inside one ZooKeeper session (docs/design.md §4).
//!
//! Register an EPHEMERAL_SEQUENTIAL instance; the smallest sequence is
//! RUNNING and runs the pipeline, every other instance is STANDBY and watches
//! only its predecessor. The leader also watches the task config (a change
//! restarts the pipeline from its clean context: live configuration) and the
//! control node (pause, resume, switchover). Graceful stop and switchover
//! flush, write a clean context and delete the instance node so the next
//! instance takes over at once; a switched-off instance registers again and
//! becomes a STANDBY. Returns when the session is lost (the caller opens a new
//! one and calls again) or on shutdown.

use crate::error::{Backoff, TaskError, TransientError};
use crate::instance::Instance;
use crate::lease::Lease;
use crate::pipeline::{self, PipelineOptions, PipelineSpec, Stops};
use replicator_common::candidacy::{self, Standing};
use replicator_common::config::TaskConfig;
use replicator_common::nodes::{Control, Desired, InstanceState};
use replicator_common::paths::TaskRef;
use replicator_common::task_node::parse_task_node;
use replicator_common::zk::{is_terminal, Zk, ZkClientError, ZkError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use zookeeper_client::{EventType, SessionState};

/// Why a task loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEnd {
    Shutdown,
    SessionLost,
    /// The task was deleted (its node is gone).
    Deleted,
    /// Cold mode: another core's instance came first.
    NotClaimed,
    /// Cold mode: handed over (rebalancing or switchover); the node is deleted.
    Released,
}

/// Hot tasks wait as STANDBY and re-register after a switchover; cold tasks
/// are run only by their claimer and left to the next scan otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Hot,
    Cold,
}

/// What a task loop needs.
#[derive(Clone)]
pub struct TaskEnv {
    pub zk: Zk,
    pub lease: Lease,
    pub host: String,
    pub options: PipelineOptions,
    /// Cancelled on process shutdown (graceful).
    pub shutdown: CancellationToken,
    /// Cancelled when the session is over (hard).
    pub session_lost: CancellationToken,
    /// Cancelled when this task must hand over (cold-standby rebalancing): graceful.
    pub release: CancellationToken,
}

enum LeadEnd {
    Shutdown,
    Switchover,
    SessionLost,
    Relist,
    Deleted,
}

/// A run that stays up this long without error ends a streak of failures
/// even when it had no rows to deliver (an idle task).
const STABLE_RUN: Duration = Duration::from_secs(60);

type Watch = Pin<Box<dyn Future<Output = zookeeper_client::WatchedEvent> + Send>>;

fn never() -> Watch {
    Box::pin(std::future::pending())
}

/// Runs the standby protocol for `task` until shutdown or session loss.
/// Hot mode creates a missing task node empty and registers an instance;
/// cold mode takes the instance its scanner already claimed, and a missing
/// task node means the task was deleted.
pub async fn run_task(
    env: TaskEnv,
    task: TaskRef,
    mode: Mode,
    claimed: Option<Instance>,
) -> Result<TaskEnd, ZkError> {
    let create_task = mode == Mode::Hot;
    let layout = env.zk.layout().clone();
    let task_path = layout.task(&task);
    if create_task {
        env.zk.ensure_path(&task_path).await?;
    } else if env.zk.get(&task_path).await?.is_none() {
        if let Some(i) = &claimed {
            i.delete().await.ok();
        }
        return Ok(TaskEnd::Deleted);
    }
    let control = layout.control(&task);
    env.zk
        .create_if_absent(
            &control,
            &serde_json::to_vec(&Control::default()).expect("control serializes"),
        )
        .await?;
    let mut inst = match claimed {
        Some(i) => i,
        None => Instance::register(&env.zk, &task, &env.host).await?,
    };
    tracing::info!(task = %task, instance = %inst.name, "registered instance");
    let instances = layout.instances(&task);
    let mut warm: Option<(Vec<u8>, Option<String>)> = None;
    let mut announced = false;
    loop {
        if env.session_lost.is_cancelled() {
            return Ok(TaskEnd::SessionLost);
        }
        match candidacy::stand(&env.zk, &instances, &inst.name).await? {
            Standing::Gone => {
                if is_terminal(env.zk.state()) {
                    return Ok(TaskEnd::SessionLost);
                }
                if env.zk.get(&task_path).await?.is_none() {
                    tracing::info!(task = %task, "task was deleted");
                    return Ok(TaskEnd::Deleted);
                }
                if mode == Mode::Cold {
                    return Ok(TaskEnd::NotClaimed);
                }
                env.zk.ensure_path(&instances).await?;
                inst = Instance::register(&env.zk, &task, &env.host).await?;
                announced = false;
                tracing::info!(task = %task, instance = %inst.name, "instance node was gone; registered again");
            }
            Standing::Follower { .. } if mode == Mode::Cold => {
                inst.delete().await.ok();
                return Ok(TaskEnd::NotClaimed);
            }
            Standing::Follower {
                predecessor: watch,
                watcher,
            } => {
                if inst.state() != InstanceState::Standby || !announced {
                    inst.set_state(InstanceState::Standby).await?;
                    tracing::info!(task = %task, instance = %inst.name, predecessor = %watch, "STANDBY");
                    announced = true;
                }
                warm_up(&env, &task, &mut inst, &mut warm).await;
                tokio::select! {
                    _ = env.shutdown.cancelled() => {
                        inst.delete().await.ok();
                        return Ok(TaskEnd::Shutdown);
                    }
                    _ = env.release.cancelled() => {
                        inst.delete().await.ok();
                        return Ok(TaskEnd::Shutdown);
                    }
                    _ = env.session_lost.cancelled() => return Ok(TaskEnd::SessionLost),
                    ev = watcher.changed() => {
                        tracing::info!(task = %task, instance = %inst.name, predecessor = %watch,
                            event = ?ev.event_type, "predecessor watch fired");
                    }
                }
            }
            Standing::Leader => match lead(&env, &task, &mut inst).await? {
                LeadEnd::Shutdown => {
                    inst.delete().await.ok();
                    return Ok(TaskEnd::Shutdown);
                }
                LeadEnd::Switchover => {
                    inst.delete().await?;
                    if mode == Mode::Cold || env.release.is_cancelled() {
                        tracing::info!(task = %task, instance = %inst.name, "handed over");
                        return Ok(TaskEnd::Released);
                    }
                    tracing::info!(task = %task, instance = %inst.name, "handed over; registering as a standby");
                    inst = Instance::register(&env.zk, &task, &env.host).await?;
                    announced = false;
                }
                LeadEnd::SessionLost => return Ok(TaskEnd::SessionLost),
                LeadEnd::Deleted => return Ok(TaskEnd::Deleted),
                LeadEnd::Relist => {}
            },
        }
    }
}

/// Keeps a standby ready: config parsed and source checked once per config version.
async fn warm_up(
    env: &TaskEnv,
    task: &TaskRef,
    inst: &mut Instance,
    warm: &mut Option<(Vec<u8>, Option<String>)>,
) {
    let path = env.zk.layout().task(task);
    let Ok(Some((data, _))) = env.zk.get(&path).await else {
        return;
    };
    if warm.as_ref().is_some_and(|(d, _)| *d == data) {
        return;
    }
    let problem = match parse_task_node(&data, task) {
        Err(reason) => Some(reason.to_string()),
        Ok(cfg) => match cfg.source.resolve_password() {
            Err(e) => Some(e.to_string()),
            Ok(pw) => crate::source::preflight(&cfg.source, pw.as_ref())
                .await
                .err()
                .map(|e| e.to_string()),
        },
    };
    if let Some(p) = &problem {
        tracing::warn!(task = %task, problem = %p, "standby check failed");
    }
    inst.set_error(problem.clone()).await.ok();
    *warm = Some((data, problem));
}

async fn watch_data(zk: &Zk, path: &str) -> Result<Option<(Vec<u8>, Watch)>, ZkError> {
    match zk.client().get_and_watch_data(path).await {
        Ok((data, _, w)) => Ok(Some((data, Box::pin(w.changed())))),
        Err(ZkClientError::NoNode) => Ok(None),
        Err(e) => Err(ZkError::op("get", path, e)),
    }
}

fn read_control(data: &[u8]) -> Control {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Control::default();
    }
    serde_json::from_slice(data).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "control node is not valid; treating it as running");
        Control::default()
    })
}

/// The RUNNING instance's loop: read and watch the task config and control
/// ([`watch_inputs`]), decide whether to run ([`gate`]), run the pipeline
/// while reacting to changes ([`supervise`]), then act on how it ended
/// ([`after_run`]). Returns when leadership ends.
async fn lead(env: &TaskEnv, task: &TaskRef, inst: &mut Instance) -> Result<LeadEnd, ZkError> {
    inst.set_state(InstanceState::Running).await?;
    tracing::info!(task = %task, instance = %inst.name, "RUNNING");
    let mut base_switch: Option<u64> = None;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        if env.session_lost.is_cancelled() {
            return Ok(LeadEnd::SessionLost);
        }
        let Some(mut w) = watch_inputs(env, task).await? else {
            return Ok(LeadEnd::Deleted);
        };
        let control = read_control(&w.ctl_data);
        // switchovers requested before this instance led are not for it
        let base = *base_switch.get_or_insert(control.switchover);
        if control.switchover > base {
            return Ok(LeadEnd::Switchover);
        }
        let cfg = match gate(env, task, inst, &mut w, &control).await? {
            Gate::Run(cfg) => *cfg,
            Gate::Again => continue,
            Gate::End(end) => return Ok(end),
        };
        if !wait_lease(env).await {
            return Ok(LeadEnd::SessionLost);
        }
        let outcome =
            match supervise(env, task, inst, cfg, &control, &mut w, base, &mut backoff).await? {
                Supervised::Ended(outcome) => outcome,
                Supervised::Lead(end) => return Ok(end),
            };
        if let Some(end) = after_run(env, task, inst, outcome, &mut w, &mut backoff).await? {
            return Ok(end);
        }
    }
}

/// The task config and control as read, each with a watch for its next change.
struct Inputs {
    cfg_data: Vec<u8>,
    cfg_w: Watch,
    ctl_data: Vec<u8>,
    ctl_w: Watch,
    control_path: String,
}

/// Reads and watches the task config and control (creating a missing
/// control empty); `None` when the task node is gone.
async fn watch_inputs(env: &TaskEnv, task: &TaskRef) -> Result<Option<Inputs>, ZkError> {
    let layout = env.zk.layout().clone();
    loop {
        let Some((cfg_data, cfg_w)) = watch_data(&env.zk, &layout.task(task)).await? else {
            return Ok(None);
        };
        let control_path = layout.control(task);
        match watch_data(&env.zk, &control_path).await? {
            Some((ctl_data, ctl_w)) => {
                return Ok(Some(Inputs {
                    cfg_data,
                    cfg_w,
                    ctl_data,
                    ctl_w,
                    control_path,
                }))
            }
            None => {
                env.zk.create_if_absent(&control_path, b"").await?;
            }
        }
    }
}

enum Gate {
    Run(Box<TaskConfig>),
    /// Something changed while waiting: read the inputs again.
    Again,
    End(LeadEnd),
}

/// Whether to run now: a config that does not parse is reported and waited
/// out, a paused task waits for its control to change.
async fn gate(
    env: &TaskEnv,
    task: &TaskRef,
    inst: &mut Instance,
    w: &mut Inputs,
    control: &Control,
) -> Result<Gate, ZkError> {
    let cfg = match parse_task_node(&w.cfg_data, task) {
        Ok(c) => c,
        Err(reason) => {
            tracing::warn!(task = %task, reason = %reason, "waiting for a valid task config");
            inst.set_error(Some(reason.to_string())).await?;
            return Ok(wait_change(env, &mut w.cfg_w, &mut w.ctl_w)
                .await
                .map_or(Gate::Again, Gate::End));
        }
    };
    if control.desired == Desired::Paused {
        inst.set_error(None).await?;
        inst.clear_failures().await?;
        tracing::info!(task = %task, "paused");
        return Ok(wait_change(env, &mut w.cfg_w, &mut w.ctl_w)
            .await
            .map_or(Gate::Again, Gate::End));
    }
    Ok(Gate::Run(Box::new(cfg)))
}

enum Supervised {
    /// The pipeline ended (on its own, or stopped for a restart).
    Ended(Result<pipeline::Stopped, TaskError>),
    /// Leadership ends; the pipeline has stopped.
    Lead(LeadEnd),
}

/// Runs the pipeline in a task of its own and reacts while it runs: a
/// config change, snapshot request or pause restarts it, a switchover,
/// deletion, shutdown or release stops it, a lost session stops it hard.
/// A healthy run (something delivered, or up for [`STABLE_RUN`]) ends a
/// failure streak.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    env: &TaskEnv,
    task: &TaskRef,
    inst: &mut Instance,
    cfg: TaskConfig,
    control: &Control,
    w: &mut Inputs,
    base: u64,
    backoff: &mut Backoff,
) -> Result<Supervised, ZkError> {
    let stops = Stops::default();
    let delivered = Arc::new(AtomicBool::new(false));
    let spec = PipelineSpec {
        task: task.clone(),
        config: cfg,
        zk: env.zk.clone(),
        epoch: inst.seq,
        lease: env.lease.clone(),
        accept_gap: control.accept_gap,
        options: env.options.clone(),
        delivered: delivered.clone(),
        snapshot_request: control.snapshot.clone(),
    };
    let snapshot_seq = control.snapshot.as_ref().map(|r| r.seq);
    let started = Instant::now();
    // aborted if this function returns early (a ZooKeeper error): never
    // left running unowned
    let mut run = AbortOnDropHandle::new(tokio::spawn(pipeline::run(spec, stops.clone())));
    inst.set_error(None).await?;
    let mut health = tokio::time::interval(Duration::from_millis(500));
    // Stops the run (gracefully unless `hard`) and waits for it.
    macro_rules! stop_run {
        ($hard:expr) => {{
            if $hard {
                stops.hard.cancel();
            } else {
                stops.graceful.cancel();
            }
            let _ = (&mut run).await;
        }};
    }
    loop {
        tokio::select! {
            r = &mut run => {
                return Ok(Supervised::Ended(r.unwrap_or_else(|e| {
                    Err(TransientError::PipelineTask(e).into())
                })))
            }
            _ = health.tick(), if inst.retrying().is_some() => {
                if delivered.load(Ordering::Relaxed) || started.elapsed() >= STABLE_RUN {
                    let attempts = inst.retrying().map_or(0, |r| r.attempts);
                    tracing::info!(task = %task, attempts, "healthy again after failed runs");
                    inst.clear_failures().await?;
                    backoff.reset();
                }
            }
            ev = &mut w.cfg_w => {
                if ev.event_type == EventType::NodeDeleted {
                    tracing::info!(task = %task, "task was deleted; stopping");
                    stop_run!(false);
                    return Ok(Supervised::Lead(LeadEnd::Deleted));
                }
                if ev.event_type == EventType::Session && ev.session_state.is_terminated() {
                    // The lease went with the session: stop at once, send nothing queued.
                    tracing::warn!(task = %task, state = ?ev.session_state,
                        "ZooKeeper session is over; stopping the run");
                    stop_run!(true);
                    return Ok(Supervised::Ended(Ok(pipeline::Stopped::Hard)));
                }
                tracing::info!(task = %task, event = ?ev.event_type, "task config changed; restarting from the context");
                stop_run!(false);
                return Ok(Supervised::Ended(Ok(pipeline::Stopped::Hard)));
            }
            _ = &mut w.ctl_w => {
                let Some((data, next)) = watch_data(&env.zk, &w.control_path).await? else {
                    w.ctl_w = never();
                    continue;
                };
                w.ctl_w = next;
                let c = read_control(&data);
                if c.switchover > base {
                    tracing::info!(task = %task, "switchover requested");
                    stop_run!(false);
                    return Ok(Supervised::Lead(LeadEnd::Switchover));
                }
                let restart = if c.snapshot.as_ref().map(|r| r.seq) != snapshot_seq {
                    Some("snapshot requested; restarting from the context")
                } else if c.desired == Desired::Paused {
                    Some("pause requested")
                } else {
                    None
                };
                if let Some(why) = restart {
                    tracing::info!(task = %task, "{why}");
                    stop_run!(false);
                    return Ok(Supervised::Ended(Ok(pipeline::Stopped::Hard)));
                }
            }
            _ = env.shutdown.cancelled() => {
                stop_run!(false);
                return Ok(Supervised::Lead(LeadEnd::Shutdown));
            }
            _ = env.release.cancelled() => {
                stop_run!(false);
                return Ok(Supervised::Lead(LeadEnd::Switchover));
            }
            _ = env.session_lost.cancelled() => {
                stop_run!(true);
                return Ok(Supervised::Lead(LeadEnd::SessionLost));
            }
        }
    }
}

/// Acts on how a run ended: a clean end resets the back-off; fenced or a
/// lost lease ends leadership (relist); a definite error is reported and
/// waits for a config or control change; a transient one is recorded and
/// retried after a back-off that a change cuts short. `None`: run again.
async fn after_run(
    env: &TaskEnv,
    task: &TaskRef,
    inst: &mut Instance,
    outcome: Result<pipeline::Stopped, TaskError>,
    w: &mut Inputs,
    backoff: &mut Backoff,
) -> Result<Option<LeadEnd>, ZkError> {
    match outcome {
        Ok(_) => backoff.reset(),
        Err(TaskError::Fenced { expected, seen }) => {
            tracing::warn!(task = %task, expected, seen, "fenced: another instance wrote the context");
            return Ok(Some(LeadEnd::Relist));
        }
        Err(TaskError::LeaseLost) => {
            tracing::warn!(task = %task, "stopped producing: ZooKeeper lease lost");
            return Ok(Some(if wait_session(env).await {
                LeadEnd::Relist
            } else {
                LeadEnd::SessionLost
            }));
        }
        Err(TaskError::Definite(e)) => {
            tracing::error!(task = %task, error = %e, "task stopped; fix the cause (config change restarts it)");
            inst.clear_failures().await?;
            inst.set_error(Some(e.to_string())).await?;
            return Ok(wait_change(env, &mut w.cfg_w, &mut w.ctl_w).await);
        }
        Err(TaskError::Transient(e)) => {
            let delay = backoff.next_delay();
            inst.record_failure(&e.to_string()).await?;
            let streak = inst.retrying().expect("a failure was just recorded");
            let failing_s = (replicator_common::now_ms() - streak.since_ms).max(0) / 1000;
            tracing::warn!(task = %task, error = %e, attempts = streak.attempts, failing_s,
                retry_ms = delay.as_millis() as u64, "transient error; retrying from the context");
            // a config or control change ends the wait: the fix an
            // operator just made is tried at once
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                ev = &mut w.cfg_w => {
                    if ev.event_type == EventType::NodeDeleted {
                        return Ok(Some(LeadEnd::Deleted));
                    }
                }
                _ = &mut w.ctl_w => {}
                _ = env.shutdown.cancelled() => return Ok(Some(LeadEnd::Shutdown)),
                _ = env.release.cancelled() => return Ok(Some(LeadEnd::Switchover)),
                _ = env.session_lost.cancelled() => return Ok(Some(LeadEnd::SessionLost)),
            }
        }
    }
    Ok(None)
}

/// Waits for the task config or control to change; `Some` when the wait
/// ended for another reason.
async fn wait_change(env: &TaskEnv, cfg_w: &mut Watch, ctl_w: &mut Watch) -> Option<LeadEnd> {
    tokio::select! {
        ev = cfg_w => (ev.event_type == EventType::NodeDeleted).then_some(LeadEnd::Deleted),
        _ = ctl_w => None,
        _ = env.shutdown.cancelled() => Some(LeadEnd::Shutdown),
        _ = env.release.cancelled() => Some(LeadEnd::Switchover),
        _ = env.session_lost.cancelled() => Some(LeadEnd::SessionLost),
    }
}

/// Waits until the lease is valid; false when the session ends first.
async fn wait_lease(env: &TaskEnv) -> bool {
    let deadline = tokio::time::Instant::now() + env.zk.session_timeout();
    while !env.lease.is_valid() {
        if env.session_lost.is_cancelled() || tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// After a lost lease: true when the same session is back, false when it is over.
async fn wait_session(env: &TaskEnv) -> bool {
    let mut events = env.zk.session_events();
    loop {
        let state = events.current();
        if is_terminal(state) || env.session_lost.is_cancelled() {
            return false;
        }
        if state == SessionState::SyncConnected && env.lease.is_valid() {
            return true;
        }
        tokio::select! {
            _ = events.next() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = env.session_lost.cancelled() => return false,
        }
    }
}
