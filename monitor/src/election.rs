//! Monitor leader election: lowest sequence wins (docs/design.md §3, §4 recipe).
//!
//! Each monitor creates `/monitor/leader/<host>-<seq>` EPHEMERAL_SEQUENTIAL.
//! The smallest sequence is the leader; every other monitor watches only the
//! node just before its own, so one monitor going away wakes one other.
//! [`decide`] is the pure part and `replicator_common::candidacy` the
//! register / list / watch-predecessor round shared with the Core's task
//! instances; [`campaign`] runs it for one ZooKeeper session and publishes leadership on a `watch` channel. The node vanishes
//! with the session (crash) or on shutdown (session closed), and the next
//! monitor takes over within its watch round trip (crash: once the session
//! expires).

use replicator_common::candidacy::{self, Standing};
use replicator_common::zk::{is_terminal, Zk, ZkError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
    let mut own = candidacy::register(zk, &dir, host, b"").await?;
    tracing::info!(candidate = %own, "standing for monitor leader");
    let mut announced: Option<String> = None;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        // a leader watches its own node: its deletion (or the session's
        // end) is the next thing to act on
        let (watch_path, watcher, role) = match candidacy::stand(zk, &dir, &own).await? {
            Standing::Gone => {
                leader.send_replace(false);
                if is_terminal(zk.state()) {
                    return Ok(());
                }
                own = candidacy::register(zk, &dir, host, b"").await?;
                tracing::info!(candidate = %own, "leader candidate node was gone; registered again");
                continue;
            }
            Standing::Leader => {
                let path = format!("{dir}/{own}");
                match candidacy::watch_exists(zk, &path).await? {
                    Some(w) => (path, w, true),
                    None => continue,
                }
            }
            Standing::Follower {
                predecessor,
                watcher,
            } => (format!("{dir}/{predecessor}"), watcher, false),
        };
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
