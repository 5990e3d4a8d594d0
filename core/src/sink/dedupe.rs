//! Duplicate removal on resume, pure.
//!
//! Every message carries the position of its transaction and its row number
//! in it (header [`POSITION_HEADER`] = `file:pos:row`). Per partition, messages
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

use replicator_common::position::{BinlogPos, PositionError};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Header naming the task that wrote a message.
pub const TASK_HEADER: &str = "replicator.task";
/// Header with the message position `file:pos:row`.
pub const POSITION_HEADER: &str = "replicator.position";
/// Header of snapshot rows: the raw key (JSON array of `RawValue`s).
pub const SNAPSHOT_KEY_HEADER: &str = "replicator.snapshot_key";
/// Header with the sequence number of the instance that wrote the message.
pub const EPOCH_HEADER: &str = "replicator.epoch";
/// Header with the GTID of the message's transaction (absent without GTIDs).
pub const GTID_HEADER: &str = "replicator.gtid";

/// Position of one message: its transaction's start and its row in it, or
/// for a snapshot row the boundary it was emitted at, its chunk and row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgPos {
    pub pos: BinlogPos,
    pub row: u64,
    /// GTID of the transaction (`d-s-n` or `uuid:n`), when the source has them.
    pub gtid: Option<String>,
    /// Chunk sequence number of a snapshot row.
    pub chunk: Option<u64>,
    /// Raw key of a snapshot row (from [`SNAPSHOT_KEY_HEADER`], tail reads only).
    pub snap_key: Option<String>,
}

impl MsgPos {
    /// A stream message position.
    pub fn stream(pos: BinlogPos, row: u64) -> Self {
        MsgPos {
            pos,
            row,
            gtid: None,
            chunk: None,
            snap_key: None,
        }
    }

    pub fn header(&self) -> String {
        let mut out = Vec::new();
        self.write_header(&mut out);
        String::from_utf8(out).expect("header is UTF-8")
    }

    /// Appends the header text to `out` without allocating.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        self.as_ref().write_header(out);
    }

    pub fn as_ref(&self) -> PosRef<'_> {
        PosRef {
            file: &self.pos.file,
            pos: self.pos.pos,
            row: self.row,
            gtid: self.gtid.as_deref(),
            chunk: self.chunk,
        }
    }

    /// Parses `file:pos:row` or `file:pos:s<chunk>.<row>`.
    pub fn parse_header(s: &str) -> Option<MsgPos> {
        let (rest, last) = s.rsplit_once(':')?;
        let pos: BinlogPos = rest.parse().ok()?;
        let (chunk, row) = match last.strip_prefix('s') {
            Some(snap) => {
                let (c, r) = snap.split_once('.')?;
                (Some(c.parse().ok()?), r.parse().ok()?)
            }
            None => (None, last.parse().ok()?),
        };
        Some(MsgPos {
            pos,
            row,
            gtid: None,
            chunk,
            snap_key: None,
        })
    }

    /// Binlog position first; at the same position snapshot rows come
    /// before stream rows; then chunk and row.
    pub fn compare(&self, other: &MsgPos) -> Result<Ordering, PositionError> {
        let kind = |m: &MsgPos| m.chunk.map_or((1, 0), |c| (0, c));
        Ok(self
            .pos
            .compare(&other.pos)?
            .then(kind(self).cmp(&kind(other)))
            .then(self.row.cmp(&other.row)))
    }

    /// Orders two positions: by GTID sequence when both GTIDs share a domain
    /// (MariaDB) or source UUID (MySQL), else by file/pos when both come from
    /// the same server; `same_server` false makes that an error.
    pub fn compare_any(
        &self,
        other: &MsgPos,
        same_server: bool,
    ) -> Result<Ordering, PositionError> {
        if let (Some((da, sa)), Some((db, sb))) = (
            self.gtid.as_deref().and_then(gtid_order_key),
            other.gtid.as_deref().and_then(gtid_order_key),
        ) {
            if da == db {
                return Ok(sa.cmp(&sb).then(self.row.cmp(&other.row)));
            }
        }
        if !same_server {
            return Err(PositionError::DifferentStreams(
                format!(
                    "{} ({})",
                    self.header(),
                    self.gtid.as_deref().unwrap_or("no GTID")
                ),
                format!(
                    "{} of another server ({})",
                    other.header(),
                    other.gtid.as_deref().unwrap_or("no GTID")
                ),
            ));
        }
        self.compare(other)
    }
}

