//! The task znodes (docs/design.md §3) as the Server reads and writes them.
//!
//! In: validated configs and task references from [`crate::api`]. Out: raw
//! znode data ([`RawTask`]) for [`crate::status`], new versions, typed
//! [`StoreError`]s. Every write is one ZooKeeper operation or one multi-op,
//! so a Core never sees half of a change:
//! - create: the missing parents, the task node (config) and its `control`
//!   node in one multi; a task node a Core registered empty is filled in
//!   with a version-checked `setData`;
//! - update: `setData` with the version of `If-Match` (stale: 409);
//! - delete: every descendant (deepest first) and the task node in one
//!   multi, listed again and retried when an instance came or went meanwhile;
//! - pause, resume, switchover: version-checked read-modify-write of
//!   `control`.
//!
//! Every node is created with [`Zk::acls`]: creator-only when the session is
//! authenticated (`--zk-auth`), open otherwise. The session is opened again
//! when it expires; while ZooKeeper is unreachable requests fail with
//! [`StoreError::Zk`], which the API turns into 503.

use crate::error::StoreError;
use crate::snapshot::Refused;
use crate::status::RawTask;
use futures::{StreamExt, TryStreamExt};
use replicator_common::config::TaskConfig;
use replicator_common::nodes::{Control, Desired, Progress, SnapshotRequest};
use replicator_common::paths::{Layout, TaskRef};
use replicator_common::zk::{connect, is_terminal, Zk, ZkClientError, ZkOptions};
use tokio::sync::Mutex;
use zookeeper_client::CreateMode;

/// How many times a write is retried when the znodes changed under it.
const RETRIES: usize = 20;
/// Concurrent task reads of a listing.
const READ_CONCURRENCY: usize = 16;

/// What to do to a task's control node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlChange {
    Pause,
    Resume,
    Switchover,
    /// Accept the GTID gap the task stopped on (one use per bump).
    AcceptGap,
}

impl ControlChange {
    /// The control after the change; `None` when nothing changes.
    pub fn apply(self, c: Control) -> Option<Control> {
        match self {
            ControlChange::Pause if c.desired == Desired::Paused => None,
            ControlChange::Resume if c.desired == Desired::Running => None,
            ControlChange::Pause => Some(Control {
                desired: Desired::Paused,
                ..c
            }),
            ControlChange::Resume => Some(Control {
                desired: Desired::Running,
                ..c
            }),
            ControlChange::Switchover => Some(Control {
                switchover: c.switchover + 1,
                ..c
            }),
            ControlChange::AcceptGap => Some(Control {
                accept_gap: c.accept_gap + 1,
                ..c
            }),
        }
    }
}

/// The Server's view of the task znodes.
pub struct Store {
    opts: ZkOptions,
    session: Mutex<Option<Zk>>,
}

