//! Duplicate removal on resume, pure.
//!
//! Every message carries the position of its transaction and its row number
//! in it (header [`POSITION_HEADER`] = `file:pos:row`). Per partition, messages
//! are in that order, so the last message of this task in a partition tells
//! exactly which replayed messages already arrived there: a replayed message
//! at or before that watermark is dropped, the first one after it clears the
//! watermark.

use replicator_common::position::{BinlogPos, PositionError};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Header naming the task that wrote a message.
pub const TASK_HEADER: &str = "replicator.task";
/// Header with the message position `file:pos:row`.
pub const POSITION_HEADER: &str = "replicator.position";
/// Header with the sequence number of the instance that wrote the message.
pub const EPOCH_HEADER: &str = "replicator.epoch";

/// Position of one message: its transaction's start and its row in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgPos {
    pub pos: BinlogPos,
    pub row: u64,
}

impl MsgPos {
    pub fn header(&self) -> String {
        format!("{}:{}:{}", self.pos.file, self.pos.pos, self.row)
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
        }
    }

    pub fn parse_header(s: &str) -> Option<MsgPos> {
        let (rest, row) = s.rsplit_once(':')?;
        let pos: BinlogPos = rest.parse().ok()?;
        Some(MsgPos {
            pos,
            row: row.parse().ok()?,
        })
    }

    pub fn compare(&self, other: &MsgPos) -> Result<Ordering, PositionError> {
        Ok(self.pos.compare(&other.pos)?.then(self.row.cmp(&other.row)))
    }
}

/// A message position borrowing its file name (no allocation per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosRef<'a> {
    pub file: &'a str,
    pub pos: u64,
    pub row: u64,
}

impl PosRef<'_> {
    pub fn to_owned(&self) -> MsgPos {
        MsgPos {
            pos: BinlogPos::new(self.file, self.pos),
            row: self.row,
        }
    }

    /// Appends `file:pos:row` to `out`.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(self.file.as_bytes());
        out.push(b':');
        out.extend_from_slice(b.format(self.pos).as_bytes());
        out.push(b':');
        out.extend_from_slice(b.format(self.row).as_bytes());
    }
}

/// Last delivered position per (topic, partition), learned from the topic tails.
#[derive(Debug, Default)]
pub struct Watermarks {
    per_topic: HashMap<Arc<str>, Vec<Option<MsgPos>>>,
}

impl Watermarks {
    /// Records the tail of a topic: `tails[p]` is the last position of this
    /// task in partition `p` (None when it has none).
    pub fn set_topic(&mut self, topic: Arc<str>, tails: Vec<Option<MsgPos>>) {
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
        let Some(parts) = self.per_topic.get_mut(topic) else {
            return Ok(false);
        };
        let Some(slot) = parts.get_mut(partition as usize) else {
            return Ok(false);
        };
        let Some(mark) = slot else {
            return Ok(false);
        };
        if pos.compare(mark)? == Ordering::Greater {
            *slot = None;
            if parts.iter().all(Option::is_none) {
                self.per_topic.remove(topic);
            }
            return Ok(false);
        }
        Ok(true)
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
        MsgPos {
            pos: BinlogPos::new("mysql-bin.000002", pos),
            row,
        }
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
        let other = MsgPos {
            pos: BinlogPos::new("other-bin.000001", 4),
            row: 0,
        };
        assert!(w.already_delivered("t", 0, &other).is_err());
    }
}
