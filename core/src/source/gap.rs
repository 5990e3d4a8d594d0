//! Why a run cannot resume on the source server it reached after a
//! failover ([`super::failover`]), as the task reports it: a definite
//! error (`DefiniteError::SourceGap`) that names the gap and how to accept
//! it. Apart from the decision so that the Core's error type can name it.

use crate::decode::Flavor;
use replicator_common::gtid::GtidSet;
use replicator_common::nodes::SourceServer;

/// Why a run cannot resume on the server it reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    #[error("the source server changed from {from} to {to} but the context has no GTID state to resume from (a file/pos of one server means nothing on another); enable GTIDs on the source, or delete the task's context to start over from source.start")]
    NoGtid { from: String, to: String },
    #[error("the source server changed from {from} to {to} and its GTIDs do not continue the context: {gap}; to accept the gap and resume from what {to} has, run `replicatorctl task accept-gap TASK` (POST /api/v1/tasks/TASK/accept-gap)")]
    Gap {
        from: String,
        to: String,
        gap: String,
    },
    /// The context's GTIDs are of the other source flavour (MariaDB against
    /// MySQL): the task was pointed at another kind of server.
    /// The server refused the context's GTID state when the stream opened
    /// (error 1236: not in its binlog).
    #[error("{server} does not hold the context's GTID state {gtid} in its binlog ({message}): it lacks transactions the task published (a lagging replica was promoted and wrote its own) or purged them; to accept the gap and resume from what it has, run `replicatorctl task accept-gap TASK` (POST /api/v1/tasks/TASK/accept-gap)")]
    NotInBinlog {
        server: String,
        gtid: GtidSet,
        message: String,
    },
    #[error("the source server changed from {from} to {to}, a {flavor:?} server, but the context's GTID state {context} is of the other flavour; delete the task's context to start over from source.start")]
    MixedFlavours {
        from: String,
        to: String,
        flavor: Flavor,
        context: GtidSet,
    },
}

/// `server_id:1 (127.0.0.1:3306)`.
pub(super) fn describe(s: &SourceServer) -> String {
    if s.addr.is_empty() {
        s.id.clone()
    } else {
        format!("{} ({})", s.id, s.addr)
    }
}
