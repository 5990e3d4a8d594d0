//! Cold-standby scanner of one group (docs/design.md §5).
//!
//! In: the group's task nodes `/task-groups/<group>/*`, their instance nodes
//! and `/cores/*`. Out: claimed tasks, each running the same pipeline (same
//! context, same duplicate-free resume) as a hot task; tasks handed over by
//! graceful switchover; one debug line per scan with its ZooKeeper requests.
//!
//! Every scan interval (the first one after a short join grace, so that cores
//! started together see each other before they claim): list the group's
//! tasks, read the other cores' `/cores/<host>` (who serves the group and
//! what each runs), list the instances of the tasks no core reports running,
//! and let [`crate::scan::plan`] decide. A claim creates this core's
//! EPHEMERAL_SEQUENTIAL instance and lists again: the smallest sequence runs
//! the task, anyone else deletes its node. A release cancels the task's
//! release token: the pipeline flushes, writes a clean final context and
//! deletes the instance, and an underloaded core claims the task at its next
//! scan. A task that left the group is stopped the same way (its own watch
//! on the task node usually stops it first).
//!
//! Cost of a scan: one listing of the group, one of `/cores`, one read per
//! other live core, and one listing per task that no core reports running.
//! In a settled fleet that last term is zero, so a scan costs C + 1 requests
//! for C live cores whatever the number of tasks, and writes nothing; a claim
//! adds a create and a listing (and a delete when another core won). The
//! debug line `scan` reports `reads` and `writes` of each scan.
//!
//! Failures: a scan that fails is logged and the next tick scans again. When
//! the session is lost the scanner returns; its tasks stop producing when
//! their lease lapses, and the runtime starts a new scanner in a new session.

use crate::election::{decide, Role};
use crate::hot::{self, Mode, TaskEnd, TaskEnv};
use crate::instance::Instance;
use crate::running::Running;
use crate::scan::{plan, ReleaseBackoff, ScanInput};
use replicator_common::nodes::{CoreInfo, InstanceState};
use replicator_common::paths::TaskRef;
use replicator_common::zk::{ZkClientError, ZkError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Scanner settings.
#[derive(Debug, Clone)]
pub struct ColdOptions {
    pub scan_interval: Duration,
    pub max_tasks: usize,
    /// Claim and hold tasks without replicating them (coordination benchmark only).
    pub coordination_only: bool,
}

impl Default for ColdOptions {
    fn default() -> Self {
        Self {
            scan_interval: Duration::from_secs(2),
            max_tasks: 1000,
            coordination_only: false,
        }
    }
}

/// Listings and claims in flight at once.
const CLAIM_BATCH: usize = 64;

/// Wait before the first scan: a quarter of the interval, at most 1 s.
pub fn join_grace(scan_interval: Duration) -> Duration {
    (scan_interval / 4).min(Duration::from_secs(1))
}

struct Held {
    release: CancellationToken,
    handle: JoinHandle<()>,
    /// Asked to stop (hand-over or deletion); no longer counted.
    releasing: bool,
}

/// What a scan learned of the other cores of the group.
#[derive(Debug, Default)]
struct Fleet {
    /// Other live cores serving the group, with how many of its tasks each runs.
    others: BTreeMap<String, usize>,
    /// Tasks of the group some other core reports running.
    busy: BTreeSet<String>,
}

/// The outcome of a scan's claims.
#[derive(Debug, Default)]
struct Claims {
    /// Tasks of the group this core holds after the claims.
    held: usize,
    claimed: u32,
    lost: u32,
    /// The first ZooKeeper error, which ends the claiming.
    failure: Option<ZkError>,
}

/// ZooKeeper requests of one scan.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    reads: u32,
    writes: u32,
}

struct Scanner {
    env: TaskEnv,
    group: String,
    opts: ColdOptions,
    running: Arc<Running>,
    held: HashMap<String, Held>,
    /// Free tasks of the previous scan and for how many scans in a row.
    ages: BTreeMap<String, u32>,
    backoff: ReleaseBackoff,
    scans: u64,
    /// Free tasks whose instances node did not exist at the last listing.
    bare: BTreeSet<String>,
}

