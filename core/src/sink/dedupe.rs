//! Duplicate removal on resume, pure.
//!
//! Every message carries the position of its transaction and its row number
//! in it (header [`POSITION_HEADER`] = `file:pos:row`, a [`MsgPos`]; both
//! are the message contract in `replicator_common::message`). Per partition, messages
//! are in that order, so the last message of this task in a partition tells
//! exactly which replayed messages already arrived there: a replayed message
//! at or before that watermark is dropped, the first one after it clears the
//! watermark.
//!
//! Messages also carry their transaction's GTID (header [`GTID_HEADER`]).
//! Two positions whose GTIDs share a MariaDB domain (or a MySQL source UUID)
//! are ordered by GTID sequence number, then row: that order holds on every
//! server of a replication topology, so a run that resumed on another server
//! after a source failover still recognises what the old server's run
//! delivered. Without a common domain, positions of one server compare by
//! file/pos; across servers they do not compare at all (two servers may even
//! share a binlog base name), which is an error rather than a guess.
//!
//! Snapshot rows (see `crate::snapshot`) carry `file:pos:s<chunk>.<row>`:
//! the stream boundary they were emitted at, then the chunk sequence number
//! and the row in the chunk. At the same boundary they order before the
//! stream's rows (`file:pos:0` is the first row of the transaction that
//! starts there). Their raw key travels in [`SNAPSHOT_KEY_HEADER`]. They are
//! never dropped by the position watermark: a chunk re-read after a crash
//! may hold other rows, so the snapshot decides by key (see
//! [`Watermarks::snapshot_marks`]).

pub use replicator_common::message::{
    MsgPos, PosRef, EPOCH_HEADER, GTID_HEADER, POSITION_HEADER, SNAPSHOT_KEY_HEADER, TASK_HEADER,
};
use replicator_common::position::PositionError;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// The last snapshot row found in one partition's tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMark {
    pub partition: i32,
    pub chunk: u64,
    /// Raw key JSON of that row.
    pub key: String,
}

/// Last delivered position per (topic, partition), learned from the topic tails.
#[derive(Debug, Default)]
pub struct Watermarks {
    per_topic: HashMap<Arc<str>, Vec<Option<MsgPos>>>,
    snapshot: HashMap<Arc<str>, Vec<SnapshotMark>>,
    /// The marks come from another server's run (a source failover): only
    /// GTIDs can tell what was delivered.
    other_server: bool,
}

impl Watermarks {
    /// The marks were written while reading another server than this run.
    pub fn set_other_server(&mut self, other: bool) {
        self.other_server = other;
    }

    /// Records the tail of a topic: `tails[p]` is the last position of this
    /// task in partition `p` (None when it has none).
    pub fn set_topic(&mut self, topic: Arc<str>, tails: Vec<Option<MsgPos>>) {
        let marks: Vec<SnapshotMark> = tails
            .iter()
            .enumerate()
            .filter_map(|(p, t)| {
                let t = t.as_ref()?;
                Some(SnapshotMark {
                    partition: p as i32,
                    chunk: t.chunk?,
                    key: t.snap_key.clone()?,
                })
            })
            .collect();
        if !marks.is_empty() {
            self.snapshot.insert(topic.clone(), marks);
        }
        if tails.iter().any(Option::is_some) {
            self.per_topic.insert(topic, tails);
        }
    }

