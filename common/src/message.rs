//! The Kafka message contract shared by every process (docs/design.md §7):
//! header names and the message position.
//!
//! Every data message carries its task ([`TASK_HEADER`]), the writing
//! instance's sequence number ([`EPOCH_HEADER`]), its position
//! ([`POSITION_HEADER`], `file:pos:row`, a [`MsgPos`]) and, when the source
//! has GTIDs, its transaction's GTID ([`GTID_HEADER`]). Snapshot rows add
//! their raw key ([`SNAPSHOT_KEY_HEADER`]); fence records carry
//! [`FENCE_HEADER`] and are not data. Positions order within one binlog,
//! or by GTID within one domain (MariaDB) or source UUID (MySQL); anything
//! else is an error, never a guess.

use crate::gtid::Gtid;
use crate::position::{BinlogPos, PositionError};
use std::cmp::Ordering;

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
/// Header of the fence records a new writer puts on every partition before
/// reading the tails: they are not data (see docs/design.md §7).
pub const FENCE_HEADER: &str = "replicator.fence";

/// Position of one message: its transaction's start and its row in it, or
/// for a snapshot row the boundary it was emitted at, its chunk and row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgPos {
    pub pos: BinlogPos,
    pub row: u64,
    /// GTID of the transaction (`d-s-n` or `uuid:n`), when the source has them.
    pub gtid: Option<Gtid>,
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
        write_position(out, &self.pos.file, self.pos.pos, self.chunk, self.row);
    }

    /// Parses `file:pos:row` or `file:pos:s<chunk>.<row>` (the GTID travels
    /// in its own header, [`GTID_HEADER`]).
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
        if let (Some(a), Some(b)) = (&self.gtid, &other.gtid) {
            if let Some(by_gtid) = a.compare(b) {
                return Ok(by_gtid.then(self.row.cmp(&other.row)));
            }
        }
        if !same_server {
            return Err(PositionError::DifferentStreams(
                format!("{} ({})", self.header(), gtid_text(&self.gtid)),
                format!(
                    "{} of another server ({})",
                    other.header(),
                    gtid_text(&other.gtid)
                ),
            ));
        }
        self.compare(other)
    }
}

fn gtid_text(g: &Option<Gtid>) -> String {
    g.as_ref()
        .map_or_else(|| "no GTID".to_string(), ToString::to_string)
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
            gtid: self.gtid.and_then(|g| g.parse().ok()),
            chunk: self.chunk,
            snap_key: None,
        }
    }

    /// Appends `file:pos:row` (`file:pos:s<chunk>.<row>`) to `out`.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        write_position(out, self.file, self.pos, self.chunk, self.row);
    }
}

/// Appends `file:pos:row` (`file:pos:s<chunk>.<row>`) to `out`.
fn write_position(out: &mut Vec<u8>, file: &str, pos: u64, chunk: Option<u64>, row: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(file.as_bytes());
    out.push(b':');
    out.extend_from_slice(b.format(pos).as_bytes());
    out.push(b':');
    if let Some(c) = chunk {
        out.push(b's');
        out.extend_from_slice(b.format(c).as_bytes());
        out.push(b'.');
    }
    out.extend_from_slice(b.format(row).as_bytes());
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
    fn gtids_order_within_their_stream() {
        let g = |s: &str| -> Gtid { s.parse().unwrap() };
        let at = |gtid: &str, row| MsgPos {
            gtid: Some(g(gtid)),
            ..mp(1, row)
        };
        use Ordering::*;
        assert_eq!(
            at("0-1-42", 0).compare_any(&at("0-2-43", 0), false),
            Ok(Less)
        );
        assert_eq!(
            at("12-3-7", 1).compare_any(&at("12-3-7", 0), false),
            Ok(Greater)
        );
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        assert_eq!(
            at(&format!("{u}:23"), 0).compare_any(&at(&format!("{u}:22"), 5), false),
            Ok(Greater)
        );
        assert!(at("0-1-42", 0).compare_any(&at("1-1-1", 0), false).is_err());
        // a header GTID that is not one is ignored (file/pos decide)
        let r = PosRef {
            file: "f.1",
            pos: 4,
            row: 0,
            gtid: Some("junk"),
            chunk: None,
        };
        assert_eq!(r.to_owned().gtid, None);
        assert_eq!(
            PosRef {
                gtid: Some("0-1-x"),
                ..r
            }
            .to_owned()
            .gtid,
            None
        );
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
}