/// Scans `group` until the session ends or the process shuts down.
pub async fn run_group(env: TaskEnv, group: String, opts: ColdOptions, running: Arc<Running>) {
    let interval = opts.scan_interval;
    let mut s = Scanner {
        env,
        group,
        opts,
        running,
        held: HashMap::new(),
        ages: BTreeMap::new(),
        backoff: ReleaseBackoff::default(),
        scans: 0,
        bare: BTreeSet::new(),
    };
    tokio::select! {
        _ = tokio::time::sleep(join_grace(interval)) => {}
        _ = s.env.shutdown.cancelled() => return,
        _ = s.env.session_lost.cancelled() => return,
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = s.env.shutdown.cancelled() => break,
            _ = s.env.session_lost.cancelled() => break,
        }
        if let Err(e) = s.scan().await {
            tracing::warn!(group = %s.group, error = %e, "scan failed");
        }
    }
    for (_, h) in s.held {
        let _ = h.handle.await;
    }
}

fn is_no_node(e: &ZkError) -> bool {
    matches!(e.client_error(), Some(ZkClientError::NoNode))
}

impl Scanner {
    /// One scan: read the group and the fleet, let [`plan`] decide, stop
    /// and release what it says, claim what it deals to this core.
    async fn scan(&mut self) -> Result<(), ZkError> {
        let started = Instant::now();
        self.scans += 1;
        self.held.retain(|_, h| !h.handle.is_finished());
        let mut req = Requests::default();
        self.bare.clear();

        let tasks = self.read_group(&mut req).await?;
        let fleet = self.read_fleet(&mut req).await?;
        let free = self.free_tasks(&tasks, &fleet.busy, &mut req).await?;
        let mine: BTreeSet<String> = self
            .held
            .iter()
            .filter(|(_, h)| !h.releasing)
            .map(|(t, _)| t.clone())
            .collect();
        let decision = plan(&ScanInput {
            host: &self.env.host,
            tasks: tasks.clone(),
            free: free.clone(),
            mine: mine.clone(),
            others: fleet.others.clone(),
            max_tasks: self.opts.max_tasks.saturating_sub(self.held_elsewhere()),
            hold_releases: self.backoff.hold(self.scans, &free),
        });
        for t in &decision.stop {
            tracing::info!(group = %self.group, task = %t, "task left the group; stopping it");
            self.stop(t);
        }
        for t in &decision.release {
            tracing::info!(group = %self.group, task = %t, "handing over to rebalance");
            self.stop(t);
        }
        let held = mine.iter().filter(|t| tasks.contains(*t)).count() - decision.release.len();
        let claims = self.claim_dealt(&decision.claim, held, &mut req).await;
        tracing::debug!(
            group = %self.group,
            scan = self.scans,
            tasks = tasks.len(),
            cores = fleet.others.len() + 1,
            free = free.len(),
            held = claims.held,
            claimed = claims.claimed,
            lost = claims.lost,
            released = decision.release.len(),
            stopped = decision.stop.len(),
            reads = req.reads,
            writes = req.writes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "scan"
        );
        claims.failure.map_or(Ok(()), Err)
    }

    /// The group's task names (invalid names ignored).
    async fn read_group(&self, req: &mut Requests) -> Result<BTreeSet<String>, ZkError> {
        let zk = &self.env.zk;
        req.reads += 1;
        Ok(zk
            .children(&zk.layout().group(&self.group)?)
            .await?
            .into_iter()
            .filter(|t| replicator_common::names::validate_name(t).is_ok())
            .collect())
    }

    /// Who else serves the group and which of its tasks every other core runs.
    async fn read_fleet(&self, req: &mut Requests) -> Result<Fleet, ZkError> {
        let zk = &self.env.zk;
        let layout = zk.layout();
        let prefix = format!("{}/", self.group);
        let mut fleet = Fleet::default();
        req.reads += 1;
        for c in zk.children(&layout.cores()).await? {
            if c == self.env.host {
                continue;
            }
            let Ok(path) = layout.core(&c) else { continue };
            req.reads += 1;
            let Some((data, _)) = zk.get(&path).await? else {
                continue;
            };
            let Ok(info) = serde_json::from_slice::<CoreInfo>(&data) else {
                continue;
            };
            let mut load = 0;
            for t in info.tasks.iter().filter_map(|t| t.strip_prefix(&prefix)) {
                fleet.busy.insert(t.to_string());
                load += 1;
            }
            if info.groups.contains(&self.group) {
                fleet.others.insert(c, load);
            }
        }
        Ok(fleet)
    }

