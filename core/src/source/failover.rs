//! Source failover: where to resume when the source server changed, pure.
//!
//! Flow in: the context (its GTID state and the identity of the server its
//! file/pos belong to), the identity and GTID state of the server this run
//! reached (MariaDB `@@gtid_binlog_pos`, MySQL `@@gtid_executed`), and
//! whether an operator accepted a gap. Flow out: a [`Resume`]: at the
//! context's file/pos (same server, or a context of an older version that
//! recorded no server), or from a GTID state (another server: file/pos of one
//! server mean nothing on another).
//!
//! Failure: a [`FailoverError`], a definite error that names the gap. The new
//! server *lacks* transactions the context has (a lagging replica was
//! promoted: what the task published of them does not exist there, and the
//! new server will reuse their sequence numbers), or it has GTIDs of a
//! domain (MariaDB) / source UUID (MySQL) the context never saw (the task
//! cannot know where to start in it). Either way an operator decides; the
//! control's `accept_gap` counter (`replicatorctl task accept-gap`) accepts
//! it once: the run resumes from the new server's GTID state as it is then
//! (what the new server wrote before the acceptance is not published).
//!
//! The check on GTID states sees a lagging replica only while it is behind in
//! sequence numbers; once the promoted server wrote past the context's
//! sequence number its state looks ahead. The server itself then refuses the
//! context's GTID (error 1236, not in its binlog) when the stream opens, and
//! [`gone_after_failover`] turns that into the same definite gap error.

use super::gap::describe;
pub use super::gap::FailoverError;
use crate::decode::Flavor;
use crate::error::{DefiniteError, TaskError};
use replicator_common::gtid::GtidSet;
use replicator_common::gtid_set::MysqlGtidSet;
use replicator_common::nodes::SourceServer;
use replicator_common::position::MariaGtidState;

/// Where a run resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// At the context's file/pos: same server as the context.
    Position,
    /// From this GTID state, on a server other than the context's.
    Gtid {
        state: GtidSet,
        /// An operator accepted a gap: messages of the old server's history
        /// are not comparable with this run's, no duplicate check against them.
        accepted_gap: bool,
    },
}

/// Decides where a run on `here` (whose GTID state is `here_gtid`, of the
/// source's `flavor`) resumes a context written on `ctx_server` with GTID
/// state `ctx_gtid`.
pub fn decide(
    ctx_server: Option<&SourceServer>,
    ctx_gtid: Option<&GtidSet>,
    here: &SourceServer,
    here_gtid: &GtidSet,
    flavor: Flavor,
    accept: bool,
) -> Result<Resume, FailoverError> {
    let Some(old) = ctx_server else {
        return Ok(Resume::Position);
    };
    if old.id == here.id {
        return Ok(Resume::Position);
    }
    let (from, to) = (describe(old), describe(here));
    let Some(ctx_gtid) = ctx_gtid.filter(|g| !g.is_empty()) else {
        return Err(FailoverError::NoGtid { from, to });
    };
    if ctx_gtid.is_mysql() != (flavor == Flavor::MySql) {
        return Err(FailoverError::MixedFlavours {
            from,
            to,
            flavor,
            context: ctx_gtid.clone(),
        });
    }
    if accept {
        // the operator takes the new server as it is now
        return Ok(Resume::Gtid {
            state: here_gtid.clone(),
            accepted_gap: true,
        });
    }
    // the server's empty state has no flavour of its own
    let gap = match (ctx_gtid, here_gtid) {
        (GtidSet::Mariadb(ctx), GtidSet::Mariadb(srv)) => maria_gap(ctx, srv),
        (GtidSet::Mariadb(ctx), _) => maria_gap(ctx, &MariaGtidState::default()),
        (GtidSet::Mysql(ctx), GtidSet::Mysql(srv)) => mysql_gap(ctx, srv),
        (GtidSet::Mysql(ctx), _) => mysql_gap(ctx, &MysqlGtidSet::default()),
    };
    match gap {
        None => Ok(Resume::Gtid {
            state: ctx_gtid.clone(),
            accepted_gap: false,
        }),
        Some(gap) => Err(FailoverError::Gap { from, to, gap }),
    }
}

/// A run that resumed by GTID on another server and was refused its start
/// (server error 1236: the context's GTID is not in that server's binlog)
/// stopped on a gap, not on a purged binlog: say so, and how to accept it.
pub fn gone_after_failover(
    e: TaskError,
    here: &SourceServer,
    ctx_gtid: Option<&GtidSet>,
) -> TaskError {
    match e {
        TaskError::Definite(DefiniteError::BinlogGone(gone)) => {
            DefiniteError::SourceGap(FailoverError::NotInBinlog {
                server: describe(here),
                gtid: ctx_gtid.cloned().unwrap_or_default(),
                message: gone.message,
            })
            .into()
        }
        other => other,
    }
}

