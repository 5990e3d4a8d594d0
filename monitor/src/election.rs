//! Monitor leader election: lowest sequence wins (DESIGN §3, §4 recipe).
//!
//! Each monitor creates `/monitor/leader/<host>-<seq>` EPHEMERAL_SEQUENTIAL.
//! The smallest sequence is the leader; every other monitor watches only the
//! node just before its own, so one monitor going away wakes one other.
//! [`decide`] is the pure part; [`campaign`] runs it for one ZooKeeper
//! session and publishes leadership on a `watch` channel. The node vanishes
//! with the session (crash) or on shutdown (session closed), and the next
//! monitor takes over within its watch round trip (crash: once the session
//! expires).

use replicator_common::paths::InstanceName;
use replicator_common::zk::{is_terminal, Zk, ZkError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::CreateMode;

/// What a candidate should do after listing the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Watch this child (the predecessor) and wait.
    Follower {
        watch: String,
    },
    /// Own node is not in the list.
    Gone,
}

/// The role of `own` (a child name `<host>-<seq>`) among `children`;
/// children that are not `<host>-<seq>` are ignored.
pub fn decide(children: &[String], own: &str) -> Role {
    let Some(me) = InstanceName::parse(own) else {
        return Role::Gone;
    };
    if !children.iter().any(|c| c == own) {
        return Role::Gone;
    }
    children
        .iter()
        .filter_map(|c| InstanceName::parse(c).map(|n| (n.seq, c)))
        .filter(|(seq, _)| *seq < me.seq)
        .max_by_key(|(seq, _)| *seq)
        .map_or(Role::Leader, |(_, c)| Role::Follower { watch: c.clone() })
}

/// Stands for leader during one session until `stop` or the session ends;
/// `leader` says whether this monitor leads right now.
pub async fn campaign(
    zk: Zk,
    host: String,
    leader: watch::Sender<bool>,
    stop: CancellationToken,
) -> Result<(), ZkError> {
    let result = stand(&zk, &host, &leader, &stop).await;
    leader.send_replace(false);
    result
}

async fn stand(
    zk: &Zk,
    host: &str,
    leader: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> Result<(), ZkError> {
    let dir = zk.layout().monitor_leader();
    zk.ensure_path(&dir).await?;
    let mut own = register(zk, &dir, host).await?;
    tracing::info!(candidate = %own, "standing for monitor leader");
    let mut announced: Option<String> = None;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let children = zk.children(&dir).await?;
        let (watch_path, role) = match decide(&children, &own) {
            Role::Gone => {
                leader.send_replace(false);
                if is_terminal(zk.state()) {
                    return Ok(());
                }
                own = register(zk, &dir, host).await?;
                tracing::info!(candidate = %own, "leader candidate node was gone; registered again");
                continue;
            }
            Role::Leader => (format!("{dir}/{own}"), true),
            Role::Follower { watch } => (format!("{dir}/{watch}"), false),
        };
        let (stat, watcher) = zk
            .client()
            .check_and_watch_stat(&watch_path)
            .await
            .map_err(|e| ZkError::op("watch", &watch_path, e))?;
        if stat.is_none() {
            continue;
        }
        leader.send_replace(role);
        if announced.as_ref() != Some(&watch_path) {
            announced = Some(watch_path.clone());
            if role {
                tracing::info!(candidate = %own, "monitor LEADER");
            } else {
                tracing::info!(candidate = %own, predecessor = %watch_path, "monitor follower");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = watcher.changed() => {
                tracing::debug!(path = %watch_path, event = ?ev.event_type, "leader watch fired");
            }
        }
    }
}

async fn register(zk: &Zk, dir: &str, host: &str) -> Result<String, ZkError> {
    let prefix = format!("{dir}/{host}-");
    let (_, seq) = zk
        .client()
        .create(&prefix, b"", &zk.options(CreateMode::EphemeralSequential))
        .await
        .map_err(|e| ZkError::op("create", &prefix, e))?;
    Ok(format!("{host}-{seq}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lowest_leads_and_each_watches_its_predecessor() {
        let c = v(&["m-b-0000000007", "m-a-0000000003", "m-c-0000000012", "junk"]);
        assert_eq!(decide(&c, "m-a-0000000003"), Role::Leader);
        assert_eq!(
            decide(&c, "m-c-0000000012"),
            Role::Follower {
                watch: "m-b-0000000007".into()
            }
        );
        assert_eq!(
            decide(&c, "m-b-0000000007"),
            Role::Follower {
                watch: "m-a-0000000003".into()
            }
        );
        assert_eq!(decide(&c, "m-d-0000000001"), Role::Gone);
        assert_eq!(decide(&c, "junk"), Role::Gone);
    }

    #[test]
    fn no_node_is_watched_twice() {
        let c: Vec<String> = (0..8).map(|i| format!("m{i}-{:010}", 8 - i)).collect();
        let mut watched: Vec<String> = c
            .iter()
            .filter_map(|own| match decide(&c, own) {
                Role::Follower { watch } => Some(watch),
                _ => None,
            })
            .collect();
        watched.sort();
        watched.dedup();
        assert_eq!(watched.len(), 7);
    }
}
