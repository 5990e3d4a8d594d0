//! The ZooKeeper side of a lowest-sequence election, shared by task
//! instances (Core, docs/design.md §4) and monitor leaders (§3).
//!
//! A candidate registers an EPHEMERAL_SEQUENTIAL child `<host>-<seq>` under
//! a directory ([`register`]); each round lists the children, decides the
//! role with the pure [`crate::election::decide`], and a follower sets a
//! watch on its predecessor only ([`stand`]). A predecessor that left
//! between the list and the watch makes the round start again, so a
//! returned watcher always watches a node that existed. What a role means
//! (run the pipeline, publish leadership) is the caller's.

use crate::election::{decide, Role};
use crate::zk::{Zk, ZkError};
use zookeeper_client::{CreateMode, OneshotWatcher};

/// The outcome of one election round for `own`.
#[derive(Debug)]
pub enum Standing {
    /// `own` has the smallest sequence.
    Leader,
    /// Wait for `watcher` (set on `predecessor`, the child just before `own`).
    Follower {
        predecessor: String,
        watcher: OneshotWatcher,
    },
    /// `own` is not among the children (session expired or node deleted).
    Gone,
}

/// Creates `<dir>/<host>-<seq>` EPHEMERAL_SEQUENTIAL with `data`; returns
/// the child name `<host>-<seq>`. `dir` must exist.
pub async fn register(zk: &Zk, dir: &str, host: &str, data: &[u8]) -> Result<String, ZkError> {
    let prefix = format!("{dir}/{host}-");
    let (_, seq) = zk
        .client()
        .create(&prefix, data, &zk.options(CreateMode::EphemeralSequential))
        .await
        .map_err(|e| ZkError::op("create", &prefix, e))?;
    Ok(format!("{host}-{seq}"))
}

/// One election round: list `dir`, decide `own`'s role, and for a follower
/// watch the predecessor (listing again if it left in between).
pub async fn stand(zk: &Zk, dir: &str, own: &str) -> Result<Standing, ZkError> {
    loop {
        let children = zk.children(dir).await?;
        match decide(&children, own) {
            Role::Gone => return Ok(Standing::Gone),
            Role::Leader => return Ok(Standing::Leader),
            Role::Follower { watch } => {
                if let Some(watcher) = watch_exists(zk, &format!("{dir}/{watch}")).await? {
                    return Ok(Standing::Follower {
                        predecessor: watch,
                        watcher,
                    });
                }
            }
        }
    }
}

/// A watch on `path` while it exists; `None` when it does not.
pub async fn watch_exists(zk: &Zk, path: &str) -> Result<Option<OneshotWatcher>, ZkError> {
    let (stat, watcher) = zk
        .client()
        .check_and_watch_stat(path)
        .await
        .map_err(|e| ZkError::op("watch", path, e))?;
    Ok(stat.map(|_| watcher))
}