impl Store {
    /// Opens the session and makes sure the root, `/tasks` and
    /// `/task-groups` exist (with this identity's ACLs when they are new).
    pub async fn open(opts: ZkOptions) -> Result<Store, StoreError> {
        let zk = connect(&opts).await?;
        let layout = zk.layout().clone();
        zk.ensure_path(&layout.tasks()).await?;
        zk.ensure_path(&layout.groups()).await?;
        if opts.auth.is_some() {
            warn_if_open(&zk, layout.root()).await;
        }
        Ok(Store {
            opts,
            session: Mutex::new(Some(zk)),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.opts.layout
    }

    /// State of the session, for `/healthz` (`Connecting` while a new
    /// session is being opened).
    pub async fn session_state(&self) -> String {
        match self.session.try_lock() {
            Ok(g) => g
                .as_ref()
                .map_or("Closed".to_string(), |zk| format!("{:?}", zk.state())),
            Err(_) => "Connecting".to_string(),
        }
    }

    /// The live session, opened again when the last one expired.
    async fn zk(&self) -> Result<Zk, StoreError> {
        let mut guard = self.session.lock().await;
        if let Some(zk) = guard.as_ref() {
            if !is_terminal(zk.state()) {
                return Ok(zk.clone());
            }
            tracing::warn!(state = ?zk.state(), "ZooKeeper session is over; opening a new one");
        }
        *guard = None;
        let zk = connect(&self.opts).await?;
        tracing::info!("ZooKeeper session opened");
        *guard = Some(zk.clone());
        Ok(zk)
    }

    /// Where task `name` is: in `group` when given, else hot or in any group.
    pub async fn locate(&self, name: &str, group: Option<&str>) -> Result<TaskRef, StoreError> {
        let zk = self.zk().await?;
        if let Some(g) = group {
            let task = TaskRef::cold(g, name).map_err(|_| StoreError::NotFound(name.into()))?;
            return match exists(&zk, &self.layout().task(&task)).await? {
                true => Ok(task),
                false => Err(StoreError::NotFoundInGroup {
                    name: name.into(),
                    group: g.into(),
                }),
            };
        }
        let mut found = self.find_everywhere(&zk, name).await?;
        match found.len() {
            0 => Err(StoreError::NotFound(name.into())),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::Ambiguous {
                name: name.into(),
                places: found
                    .iter()
                    .map(|t| {
                        t.group()
                            .map_or("hot".to_string(), |g| format!("group {g}"))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Every existing task node named `name`: hot, then by group.
    async fn find_everywhere(&self, zk: &Zk, name: &str) -> Result<Vec<TaskRef>, StoreError> {
        let mut candidates =
            vec![TaskRef::hot(name).map_err(|_| StoreError::NotFound(name.into()))?];
        for g in zk.children(&self.layout().groups()).await? {
            if let Ok(t) = TaskRef::cold(&g, name) {
                candidates.push(t);
            }
        }
        let mut found = Vec::new();
        for t in candidates {
            if exists(zk, &self.layout().task(&t)).await? {
                found.push(t);
            }
        }
        Ok(found)
    }

    /// The znodes of one task.
    pub async fn read(&self, task: &TaskRef) -> Result<RawTask, StoreError> {
        let zk = self.zk().await?;
        read_task(&zk, task).await
    }

    /// The znodes of every task (hot first, then by group), read concurrently.
    pub async fn list(&self) -> Result<Vec<RawTask>, StoreError> {
        let zk = self.zk().await?;
        let layout = self.layout();
        let mut tasks: Vec<TaskRef> = sorted(zk.children(&layout.tasks()).await?)
            .iter()
            .filter_map(|n| TaskRef::hot(n).ok())
            .collect();
        for g in sorted(zk.children(&layout.groups()).await?) {
            let Ok(dir) = layout.group(&g) else { continue };
            for n in sorted(zk.children(&dir).await?) {
                if let Ok(t) = TaskRef::cold(&g, &n) {
                    tasks.push(t);
                }
            }
        }
        let read: Vec<Option<RawTask>> = futures::stream::iter(tasks)
            .map(|t| {
                let zk = zk.clone();
                async move {
                    match read_task(&zk, &t).await {
                        Ok(raw) => Ok(Some(raw)),
                        Err(StoreError::NotFound(_)) => Ok(None), // deleted meanwhile
                        Err(e) => Err(e),
                    }
                }
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    /// Creates a task with its control node; returns the task's version.
    /// A name is unique across hot tasks and every group.
    pub async fn create(&self, task: &TaskRef, config: &[u8]) -> Result<i32, StoreError> {
        let zk = self.zk().await?;
        let path = self.layout().task(task);
        let control_path = self.layout().control(task);
        let control = serde_json::to_vec(&Control::default()).expect("control serializes");
        for _ in 0..RETRIES {
            let existing = self.find_everywhere(&zk, task.name()).await?;
            if let Some(other) = existing.iter().find(|t| *t != task) {
                return Err(StoreError::Exists(other.clone()));
            }
            if !existing.is_empty() {
                // registered by a Core before it was configured: fill it in
                match zk.get(&path).await? {
                    Some((data, version)) if is_blank(&data) => {
                        match zk.client().set_data(&path, config, Some(version)).await {
                            Ok(stat) => {
                                zk.create_if_absent(&control_path, &control).await?;
                                return Ok(stat.version);
                            }
                            Err(ZkClientError::BadVersion | ZkClientError::NoNode) => continue,
                            Err(e) => return Err(StoreError::zk("set", &path, e)),
                        }
                    }
                    Some(_) => return Err(StoreError::Exists(task.clone())),
                    None => continue,
                }
            }
            let opts = zk.options(CreateMode::Persistent);
            let mut multi = zk.client().new_multi_writer();
            for parent in missing_ancestors(&zk, &path).await? {
                multi
                    .add_create(&parent, b"", &opts)
                    .map_err(|e| StoreError::zk("create", &parent, e))?;
            }
            multi
                .add_create(&path, config, &opts)
                .map_err(|e| StoreError::zk("create", &path, e))?;
            multi
                .add_create(&control_path, &control, &opts)
                .map_err(|e| StoreError::zk("create", &control_path, e))?;
            match multi.commit().await.map_err(ZkClientError::from) {
                Ok(_) => return Ok(0),
                Err(ZkClientError::NodeExists | ZkClientError::NoNode) => continue,
                Err(e) => return Err(StoreError::zk("create", &path, e)),
            }
        }
        Err(StoreError::Contended(task.clone()))
    }

    /// Replaces the config of an existing task; `version` (from `If-Match`)
    /// makes it conditional. Returns the new version.
    pub async fn update(
        &self,
        task: &TaskRef,
        config: &[u8],
        version: Option<i32>,
    ) -> Result<i32, StoreError> {
        let zk = self.zk().await?;
        let path = self.layout().task(task);
        match zk.client().set_data(&path, config, version).await {
            Ok(stat) => Ok(stat.version),
            Err(ZkClientError::NoNode) => Err(StoreError::NotFound(task.name().into())),
            Err(ZkClientError::BadVersion) => {
                let current = zk
                    .get(&path)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(task.name().into()))?
                    .1;
                Err(StoreError::StaleVersion {
                    task: task.clone(),
                    given: version.unwrap_or(-1),
                    current,
                })
            }
            Err(e) => Err(StoreError::zk("set", &path, e)),
        }
    }

    /// Deletes the task node and everything below it in one multi-op;
    /// returns how many znodes went.
    pub async fn delete(&self, task: &TaskRef) -> Result<usize, StoreError> {
        let zk = self.zk().await?;
        let path = self.layout().task(task);
        for attempt in 0..RETRIES {
            let nodes = subtree_deepest_first(&zk, &path).await?;
            if nodes.is_empty() {
                return match attempt {
                    0 => Err(StoreError::NotFound(task.name().into())),
                    _ => Ok(0), // someone else deleted it meanwhile
                };
            }
            let mut multi = zk.client().new_multi_writer();
            for n in &nodes {
                multi
                    .add_delete(n, None)
                    .map_err(|e| StoreError::zk("delete", n, e))?;
            }
            match multi.commit().await.map_err(ZkClientError::from) {
                Ok(_) => return Ok(nodes.len()),
                Err(ZkClientError::NotEmpty | ZkClientError::NoNode) => {
                    tracing::debug!(task = %task, attempt, "task changed while deleting; listing again");
                }
                Err(e) => return Err(StoreError::zk("delete", &path, e)),
            }
        }
        Err(StoreError::Contended(task.clone()))
    }

    /// Applies `change` to the task's control node; returns the control now in force.
    pub async fn control(
        &self,
        task: &TaskRef,
        change: ControlChange,
    ) -> Result<Control, StoreError> {
        let zk = self.zk().await?;
        let task_path = self.layout().task(task);
        let path = self.layout().control(task);
        for _ in 0..RETRIES {
            if !exists(&zk, &task_path).await? {
                return Err(StoreError::NotFound(task.name().into()));
            }
            let Some((data, version)) = zk.get(&path).await? else {
                let new = change.apply(Control::default()).unwrap_or_default();
                let bytes = serde_json::to_vec(&new).expect("control serializes");
                match zk.create_if_absent(&path, &bytes).await {
                    Ok(true) => return Ok(new),
                    Ok(false) => continue,
                    Err(e) if e.client_error() == Some(&ZkClientError::NoNode) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let current: Control = if is_blank(&data) {
                Control::default()
            } else {
                serde_json::from_slice(&data).unwrap_or_else(|e| {
                    tracing::warn!(task = %task, error = %e, "control node is not valid; rewriting it");
                    Control::default()
                })
            };
            let Some(new) = change.apply(current.clone()) else {
                return Ok(current);
            };
            let bytes = serde_json::to_vec(&new).expect("control serializes");
            match zk.client().set_data(&path, &bytes, Some(version)).await {
                Ok(_) => return Ok(new),
                Err(ZkClientError::BadVersion | ZkClientError::NoNode) => continue,
                Err(e) => return Err(StoreError::zk("set", &path, e)),
            }
        }
        Err(StoreError::Contended(task.clone()))
    }

    /// Writes an on-demand snapshot request for `tables` into the task's
    /// control node (checked by [`crate::snapshot::request`] against the
    /// config, the context and a request not taken in yet).
    pub async fn request_snapshot(
        &self,
        task: &TaskRef,
        tables: &[String],
    ) -> Result<Result<SnapshotRequest, Refused>, StoreError> {
        let zk = self.zk().await?;
        let path = self.layout().control(task);
        for _ in 0..RETRIES {
            let raw = self.read(task).await?;
            let Ok(cfg) = serde_json::from_slice::<TaskConfig>(&raw.config) else {
                return Ok(Err(Refused::NoConfig(task.name().to_string())));
            };
            let progress = raw
                .context
                .as_deref()
                .and_then(|d| serde_json::from_slice::<Progress>(d).ok())
                .and_then(|p| p.snapshot);
            let (data, version) = match zk.get(&path).await? {
                Some(x) => x,
                None => {
                    zk.create_if_absent(&path, b"").await?;
                    continue;
                }
            };
            let mut control: Control = if is_blank(&data) {
                Control::default()
            } else {
                serde_json::from_slice(&data).unwrap_or_default()
            };
            let req = match crate::snapshot::request(&cfg, progress.as_ref(), &control, tables) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            control.snapshot = Some(req.clone());
            let bytes = serde_json::to_vec(&control).expect("control serializes");
            match zk.client().set_data(&path, &bytes, Some(version)).await {
                Ok(_) => return Ok(Ok(req)),
                Err(ZkClientError::BadVersion | ZkClientError::NoNode) => continue,
                Err(e) => return Err(StoreError::zk("set", &path, e)),
            }
        }
        Err(StoreError::Contended(task.clone()))
    }

    /// Every child of `/alerts` and its data.
    pub async fn alerts(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let zk = self.zk().await?;
        children_data(&zk, &self.layout().alerts()).await
    }

    /// Every child of `/cores` (a live Core's CoreInfo) and its data.
    pub async fn cores(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let zk = self.zk().await?;
        children_data(&zk, &self.layout().cores()).await
    }

    /// Every group under `/task-groups` with the names of its tasks, sorted.
    pub async fn groups(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let zk = self.zk().await?;
        let mut out = Vec::new();
        for g in sorted(zk.children(&self.layout().groups()).await?) {
            let Ok(dir) = self.layout().group(&g) else {
                continue;
            };
            let tasks = sorted(zk.children(&dir).await?);
            out.push((g, tasks));
        }
        Ok(out)
    }
}

/// The children of `dir` and their data, sorted by name; children that
/// vanish while being read are left out.
async fn children_data(zk: &Zk, dir: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for id in sorted(zk.children(dir).await?) {
        if let Some((data, _)) = zk.get(&format!("{dir}/{id}")).await? {
            out.push((id, data));
        }
    }
    Ok(out)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn is_blank(d: &[u8]) -> bool {
    d.iter().all(u8::is_ascii_whitespace)
}

async fn exists(zk: &Zk, path: &str) -> Result<bool, StoreError> {
    zk.client()
        .check_stat(path)
        .await
        .map(|s| s.is_some())
        .map_err(|e| StoreError::zk("stat", path, e))
}

async fn read_task(zk: &Zk, task: &TaskRef) -> Result<RawTask, StoreError> {
    let layout = zk.layout();
    let (config, version) = zk
        .get(&layout.task(task))
        .await?
        .ok_or_else(|| StoreError::NotFound(task.name().into()))?;
    let dir = layout.instances(task);
    let mut instances = Vec::new();
    for child in sorted(zk.children(&dir).await?) {
        let data = zk.get(&format!("{dir}/{child}")).await?.map(|(d, _)| d);
        instances.push((child, data));
    }
    let context = zk.get(&layout.context(task)).await?.map(|(d, _)| d);
    let control = zk.get(&layout.control(task)).await?.map(|(d, _)| d);
    Ok(RawTask {
        task: task.clone(),
        config,
        version,
        instances,
        context,
        control,
    })
}

/// Ancestors of `path` below `/` that do not exist yet, outermost first.
async fn missing_ancestors(zk: &Zk, path: &str) -> Result<Vec<String>, StoreError> {
    let mut missing = Vec::new();
    let mut at = path.to_string();
    while let Some((parent, _)) = at.rsplit_once('/') {
        if parent.is_empty() || exists(zk, parent).await? {
            break;
        }
        missing.push(parent.to_string());
        at = parent.to_string();
    }
    missing.reverse();
    Ok(missing)
}

/// `path` and all its descendants, children before their parents; empty
/// when `path` does not exist.
async fn subtree_deepest_first(zk: &Zk, path: &str) -> Result<Vec<String>, StoreError> {
    if !exists(zk, path).await? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut stack = vec![(path.to_string(), false)];
    while let Some((p, expanded)) = stack.pop() {
        if expanded {
            out.push(p);
            continue;
        }
        let children = zk.children(&p).await?;
        stack.push((p.clone(), true));
        for c in children {
            stack.push((format!("{p}/{c}"), false));
        }
    }
    Ok(out)
}

/// Warns when this server authenticates but the root is open to anyone
/// (created earlier without `--zk-auth`): its ACLs do not protect it then.
async fn warn_if_open(zk: &Zk, root: &str) {
    if let Ok((acls, _)) = zk.client().get_acl(root).await {
        if acls.iter().any(|a| a.scheme() == "world") {
            tracing::warn!(root = %root, "the root is open to anyone (created without --zk-auth); its tasks are not protected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_changes() {
        let running = Control::default();
        let paused = ControlChange::Pause.apply(running.clone()).unwrap();
        assert_eq!(paused.desired, Desired::Paused);
        assert_eq!(
            ControlChange::Pause.apply(paused.clone()),
            None,
            "already paused"
        );
        assert_eq!(
            ControlChange::Resume.apply(running),
            None,
            "already running"
        );
        assert_eq!(
            ControlChange::Resume.apply(paused.clone()).unwrap().desired,
            Desired::Running
        );
        let s = ControlChange::Switchover.apply(paused).unwrap();
        assert_eq!((s.desired, s.switchover), (Desired::Paused, 1));
        let a = ControlChange::AcceptGap.apply(s).unwrap();
        assert_eq!(
            (a.desired, a.switchover, a.accept_gap),
            (Desired::Paused, 1, 1)
        );
    }
}