/// The ordering key of a GTID: (domain or source UUID, sequence number).
/// MariaDB `0-1-42` gives ("0", 42); MySQL `uuid:42` gives ("uuid", 42).
pub fn gtid_order_key(gtid: &str) -> Option<(&str, u64)> {
    if let Some((uuid, gno)) = gtid.rsplit_once(':') {
        return Some((uuid, gno.parse().ok()?));
    }
    let mut parts = gtid.splitn(3, '-');
    let domain = parts.next()?;
    let _server = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    Some((domain, seq))
}

/// A message position borrowing its file name (no allocation per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosRef<'a> {
    pub file: &'a str,
    pub pos: u64,
    pub row: u64,
    pub gtid: Option<&'a str>,
    /// Chunk sequence number of a snapshot row.
    pub chunk: Option<u64>,
}

impl PosRef<'_> {
    pub fn to_owned(&self) -> MsgPos {
        MsgPos {
            pos: BinlogPos::new(self.file, self.pos),
            row: self.row,
            gtid: self.gtid.map(str::to_string),
            chunk: self.chunk,
            snap_key: None,
        }
    }

    /// Appends `file:pos:row` (`file:pos:s<chunk>.<row>`) to `out`.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(self.file.as_bytes());
        out.push(b':');
        out.extend_from_slice(b.format(self.pos).as_bytes());
        out.push(b':');
        if let Some(c) = self.chunk {
            out.push(b's');
            out.extend_from_slice(b.format(c).as_bytes());
            out.push(b'.');
        }
        out.extend_from_slice(b.format(self.row).as_bytes());
    }
}

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

    /// The last snapshot rows of chunk `chunk` found in the tails of `topic`:
    /// in their partition, every row of that chunk up to that key arrived.
    pub fn snapshot_marks(&self, topic: &str, chunk: u64) -> Vec<SnapshotMark> {
        self.snapshot
            .get(topic)
            .map(|m| m.iter().filter(|m| m.chunk == chunk).cloned().collect())
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
    fn snapshot_headers_parse_and_order_before_the_stream_at_the_same_boundary() {
        let s = snap(4711, 7, 3);
        assert_eq!(s.header(), "mysql-bin.000002:4711:s7.3");
        assert_eq!(MsgPos::parse_header(&s.header()), Some(s.clone()));
        // an old-format header still parses, as a stream position
        assert_eq!(
            MsgPos::parse_header("mysql-bin.000002:4711:0"),
            Some(mp(4711, 0))
        );
        assert_eq!(MsgPos::parse_header("mysql-bin.000002:4711:s7"), None);
        assert_eq!(MsgPos::parse_header("mysql-bin.000002:4711:sx.1"), None);
        use Ordering::*;
        assert_eq!(s.compare(&mp(4711, 0)).unwrap(), Less);
        assert_eq!(s.compare(&mp(4700, 9)).unwrap(), Greater);
        assert_eq!(s.compare(&snap(4711, 7, 4)).unwrap(), Less);
        assert_eq!(s.compare(&snap(4711, 8, 0)).unwrap(), Less);
        assert_eq!(s.compare(&snap(4711, 6, 99)).unwrap(), Greater);
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
        // stream replay is still dropped up to the mark
        assert!(w.already_delivered("t", 0, &mp(99, 5)).unwrap());
        assert!(w.already_delivered("t", 1, &mp(90, 0)).unwrap());
    }

    fn gp(file: &str, pos: u64, row: u64, gtid: &str) -> MsgPos {
        MsgPos {
            gtid: Some(gtid.into()),
            ..MsgPos::stream(BinlogPos::new(file, pos), row)
        }
    }

    #[test]
    fn gtid_keys() {
        assert_eq!(gtid_order_key("0-1-42"), Some(("0", 42)));
        assert_eq!(gtid_order_key("12-3-7"), Some(("12", 7)));
        assert_eq!(
            gtid_order_key("3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
            Some(("3e11fa47-71ca-11e1-9e33-c80aa9429562", 23))
        );
        assert_eq!(gtid_order_key("junk"), None);
        assert_eq!(gtid_order_key("0-1-x"), None);
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
    fn header_round_trip() {
        let p = mp(4711, 3);
        assert_eq!(p.header(), "mysql-bin.000002:4711:3");
        let mut buf = Vec::new();
        p.write_header(&mut buf);
        assert_eq!(buf, p.header().as_bytes());
        assert_eq!(MsgPos::parse_header(&p.header()), Some(p));
        assert_eq!(MsgPos::parse_header("garbage"), None);
        assert_eq!(MsgPos::parse_header("f.1:x:1"), None);
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