    /// The tasks that no core runs (no instance), with the number of scans
    /// in a row each has been free.
    async fn free_tasks(
        &mut self,
        tasks: &BTreeSet<String>,
        busy: &BTreeSet<String>,
        req: &mut Requests,
    ) -> Result<BTreeMap<String, u32>, ZkError> {
        let unreported: Vec<String> = tasks
            .iter()
            .filter(|t| !self.held.contains_key(*t) && !busy.contains(*t))
            .cloned()
            .collect();
        let free: BTreeMap<String, u32> = self
            .still_free(&unreported, req)
            .await?
            .into_iter()
            .map(|t| {
                let age = self.ages.get(&t).copied().unwrap_or(0) + 1;
                (t, age)
            })
            .collect();
        self.ages = free.clone();
        Ok(free)
    }

    /// Cold tasks of other groups this core runs (they count against `--max-tasks`).
    fn held_elsewhere(&self) -> usize {
        let prefix = format!("{}/", self.group);
        self.running
            .list()
            .iter()
            .filter(|t| t.contains('/') && !t.starts_with(&prefix))
            .count()
    }

    /// Claims the tasks dealt to this core, in parallel batches, counting
    /// the claims in flight as held; after a lost race the next candidates
    /// are listed again first (a listing is cheaper than a lost claim).
    async fn claim_dealt(
        &mut self,
        dealt: &[crate::scan::Claim],
        mut held: usize,
        req: &mut Requests,
    ) -> Claims {
        let mut out = Claims::default();
        let mut remaining: Vec<&crate::scan::Claim> = dealt.iter().collect();
        while out.failure.is_none() {
            let mut batch = Vec::new();
            remaining.retain(|c| {
                let take = batch.len() < CLAIM_BATCH && held + batch.len() < c.below;
                if take {
                    batch.push(c.task.clone());
                }
                !take
            });
            if batch.is_empty() {
                break;
            }
            if out.lost > 0 {
                match self.still_free(&batch, req).await {
                    Ok(b) => batch = b,
                    Err(e) => {
                        out.failure = Some(e);
                        break;
                    }
                }
            }
            let group = self.group.clone();
            let results = futures::future::join_all(
                batch
                    .iter()
                    .map(|t| claim(&self.env, &group, t, self.bare.contains(t))),
            )
            .await;
            for (t, (result, r)) in batch.iter().zip(results) {
                req.reads += r.reads;
                req.writes += r.writes;
                match result {
                    Ok(Some(inst)) => {
                        tracing::info!(group = %group, task = %t, instance = %inst.name, "claimed task");
                        self.start(t, inst);
                        held += 1;
                        out.claimed += 1;
                    }
                    Ok(None) => out.lost += 1,
                    Err(e) => out.failure = Some(e),
                }
            }
        }
        out.held = held;
        out
    }

    /// The tasks of `names` that have no instance, listed a batch at a time.
    async fn still_free(
        &mut self,
        names: &[String],
        req: &mut Requests,
    ) -> Result<Vec<String>, ZkError> {
        let zk = self.env.zk.clone();
        let mut out = Vec::new();
        for batch in names.chunks(CLAIM_BATCH) {
            let paths = batch
                .iter()
                .map(|t| TaskRef::cold(&self.group, t).map(|task| zk.layout().instances(&task)))
                .collect::<Result<Vec<_>, _>>()?;
            let listed =
                futures::future::join_all(paths.iter().map(|p| zk.client().list_children(p))).await;
            req.reads += batch.len() as u32;
            for ((t, path), children) in batch.iter().zip(&paths).zip(listed) {
                match children {
                    Ok(c) if c.is_empty() => out.push(t.clone()),
                    Ok(_) => {}
                    // never claimed: its first claim creates the instances node
                    Err(ZkClientError::NoNode) => {
                        self.bare.insert(t.clone());
                        out.push(t.clone());
                    }
                    Err(e) => return Err(ZkError::op("list", path, e)),
                }
            }
        }
        Ok(out)
    }

