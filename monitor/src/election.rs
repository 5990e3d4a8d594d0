//! Monitor leader election: lowest sequence wins (docs/design.md §3, §4 recipe).
//!
//! Each monitor creates `/monitor/leader/<host>-<seq>` EPHEMERAL_SEQUENTIAL.
//! The smallest sequence is the leader; every other monitor watches only the
//! node just before its own, so one monitor going away wakes one other.
//! [`decide`] is the pure part; [`campaign`] runs it for one ZooKeeper
//! session and publishes leadership on a `watch` channel. The node vanishes
//! with the session (crash) or on shutdown (session closed), and the next
//! monitor takes over within its watch round trip (crash: once the session
//! expires).

use replicator_common::zk::{is_terminal, Zk, ZkError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::CreateMode;

pub use replicator_common::election::{decide, Role};

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