/// The gap between a context's MariaDB state and a server's.
fn maria_gap(ctx: &MariaGtidState, srv: &MariaGtidState) -> Option<String> {
    let mut problems = Vec::new();
    for g in ctx.gtids() {
        match srv.gtids().iter().find(|s| s.domain == g.domain) {
            None => {
                problems.push(format!(
                    "it lacks every transaction of domain {} (the context is at {g})",
                    g.domain
                ));
            }
            Some(s) if s.seq < g.seq => {
                problems.push(format!(
                    "it lacks transactions {}-*-{}..={} of domain {} (it is at {s}, the context at {g})",
                    g.domain,
                    s.seq + 1,
                    g.seq,
                    g.domain
                ));
            }
            Some(_) => {}
        }
    }
    for s in srv.gtids() {
        if !ctx.gtids().iter().any(|g| g.domain == s.domain) {
            problems.push(format!(
                "it has GTIDs of domain {} the context never saw (it is at {s})",
                s.domain
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The gap between a context's MySQL GTID set and a server's executed set.
fn mysql_gap(ctx: &MysqlGtidSet, srv: &MysqlGtidSet) -> Option<String> {
    let mut problems = Vec::new();
    let missing = ctx.difference(srv);
    if !missing.is_empty() {
        problems.push(format!("it lacks transactions {missing}"));
    }
    let unknown: Vec<&str> = srv
        .uuids()
        .filter(|u| !ctx.uuids().any(|c| c == *u))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "it has GTIDs of source UUIDs the context never saw: {}",
            srv.only(&unknown)
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransientError;

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    /// `decide` on the sets' text.
    fn decide_on(
        ctx_server: Option<&SourceServer>,
        ctx_gtid: Option<&str>,
        here: &SourceServer,
        here_gtid: &str,
        flavor: Flavor,
        accept: bool,
    ) -> Result<Resume, FailoverError> {
        let ctx_gtid = ctx_gtid.map(set);
        decide(
            ctx_server,
            ctx_gtid.as_ref(),
            here,
            &set(here_gtid),
            flavor,
            accept,
        )
    }

    fn server(id: &str) -> SourceServer {
        SourceServer {
            id: id.into(),
            addr: format!("{id}-host:3306"),
        }
    }

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4f22ab58-82db-22f2-af44-d91bb0530673";

    #[test]
    fn same_server_or_an_old_context_resumes_at_the_position() {
        let s1 = server("server_id:1");
        for ctx in [None, Some(&s1)] {
            assert_eq!(
                decide_on(ctx, Some("0-1-5"), &s1, "0-1-9", Flavor::MariaDb, false),
                Ok(Resume::Position)
            );
        }
        // even without GTIDs
        assert_eq!(
            decide_on(Some(&s1), None, &s1, "", Flavor::MariaDb, false),
            Ok(Resume::Position)
        );
    }

    #[test]
    fn another_server_resumes_by_gtid_when_it_continues_the_context() {
        let (s1, s2) = (server("server_id:1"), server("server_id:2"));
        // the promoted replica has everything and more (its own writes)
        for here in ["0-1-100", "0-2-130", "0-1-100,"] {
            assert_eq!(
                decide_on(
                    Some(&s1),
                    Some("0-1-100"),
                    &s2,
                    here,
                    Flavor::MariaDb,
                    false
                ),
                Ok(Resume::Gtid {
                    state: set("0-1-100"),
                    accepted_gap: false
                }),
                "{here}"
            );
        }
        // several domains
        assert_eq!(
            decide_on(
                Some(&s1),
                Some("0-1-100,1-1-7"),
                &s2,
                "0-2-101,1-1-7",
                Flavor::MariaDb,
                false
            ),
            Ok(Resume::Gtid {
                state: set("0-1-100,1-1-7"),
                accepted_gap: false
            })
        );
    }

    #[test]
    fn a_lagging_replica_is_a_gap_naming_the_missing_gtids() {
        let (s1, s2) = (server("server_id:1"), server("server_id:2"));
        let e = decide_on(
            Some(&s1),
            Some("0-1-120"),
            &s2,
            "0-1-100",
            Flavor::MariaDb,
            false,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("lacks transactions 0-*-101..=120 of domain 0"),
            "{text}"
        );
        assert!(
            text.contains("server_id:1 (server_id:1-host:3306)"),
            "{text}"
        );
        assert!(text.contains("replicatorctl task accept-gap"), "{text}");
        // a server without the domain at all
        let e = decide_on(Some(&s1), Some("0-1-120"), &s2, "", Flavor::MariaDb, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("lacks every transaction of domain 0"),
            "{e}"
        );
        // accepted: resume from where the new server is
        assert_eq!(
            decide_on(
                Some(&s1),
                Some("0-1-120,1-1-3"),
                &s2,
                "0-1-100,1-1-3",
                Flavor::MariaDb,
                true
            ),
            Ok(Resume::Gtid {
                state: set("0-1-100,1-1-3"),
                accepted_gap: true
            })
        );
    }

    #[test]
    fn an_unknown_domain_is_a_gap() {
        let (s1, s2) = (server("server_id:1"), server("server_id:2"));
        let e = decide_on(
            Some(&s1),
            Some("0-1-5"),
            &s2,
            "0-1-5,7-2-40",
            Flavor::MariaDb,
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("domain 7 the context never saw (it is at 7-2-40)"),
            "{e}"
        );
        assert_eq!(
            decide_on(
                Some(&s1),
                Some("0-1-5"),
                &s2,
                "0-1-5,7-2-40",
                Flavor::MariaDb,
                true
            ),
            Ok(Resume::Gtid {
                state: set("0-1-5,7-2-40"),
                accepted_gap: true
            })
        );
    }

    #[test]
    fn an_acceptance_takes_the_new_server_as_it_is() {
        let (s1, s2) = (server("server_id:1"), server("server_id:2"));
        // no gap visible in the states (the server wrote past the context),
        // but the server refused the context's GTID: accepted, start at its state
        assert_eq!(
            decide_on(
                Some(&s1),
                Some("0-1-12"),
                &s2,
                "0-2-15",
                Flavor::MariaDb,
                true
            ),
            Ok(Resume::Gtid {
                state: set("0-2-15"),
                accepted_gap: true
            })
        );
        let gone = TaskError::from(DefiniteError::BinlogGone(mysql_async::ServerError {
            code: 1236,
            message: "GTID 0-1-12 not in binlog".into(),
            state: "HY000".into(),
        }));
        let e = gone_after_failover(gone, &s2, Some(&set("0-1-12"))).to_string();
        assert!(e.starts_with("source failover: server_id:2 (server_id:2-host:3306) does not hold the context's GTID state 0-1-12"), "{e}");
        assert!(e.contains("accept-gap"), "{e}");
        let other = gone_after_failover(
            TransientError::SourceClosed.into(),
            &s2,
            Some(&set("0-1-12")),
        );
        assert!(matches!(other, TaskError::Transient(_)));
    }

    #[test]
    fn no_gtid_state_cannot_follow() {
        let (s1, s2) = (server("server_id:1"), server("server_id:2"));
        for g in [None, Some(""), Some(" , ")] {
            assert!(matches!(
                decide_on(Some(&s1), g, &s2, "0-1-5", Flavor::MariaDb, true),
                Err(FailoverError::NoGtid { .. })
            ));
        }
        // a context of the other flavour (the task now points at another
        // kind of server); text that is no GTID state at all cannot be in a
        // context (the node does not parse)
        let e = decide_on(
            Some(&s1),
            Some(&format!("{A}:1-5")),
            &s2,
            "0-1-5",
            Flavor::MariaDb,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, FailoverError::MixedFlavours { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("context's GTID state {A}:1-5")),
            "{e}"
        );
        assert!(matches!(
            decide_on(Some(&s1), Some("0-1-5"), &s2, "", Flavor::MySql, true),
            Err(FailoverError::MixedFlavours { .. })
        ));
    }

    // No MySQL server can run on this machine: the MySQL rules are tested on
    // the GTID sets MySQL documents for @@gtid_executed.
    #[test]
    fn mysql_executed_sets() {
        let (s1, s2) = (
            server(&format!("server_uuid:{A}")),
            server(&format!("server_uuid:{B}")),
        );
        let ctx = format!("{A}:1-120");
        // the new primary has all of A and more: it continues the context
        assert_eq!(
            decide_on(
                Some(&s1),
                Some(&ctx),
                &s2,
                &format!("{A}:1-150"),
                Flavor::MySql,
                false
            ),
            Ok(Resume::Gtid {
                state: set(&ctx),
                accepted_gap: false
            })
        );
        let e = decide_on(
            Some(&s1),
            Some(&ctx),
            &s2,
            &format!("{A}:1-100"),
            Flavor::MySql,
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("lacks transactions {A}:101-120")),
            "{e}"
        );
        let here = format!("{A}:1-120,{B}:1-4");
        let e = decide_on(Some(&s1), Some(&ctx), &s2, &here, Flavor::MySql, false).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("source UUIDs the context never saw: {B}:1-4")),
            "{e}"
        );
        assert_eq!(
            decide_on(
                Some(&s1),
                Some(&ctx),
                &s2,
                &format!("{A}:1-100,{B}:1-4"),
                Flavor::MySql,
                true
            ),
            Ok(Resume::Gtid {
                state: set(&format!("{A}:1-100,{B}:1-4")),
                accepted_gap: true
            })
        );
    }
}