    fn stop(&mut self, task: &str) {
        if let Some(h) = self.held.get_mut(task) {
            h.release.cancel();
            h.releasing = true;
        }
    }

    /// Runs a claimed task in a tracked task of its own.
    fn start(&mut self, name: &str, inst: Instance) {
        let task = TaskRef::cold(&self.group, name).expect("validated by the scan");
        let release = CancellationToken::new();
        let env = TaskEnv {
            release: release.clone(),
            ..self.env.clone()
        };
        let running = self.running.clone();
        let coordination_only = self.opts.coordination_only;
        running.set(&task, true);
        let handle = tokio::spawn(async move {
            let node = inst.clone();
            let end = if coordination_only {
                hold_only(&env, inst).await
            } else {
                hot::run_task(env, task.clone(), Mode::Cold, Some(inst)).await
            };
            match end {
                Ok(TaskEnd::SessionLost) => {}
                Ok(end) => {
                    tracing::info!(task = %task, end = ?end, "cold task ended");
                    node.delete().await.ok();
                }
                Err(e) => {
                    tracing::warn!(task = %task, error = %e, "cold task ended with a ZooKeeper error");
                    // leave the task to the next scan of any core
                    node.delete().await.ok();
                }
            }
            running.set(&task, false);
        });
        self.held.insert(
            name.to_string(),
            Held {
                release,
                handle,
                releasing: false,
            },
        );
    }
}

/// Creates this core's instance of `group/name` and keeps it only when it is
/// the smallest; also returns the requests it made. `bare`: the task was
/// never claimed, so its instances node is created first.
async fn claim(
    env: &TaskEnv,
    group: &str,
    name: &str,
    bare: bool,
) -> (Result<Option<Instance>, ZkError>, Requests) {
    let mut req = Requests::default();
    let result = claim_counted(env, group, name, bare, &mut req).await;
    (result, req)
}

async fn claim_counted(
    env: &TaskEnv,
    group: &str,
    name: &str,
    bare: bool,
    req: &mut Requests,
) -> Result<Option<Instance>, ZkError> {
    let zk = &env.zk;
    let task = TaskRef::cold(group, name)?;
    let instances = zk.layout().instances(&task);
    let mut bare = bare;
    let inst = loop {
        if bare {
            // no task node any more: it was deleted meanwhile
            req.writes += 1;
            match zk.create_if_absent(&instances, b"").await {
                Err(e) if is_no_node(&e) => return Ok(None),
                r => r?,
            };
        }
        req.writes += 1;
        match Instance::create(zk, &task, &env.host).await {
            Ok(i) => break i,
            Err(e) if is_no_node(&e) && !bare => bare = true,
            Err(e) if is_no_node(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    };
    req.reads += 1;
    let children = match zk.children(&instances).await {
        Ok(c) => c,
        Err(e) => {
            // do not leave a node that holds the task while nobody runs it
            inst.delete().await.ok();
            return Err(e);
        }
    };
    match decide(&children, &inst.name) {
        Role::Leader => Ok(Some(inst)),
        _ => {
            req.writes += 1;
            inst.delete().await?;
            Ok(None)
        }
    }
}

/// Coordination-only mode: hold the claim (RUNNING) until released.
async fn hold_only(env: &TaskEnv, mut inst: Instance) -> Result<TaskEnd, ZkError> {
    inst.set_state(InstanceState::Running).await?;
    tokio::select! {
        _ = env.release.cancelled() => { inst.delete().await?; Ok(TaskEnd::Released) }
        _ = env.shutdown.cancelled() => { inst.delete().await?; Ok(TaskEnd::Shutdown) }
        _ = env.session_lost.cancelled() => Ok(TaskEnd::SessionLost),
    }
}
