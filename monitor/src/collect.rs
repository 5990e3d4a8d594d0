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

/// Reads one snapshot.
pub async fn collect(zk: &Zk, sources: &Sources) -> Result<Snapshot, ZkError> {
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
    let mut next = || top.next().map(Got::children).unwrap_or_default();
    let (hot, groups, cores, alerts) = (valid(next()), valid(next()), valid(next()), valid(next()));

    // level 2: groups, cores, alerts
    let mut ops = Vec::new();
    for g in &groups {
        ops.push(Read::Children(l.group(g)?));
    }
    for c in &cores {
        ops.push(Read::Data(l.core(c)?));
    }
    for a in &alerts {
        ops.push(Read::Data(l.alert(a)?));
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    let mut tasks: Vec<TaskRef> = hot.iter().filter_map(|t| TaskRef::hot(t).ok()).collect();
    for g in &groups {
        let names = got.next().map(Got::children).unwrap_or_default();
        tasks.extend(valid(names).iter().filter_map(|t| TaskRef::cold(g, t).ok()));
    }
    tasks.sort();
    let mut snap = Snapshot::default();
    for c in cores {
        if let Some(data) = got.next().and_then(Got::data) {
            snap.cores
                .insert(c, serde_json::from_slice::<CoreInfo>(&data).ok());
        }
    }
    for a in alerts {
        let Some(data) = got.next().and_then(Got::data) else {
            continue;
        };
        match serde_json::from_slice::<Alert>(&data) {
            Ok(alert) if alert.id == a => snap.alerts.push(alert),
            _ => tracing::debug!(alert = %a, "ignoring an alert node that is not Alert JSON"),
        }
    }

    // level 3: each task's node, control, instances, context
    let mut ops = Vec::new();
    for t in &tasks {
        ops.push(Read::Data(l.task(t)));
        ops.push(Read::Data(l.control(t)));
        ops.push(Read::Children(l.instances(t)));
        ops.push(Read::Data(l.context(t)));
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    let mut partial = Vec::new();
    for t in tasks {
        let (node, control, instances, context) = (got.next(), got.next(), got.next(), got.next());
        let Some(node) = node.and_then(Got::data) else {
            continue; // deleted meanwhile
        };
        let mut names: Vec<(String, i64)> = instances
            .map(Got::children)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| InstanceName::parse(&c).map(|n| (c, n.seq)))
            .collect();
        names.sort_by_key(|n| n.1);
        partial.push((t, node, control.and_then(Got::data), names, context));
    }

    // level 4: instance nodes
    let mut ops = Vec::new();
    for (t, _, _, names, _) in &partial {
        for (name, _) in names {
            ops.push(Read::Data(format!("{}/{name}", l.instances(t))));
        }
    }
    let mut got = read_all(zk, ops).await?.into_iter();
    for (task, node, control, names, context) in partial {
        let mut instances = Vec::new();
        for (name, seq) in names {
            let data = got.next().and_then(Got::data);
            let Some(data) = data else { continue };
            instances.push(InstanceSnapshot {
                name,
                seq,
                info: serde_json::from_slice::<InstanceInfo>(&data).ok(),
            });
        }
        let config = parse_config(&node, &task);
        let mut t = TaskSnapshot {
            desired: control
                .map(|d| read_control(&d))
                .unwrap_or_default()
                .desired,
            config,
            instances,
            context: read_context(context),
            source: None,
            task,
        };
        if let (Some(cfg), Some(_), false) = (t.config.config(), t.running(), t.paused()) {
            let server = match &t.context {
                ContextState::Valid(p) => p.server.as_ref(),
                _ => None,
            };
            t.source = sources.lookup(&t.task, &cfg.source, server);
        }
        snap.tasks.push(t);
    }
    Ok(snap)
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