    /// True when the message at `pos` already reached `topic`/`partition`.
    pub fn already_delivered(
        &mut self,
        topic: &str,
        partition: i32,
        pos: &MsgPos,
    ) -> Result<bool, PositionError> {
        if pos.chunk.is_some() {
            // Snapshot rows are checked by key (`snapshot_marks`).
            return Ok(false);
        }
        let Some(parts) = self.per_topic.get_mut(topic) else {
            return Ok(false);
        };
        let Some(slot) = parts.get_mut(partition as usize) else {
            return Ok(false);
        };
        let Some(mark) = slot else {
            return Ok(false);
        };
        if pos.compare_any(mark, !self.other_server)? == Ordering::Greater {
            *slot = None;
            if parts.iter().all(Option::is_none) {
                self.per_topic.remove(topic);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// The last snapshot rows of chunk `chunk` or a later one found in the
    /// tails of `topic`: in their partition, every row of those chunks up to
    /// that key arrived (the chunks in flight are of one table, sent in key
    /// order; see `crate::snapshot`).
    pub fn snapshot_marks(&self, topic: &str, chunk: u64) -> Vec<SnapshotMark> {
        self.snapshot
            .get(topic)
            .map(|m| m.iter().filter(|m| m.chunk >= chunk).cloned().collect())
            .unwrap_or_default()
    }

    /// True when no watermark is left (the replay caught up everywhere).
    pub fn is_empty(&self) -> bool {
        self.per_topic.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicator_common::position::BinlogPos;

    fn mp(pos: u64, row: u64) -> MsgPos {
        MsgPos::stream(BinlogPos::new("mysql-bin.000002", pos), row)
    }

    fn snap(pos: u64, chunk: u64, row: u64) -> MsgPos {
        MsgPos {
            chunk: Some(chunk),
            ..mp(pos, row)
        }
    }

    #[test]
    fn snapshot_rows_are_left_to_the_key_check() {
        let mut w = Watermarks::default();
        let mut last = snap(100, 3, 9);
        last.snap_key = Some("[\"5\"]".into());
        w.set_topic("t".into(), vec![Some(last), Some(mp(90, 0)), None]);
        // a snapshot row at or before the mark is not dropped by position
        assert!(!w.already_delivered("t", 0, &snap(100, 3, 0)).unwrap());
        assert_eq!(
            w.snapshot_marks("t", 3),
            vec![SnapshotMark {
                partition: 0,
                chunk: 3,
                key: "[\"5\"]".into()
            }]
        );
        assert!(w.snapshot_marks("t", 4).is_empty());
        // a context naming chunk 1 as the last complete one: chunks 2 and 3
        // may both have been in flight
        assert_eq!(w.snapshot_marks("t", 2), w.snapshot_marks("t", 3));
        // stream replay is still dropped up to the mark
        assert!(w.already_delivered("t", 0, &mp(99, 5)).unwrap());
        assert!(w.already_delivered("t", 1, &mp(90, 0)).unwrap());
    }

    fn gp(file: &str, pos: u64, row: u64, gtid: &str) -> MsgPos {
        MsgPos {
            gtid: Some(gtid.parse().unwrap()),
            ..MsgPos::stream(BinlogPos::new(file, pos), row)
        }
    }

    #[test]
    fn after_a_failover_gtids_tell_what_was_delivered() {
        // the old primary's run delivered txn 0-1-103 rows 0..=1 (its binlog
        // positions); the new primary logs the same transactions elsewhere,
        // under the same binlog base name
        let mut w = Watermarks::default();
        w.set_other_server(true);
        w.set_topic(
            "t".into(),
            vec![Some(gp("mysql-bin.000009", 9000, 1, "0-1-103")), None],
        );
        let replay =
            |seq: u64, row: u64| gp("mysql-bin.000001", 400 + seq, row, &format!("0-1-{seq}"));
        assert!(w.already_delivered("t", 0, &replay(101, 0)).unwrap());
        assert!(w.already_delivered("t", 0, &replay(103, 1)).unwrap());
        assert!(
            !w.already_delivered("t", 1, &replay(103, 0)).unwrap(),
            "nothing in p1"
        );
        // the promoted server's own next transaction (other server id, same domain)
        assert!(!w
            .already_delivered("t", 0, &gp("mysql-bin.000001", 2000, 0, "0-2-104"))
            .unwrap());
        assert!(w.is_empty());
    }

    #[test]
    fn across_servers_without_a_common_domain_is_an_error() {
        let mut w = Watermarks::default();
        w.set_other_server(true);
        w.set_topic(
            "t".into(),
            vec![Some(gp("mysql-bin.000002", 100, 0, "0-1-5"))],
        );
        // same base name, but another server's log: no guessing
        let e = w.already_delivered("t", 0, &mp(200, 0)).unwrap_err();
        assert!(e.to_string().contains("another server"), "{e}");
        assert!(w
            .already_delivered("t", 0, &gp("mysql-bin.000002", 50, 0, "1-2-9"))
            .is_err());
        // same server: a missing GTID falls back to file/pos
        let mut w = Watermarks::default();
        w.set_topic(
            "t".into(),
            vec![Some(gp("mysql-bin.000002", 100, 0, "0-1-5"))],
        );
        assert!(w.already_delivered("t", 0, &mp(100, 0)).unwrap());
        assert!(!w.already_delivered("t", 0, &mp(100, 1)).unwrap());
    }

    #[test]
    fn drops_replayed_messages_up_to_the_tail_per_partition() {
        let mut w = Watermarks::default();
        w.set_topic("t".into(), vec![Some(mp(100, 2)), None]);
        // partition 0 already has rows 0..=2 of txn 100
        assert!(w.already_delivered("t", 0, &mp(100, 0)).unwrap());
        assert!(w.already_delivered("t", 0, &mp(100, 2)).unwrap());
        // partition 1 has nothing: deliver
        assert!(!w.already_delivered("t", 1, &mp(100, 1)).unwrap());
        // past the mark: deliver and forget the mark
        assert!(!w.already_delivered("t", 0, &mp(100, 3)).unwrap());
        assert!(w.is_empty());
        assert!(
            !w.already_delivered("t", 0, &mp(90, 0)).unwrap(),
            "no mark left"
        );
        assert!(!w.already_delivered("other", 0, &mp(1, 0)).unwrap());
    }

    #[test]
    fn refuses_positions_of_another_log() {
        let mut w = Watermarks::default();
        w.set_topic("t".into(), vec![Some(mp(100, 2))]);
        let other = MsgPos::stream(BinlogPos::new("other-bin.000001", 4), 0);
        assert!(w.already_delivered("t", 0, &other).is_err());
    }
}
