//! Reads the cluster from ZooKeeper into a [`Snapshot`].
//!
//! One pass is four batched multi-reads (ZooKeeper `multiRead`, 3.6+), level
//! by level: the top lists (`/tasks`, `/task-groups`, `/cores`, `/alerts`);
//! the groups, cores and alerts; every task's node, control, instances list
//! and context; every instance node. A cluster of a thousand tasks costs a
//! few dozen round trips per pass, whatever its shape, and each level is read
//! at one instant. A node that vanishes between two levels is simply absent.
//! Sources are not queried here: the latest sample of [`crate::source`] is
//! attached to each RUNNING task.

use crate::snapshot::{ConfigState, ContextState, InstanceSnapshot, Snapshot, TaskSnapshot};
use crate::source::Sources;
use replicator_common::names::validate_name;
use replicator_common::nodes::{Alert, Control, CoreInfo, InstanceInfo, Progress};
use replicator_common::paths::{InstanceName, TaskRef};
use replicator_common::task_node::{parse_task_node, TaskNodeError};
use replicator_common::zk::{Zk, ZkClientError, ZkError};
use zookeeper_client::MultiReadResult;

/// Operations per multi-read request (keeps responses far below jute.maxbuffer).
const BATCH: usize = 100;

enum Read {
    Data(String),
    Children(String),
}

enum Got {
    Data(Vec<u8>),
    Children(Vec<String>),
    Missing,
}

impl Got {
    fn children(self) -> Vec<String> {
        match self {
            Got::Children(c) => c,
            _ => Vec::new(),
        }
    }
    fn data(self) -> Option<Vec<u8>> {
        match self {
            Got::Data(d) => Some(d),
            _ => None,
        }
    }
}

async fn read_all(zk: &Zk, ops: Vec<Read>) -> Result<Vec<Got>, ZkError> {
    let mut out = Vec::with_capacity(ops.len());
    for chunk in ops.chunks(BATCH) {
        let mut reader = zk.client().new_multi_reader();
        for op in chunk {
            let (r, path) = match op {
                Read::Data(p) => (reader.add_get_data(p), p),
                Read::Children(p) => (reader.add_get_children(p), p),
            };
            r.map_err(|e| ZkError::op("read", path, e))?;
        }
        let path = |op: &Read| match op {
            Read::Data(p) | Read::Children(p) => p.clone(),
        };
        let results = reader
            .commit()
            .await
            .map_err(|e| ZkError::op("multi-read", &path(&chunk[0]), e))?;
        for (op, res) in chunk.iter().zip(results) {
            out.push(match res {
                MultiReadResult::Data { data, .. } => Got::Data(data),
                MultiReadResult::Children { children } => Got::Children(children),
                MultiReadResult::Error {
                    err: ZkClientError::NoNode,
                } => Got::Missing,
                MultiReadResult::Error { err } => {
                    return Err(ZkError::op("multi-read", &path(op), err))
                }
                _ => Got::Missing,
            });
        }
    }
    Ok(out)
}

/// Reads one snapshot: the top lists, then the groups, cores and alerts,
/// then every task's nodes, then every instance node, each level one
/// batched read; then each task's snapshot.
pub async fn collect(zk: &Zk, sources: &Sources) -> Result<Snapshot, ZkError> {
    let top = read_top(zk).await?;
    let mut snap = Snapshot::default();
    let tasks = read_groups_cores_alerts(zk, top, &mut snap).await?;
    let tasks = read_tasks(zk, tasks).await?;
    let instances = read_instances(zk, &tasks).await?;
    for (read, instances) in tasks.into_iter().zip(instances) {
        snap.tasks.push(task_snapshot(read, instances, sources));
    }
    Ok(snap)
}

/// The valid names under `/tasks`, `/task-groups`, `/cores` and `/alerts`.
struct Top {
    hot: Vec<String>,
    groups: Vec<String>,
    cores: Vec<String>,
    alerts: Vec<String>,
}

/// Level 1: the top lists.
async fn read_top(zk: &Zk) -> Result<Top, ZkError> {
    let l = zk.layout();
    let mut top = read_all(
        zk,
        vec![
            Read::Children(l.tasks()),
            Read::Children(l.groups()),
            Read::Children(l.cores()),
            Read::Children(l.alerts()),
        ],
    )
    .await?
    .into_iter();
    let mut next = || valid(top.next().map(Got::children).unwrap_or_default());
    Ok(Top {
        hot: next(),
        groups: next(),
        cores: next(),
        alerts: next(),
    })
}

