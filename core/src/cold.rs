//! Cold-standby scanner of one group (DESIGN §5).
//!
//! Every scan interval: list the group's tasks, see which have no instance,
//! count the group's live cores, and let [`crate::scan::plan`] decide. A claim
//! creates this core's EPHEMERAL_SEQUENTIAL instance and lists again: the
//! smallest sequence runs the task (the same pipeline and duplicate-free
//! resume as hot tasks), anyone else deletes its node. A release is a
//! graceful switchover: final clean context, instance deleted, the task left
//! for an underloaded core's next scan. Requests per scan: two listings, one
//! read per live core, one listing per task; a scan that changes nothing
//! writes nothing.

use crate::election::{decide, Role};
use crate::hot::{self, Mode, TaskEnd, TaskEnv};
use crate::instance::Instance;
use crate::runtime::Running;
use crate::scan::{plan, ScanInput};
use replicator_common::nodes::CoreInfo;
use replicator_common::paths::TaskRef;
use replicator_common::zk::ZkError;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
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

struct Held {
    release: CancellationToken,
    handle: JoinHandle<()>,
}

/// Scans `group` until the session ends or the process shuts down.
pub async fn run_group(env: TaskEnv, group: String, opts: ColdOptions, running: Arc<Running>) {
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut previous_free: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(opts.scan_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = env.shutdown.cancelled() => break,
            _ = env.session_lost.cancelled() => break,
        }
        held.retain(|_, h| !h.handle.is_finished());
        match scan_once(&env, &group, &opts, &mut held, &mut previous_free, &running).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(group = %group, error = %e, "scan failed"),
        }
    }
    for (_, h) in held {
        let _ = h.handle.await;
    }
}

async fn scan_once(
    env: &TaskEnv,
    group: &str,
    opts: &ColdOptions,
    held: &mut HashMap<String, Held>,
    previous_free: &mut BTreeSet<String>,
    running: &Arc<Running>,
) -> Result<(), ZkError> {
    let layout = env.zk.layout();
    let group_path = layout.group(group)?;
    let tasks: BTreeSet<String> = env
        .zk
        .children(&group_path)
        .await?
        .into_iter()
        .filter(|t| replicator_common::names::validate_name(t).is_ok())
        .collect();
    let mut cores = BTreeSet::new();
    for c in env.zk.children(&layout.cores()).await? {
        let Ok(path) = layout.core(&c) else { continue };
        if let Some((data, _)) = env.zk.get(&path).await? {
            if let Ok(info) = serde_json::from_slice::<CoreInfo>(&data) {
                if info.groups.iter().any(|g| g == group) {
                    cores.insert(info.host);
                }
            }
        }
    }
    let mut free = BTreeSet::new();
    for t in &tasks {
        if held.contains_key(t) {
            continue;
        }
        let task = TaskRef::cold(group, t).expect("validated above");
        if env.zk.children(&layout.instances(&task)).await?.is_empty() {
            free.insert(t.clone());
        }
    }
    let orphans: BTreeSet<String> = free.intersection(previous_free).cloned().collect();
    let mine: BTreeSet<String> = held.keys().cloned().collect();
    let decision = plan(&ScanInput {
        host: &env.host,
        tasks,
        free: free.clone(),
        orphans,
        mine,
        cores,
        max_tasks: opts.max_tasks,
    });
    *previous_free = free;
    for t in &decision.release {
        if let Some(h) = held.get(t) {
            tracing::info!(group, task = %t, "releasing task to rebalance");
            h.release.cancel();
        }
    }
    for t in decision.claim {
        let task = TaskRef::cold(group, &t).expect("validated above");
        let Some(inst) = claim(env, &task).await? else {
            continue;
        };
        tracing::info!(group, task = %t, instance = %inst.name, "claimed task");
        let release = CancellationToken::new();
        let task_env = TaskEnv {
            release: release.clone(),
            ..env.clone()
        };
        let running = running.clone();
        let coordination_only = opts.coordination_only;
        let handle = tokio::spawn(async move {
            running.set(&task, true);
            let end = if coordination_only {
                hold_only(&task_env, inst).await
            } else {
                hot::run_task(task_env, task.clone(), Mode::Cold, Some(inst)).await
            };
            running.set(&task, false);
            match end {
                Ok(end) => tracing::info!(task = %task, end = ?end, "cold task ended"),
                Err(e) => {
                    tracing::warn!(task = %task, error = %e, "cold task ended with a ZooKeeper error")
                }
            }
        });
        held.insert(t, Held { release, handle });
    }
    Ok(())
}

/// Creates this core's instance and keeps it only when it is the smallest.
async fn claim(env: &TaskEnv, task: &TaskRef) -> Result<Option<Instance>, ZkError> {
    let inst = Instance::register(&env.zk, task, &env.host).await?;
    let children = env.zk.children(&env.zk.layout().instances(task)).await?;
    match decide(&children, &inst.name) {
        Role::Leader => Ok(Some(inst)),
        _ => {
            inst.delete().await?;
            Ok(None)
        }
    }
}

/// Coordination-only mode: hold the claim (RUNNING) until released.
async fn hold_only(env: &TaskEnv, mut inst: Instance) -> Result<TaskEnd, ZkError> {
    inst.set_state(replicator_common::nodes::InstanceState::Running)
        .await?;
    tokio::select! {
        _ = env.release.cancelled() => { inst.delete().await?; Ok(TaskEnd::Released) }
        _ = env.shutdown.cancelled() => { inst.delete().await?; Ok(TaskEnd::Shutdown) }
        _ = env.session_lost.cancelled() => Ok(TaskEnd::SessionLost),
    }
}
