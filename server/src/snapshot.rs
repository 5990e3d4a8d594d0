//! On-demand snapshot requests (`POST /api/v1/tasks/{name}/snapshot`), pure.
//!
//! In: the task's config, its context's snapshot progress, its control node
//! and the tables asked for. Out: the new control `snapshot` request (the
//! Core of the task restarts its run from the context, takes the request in
//! once and copies those tables again while the stream goes on), or why
//! the request is refused: no table, a name that is not `db.table`, a table
//! the task does not include (400), a table already being copied or already
//! requested and not taken in yet (409). A paused task keeps the request
//! queued in its control node until it is resumed.

use replicator_common::config::{compile_table_regex, TaskConfig};
use replicator_common::nodes::{Control, SnapshotProgress, SnapshotRequest};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("name at least one table: {{\"tables\": [\"db.table\", ...]}}")]
    NoTables,
    #[error("tables must be named `db.table`: {0:?}")]
    BadNames(Vec<String>),
    #[error("task {task} does not include {tables:?} (source.include/exclude)")]
    NotIncluded { task: String, tables: Vec<String> },
    #[error("task {0} has no valid config to snapshot")]
    NoConfig(String),
    /// Already being copied, or requested and not taken in yet.
    #[error("a snapshot of {0:?} is already in progress or requested")]
    Busy(Vec<String>),
}

impl Refused {
    /// True for a request that conflicts with one under way (409), false
    /// for a bad request (400).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Refused::Busy(_))
    }
}

/// The control request after asking for `tables`.
pub fn request(
    cfg: &TaskConfig,
    progress: Option<&SnapshotProgress>,
    control: &Control,
    tables: &[String],
) -> Result<SnapshotRequest, Refused> {
    if tables.is_empty() {
        return Err(Refused::NoTables);
    }
    let bad: Vec<String> = tables
        .iter()
        .filter(|t| {
            t.split_once('.')
                .is_none_or(|(d, n)| d.is_empty() || n.is_empty())
        })
        .cloned()
        .collect();
    if !bad.is_empty() {
        return Err(Refused::BadNames(bad));
    }
    let compile = |list: &[String]| -> Vec<regex::Regex> {
        list.iter()
            .filter_map(|r| compile_table_regex(r).ok())
            .collect()
    };
    let (include, exclude) = (compile(&cfg.source.include), compile(&cfg.source.exclude));
    let outside: Vec<String> = tables
        .iter()
        .filter(|t| {
            !((include.is_empty() || include.iter().any(|r| r.is_match(t)))
                && !exclude.iter().any(|r| r.is_match(t)))
        })
        .cloned()
        .collect();
    if !outside.is_empty() {
        return Err(Refused::NotIncluded {
            task: cfg.name.clone(),
            tables: outside,
        });
    }
    let taken = progress.map_or(0, |p| p.request);
    let pending: Vec<String> = control
        .snapshot
        .as_ref()
        .filter(|r| r.seq > taken)
        .map(|r| r.tables.clone())
        .unwrap_or_default();
    let busy: Vec<String> = tables
        .iter()
        .filter(|t| pending.contains(t) || progress.is_some_and(|p| p.copying(t)))
        .cloned()
        .collect();
    if !busy.is_empty() {
        return Err(Refused::Busy(busy));
    }
    let mut all = pending;
    for t in tables {
        if !all.contains(t) {
            all.push(t.clone());
        }
    }
    let seq = control.snapshot.as_ref().map_or(0, |r| r.seq).max(taken) + 1;
    Ok(SnapshotRequest { seq, tables: all })
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicator_common::nodes::SnapshotTable;

    fn cfg() -> TaskConfig {
        serde_json::from_value(serde_json::json!({
            "name": "t1",
            "source": {"include": ["shop\\..*"], "exclude": ["shop\\.secret"]},
            "sink": {}
        }))
        .unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refuses_empty_bad_and_excluded_tables() {
        let c = Control::default();
        assert!(matches!(
            request(&cfg(), None, &c, &[]),
            Err(Refused::NoTables)
        ));
        assert!(matches!(
            request(&cfg(), None, &c, &names(&["orders"])),
            Err(Refused::BadNames(_))
        ));
        let e = request(&cfg(), None, &c, &names(&["shop.secret", "other.t"])).unwrap_err();
        assert!(e.to_string().contains("shop.secret") && e.to_string().contains("other.t"));
        assert_eq!(
            request(&cfg(), None, &c, &names(&["shop.orders"])).unwrap(),
            SnapshotRequest {
                seq: 1,
                tables: names(&["shop.orders"])
            }
        );
    }

    #[test]
    fn a_table_in_progress_or_pending_is_refused_others_join_the_pending_request() {
        let progress = SnapshotProgress {
            tables: vec![SnapshotTable {
                database: "shop".into(),
                table: "orders".into(),
                done: false,
                ..Default::default()
            }],
            request: 2,
            ..Default::default()
        };
        let c = Control {
            snapshot: Some(SnapshotRequest {
                seq: 3,
                tables: names(&["shop.items"]),
            }),
            ..Default::default()
        };
        for busy in ["shop.orders", "shop.items"] {
            assert!(matches!(
                request(&cfg(), Some(&progress), &c, &names(&[busy])),
                Err(Refused::Busy(_))
            ));
        }
        assert_eq!(
            request(&cfg(), Some(&progress), &c, &names(&["shop.users"])).unwrap(),
            SnapshotRequest {
                seq: 4,
                tables: names(&["shop.items", "shop.users"])
            }
        );
        // once taken in (request 3 in the progress), only the new table
        let taken = SnapshotProgress {
            request: 3,
            ..progress.clone()
        };
        assert_eq!(
            request(&cfg(), Some(&taken), &c, &names(&["shop.items"])).unwrap(),
            SnapshotRequest {
                seq: 4,
                tables: names(&["shop.items"])
            }
        );
    }
}