/// Level 2: each group's task list, each core node and each alert node.
/// Fills the cores and alerts of `snap`; returns every task, sorted.
async fn read_groups_cores_alerts(
    zk: &Zk,
    top: Top,
    snap: &mut Snapshot,
) -> Result<Vec<TaskRef>, ZkError> {
    let l = zk.layout();
    let mut ops = Vec::new();
    for g in &top.groups {
        ops.push(Read::Children(l.group(g)?));
    }
    for c in &top.cores {
        ops.push(Read::Data(l.core(c)?));
    }
    for a in &top.alerts {
        ops.push(Read::Data(l.alert(a)?));
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    let mut tasks: Vec<TaskRef> = top
        .hot
        .iter()
        .filter_map(|t| TaskRef::hot(t).ok())
        .collect();
    for g in &top.groups {
        let names = got.next().map(Got::children).unwrap_or_default();
        tasks.extend(valid(names).iter().filter_map(|t| TaskRef::cold(g, t).ok()));
    }
    tasks.sort();
    for c in top.cores {
        if let Some(data) = got.next().and_then(Got::data) {
            snap.cores
                .insert(c, serde_json::from_slice::<CoreInfo>(&data).ok());
        }
    }
    for a in top.alerts {
        let Some(data) = got.next().and_then(Got::data) else {
            continue;
        };
        match read_alert(&a, &data) {
            Some(alert) => snap.alerts.push(alert),
            None => tracing::debug!(alert = %a, "ignoring an alert node that is not Alert JSON"),
        }
    }
    Ok(tasks)
}

/// The alert node `/alerts/<id>`: `None` unless it is Alert JSON of that id.
fn read_alert(id: &str, data: &[u8]) -> Option<Alert> {
    serde_json::from_slice::<Alert>(data)
        .ok()
        .filter(|alert| alert.id == id)
}

/// One task as read at level 3, before its instance nodes.
struct TaskNodes {
    task: TaskRef,
    node: Vec<u8>,
    control: Option<Vec<u8>>,
    /// Its instances' names and sequence numbers, in sequence order.
    instances: Vec<(String, i64)>,
    context: Option<Got>,
}

/// Level 3: each task's node, control, instances list and context; a task
/// whose node is gone (deleted meanwhile) is left out.
async fn read_tasks(zk: &Zk, tasks: Vec<TaskRef>) -> Result<Vec<TaskNodes>, ZkError> {
    let l = zk.layout();
    let mut ops = Vec::new();
    for t in &tasks {
        ops.push(Read::Data(l.task(t)));
        ops.push(Read::Data(l.control(t)));
        ops.push(Read::Children(l.instances(t)));
        ops.push(Read::Data(l.context(t)));
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    let mut read = Vec::new();
    for task in tasks {
        let (node, control, instances, context) = (got.next(), got.next(), got.next(), got.next());
        let Some(node) = node.and_then(Got::data) else {
            continue; // deleted meanwhile
        };
        read.push(TaskNodes {
            task,
            node,
            control: control.and_then(Got::data),
            instances: instance_names(instances.map(Got::children).unwrap_or_default()),
            context,
        });
    }
    Ok(read)
}

/// The children that are instance names, with their sequence numbers, in
/// sequence order (hand-made nodes are ignored).
fn instance_names(children: Vec<String>) -> Vec<(String, i64)> {
    let mut names: Vec<(String, i64)> = children
        .into_iter()
        .filter_map(|c| InstanceName::parse(&c).map(|n| (c, n.seq)))
        .collect();
    names.sort_by_key(|n| n.1);
    names
}

/// Level 4: every instance node, per task in the order of `tasks`; an
/// instance whose node is gone is left out.
async fn read_instances(
    zk: &Zk,
    tasks: &[TaskNodes],
) -> Result<Vec<Vec<InstanceSnapshot>>, ZkError> {
    let l = zk.layout();
    let mut ops = Vec::new();
    for t in tasks {
        for (name, _) in &t.instances {
            ops.push(Read::Data(format!("{}/{name}", l.instances(&t.task))));
        }
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    let mut instance = |name: &String, seq: i64| {
        let data = got.next().and_then(Got::data)?;
        Some(InstanceSnapshot {
            name: name.clone(),
            seq,
            info: serde_json::from_slice::<InstanceInfo>(&data).ok(),
        })
    };
    Ok(tasks
        .iter()
        .map(|t| {
            t.instances
                .iter()
                .filter_map(|(name, seq)| instance(name, *seq))
                .collect()
        })
        .collect())
}

/// One task's snapshot from what was read; a RUNNING task that is not
/// paused gets the latest sample of its source.
fn task_snapshot(
    read: TaskNodes,
    instances: Vec<InstanceSnapshot>,
    sources: &Sources,
) -> TaskSnapshot {
    let mut t = TaskSnapshot {
        desired: read
            .control
            .map(|d| read_control(&d))
            .unwrap_or_default()
            .desired,
        config: parse_config(&read.node, &read.task),
        instances,
        context: read_context(read.context),
        source: None,
        task: read.task,
    };
    if let (Some(cfg), Some(_), false) = (t.config.config(), t.running(), t.paused()) {
        let server = match &t.context {
            ContextState::Valid(p) => p.server.as_ref(),
            _ => None,
        };
        t.source = sources.lookup(&t.task, &cfg.source, server);
    }
    t
}

fn valid(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| validate_name(n).is_ok())
        .collect()
}

/// The task node as the Cores read it (the same parser as theirs).
pub fn parse_config(data: &[u8], task: &TaskRef) -> ConfigState {
    match parse_task_node(data, task) {
        Ok(cfg) => ConfigState::Valid(Box::new(cfg)),
        Err(TaskNodeError::Empty) => ConfigState::Empty,
        Err(e) => ConfigState::Invalid(e.to_string()),
    }
}

/// The control node as the Cores read it: empty or unreadable means running.
fn read_control(data: &[u8]) -> Control {
    serde_json::from_slice(data).unwrap_or_default()
}

fn read_context(got: Option<Got>) -> ContextState {
    match got {
        Some(Got::Data(d)) => match serde_json::from_slice::<Progress>(&d) {
            Ok(p) => ContextState::Valid(Box::new(p)),
            Err(_) => ContextState::Unreadable,
        },
        _ => ContextState::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks_match_the_cores() {
        let t = TaskRef::hot("orders").unwrap();
        assert!(matches!(parse_config(b"  \n", &t), ConfigState::Empty));
        assert!(
            matches!(parse_config(b"{garbage", &t), ConfigState::Invalid(r) if r.contains("not valid JSON"))
        );
        let good = serde_json::json!({"name": "orders",
            "source": {"host": "h", "user": "u", "password": "secret-pw", "server_id": 1},
            "sink": {"brokers": "k:9092"}});
        assert!(matches!(
            parse_config(good.to_string().as_bytes(), &t),
            ConfigState::Valid(_)
        ));
        let other = TaskRef::hot("other").unwrap();
        assert!(
            matches!(parse_config(good.to_string().as_bytes(), &other), ConfigState::Invalid(r) if r.contains("names `orders`"))
        );
        let cold = TaskRef::cold("g", "orders").unwrap();
        assert!(matches!(
            parse_config(good.to_string().as_bytes(), &cold),
            ConfigState::Invalid(_)
        ));
        let mut bad = good.clone();
        bad["source"]["port"] = serde_json::json!(0);
        match parse_config(bad.to_string().as_bytes(), &t) {
            ConfigState::Invalid(r) => assert!(!r.contains("secret-pw"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn instance_names_in_sequence_order() {
        assert_eq!(instance_names(Vec::new()), []);
        assert_eq!(
            instance_names(vec!["h1-0000000007".into()]),
            [("h1-0000000007".to_string(), 7)]
        );
        let names = instance_names(vec![
            "b-0000000012".into(),
            "hand-made".into(),
            "a-0000000003".into(),
            "c-12".into(),
            "a-b-0000000005".into(),
        ]);
        assert_eq!(
            names,
            [
                ("a-0000000003".to_string(), 3),
                ("a-b-0000000005".to_string(), 5),
                ("b-0000000012".to_string(), 12),
            ]
        );
    }

    #[test]
    fn alerts_are_read_only_under_their_own_id() {
        let alert = Alert {
            id: "lag-orders".into(),
            rule: "lag".into(),
            task: Some("orders".into()),
            core: None,
            severity: replicator_common::nodes::Severity::Warning,
            state: replicator_common::nodes::AlertState::Firing,
            since_ms: 1,
            message: "behind".into(),
        };
        let data = serde_json::to_vec(&alert).unwrap();
        assert_eq!(read_alert("lag-orders", &data), Some(alert));
        assert_eq!(read_alert("lag-other", &data), None);
        assert_eq!(read_alert("lag-orders", b"{garbage"), None);
        assert_eq!(read_alert("lag-orders", b""), None);
    }

    #[test]
    fn control_and_context_read_leniently() {
        assert_eq!(read_control(b""), Control::default());
        assert_eq!(
            read_control(br#"{"desired":"paused"}"#).desired,
            replicator_common::nodes::Desired::Paused
        );
        assert_eq!(read_context(None), ContextState::Missing);
        assert_eq!(
            read_context(Some(Got::Data(Vec::new()))),
            ContextState::Unreadable
        );
    }
}
