//! Maxwell's `commit: true` on the last row of a transaction.
//!
//! Rows are rendered as they are decoded, before the transaction's end is
//! known. Under `maxwell`, the newest row message of the open transaction
//! (and the tombstone that follows a delete) is held here instead of being
//! sent: the next row message sends it as it is, the commit sends it marked
//! ([`crate::pipeline::format::maxwell::mark_commit`]). Each message keeps
//! the position it was rendered with, and held messages go out before any
//! later message of the transaction, so the order within a partition and
//! the duplicate removal after a takeover are unchanged. At most one row
//! (plus its tombstone) is held; a run that stops mid-transaction drops
//! them with the rest of the unfinished transaction (it is replayed).

use crate::error::TaskError;
use crate::sink::dedupe::PosRef;
use crate::sink::KafkaSink;
use std::sync::Arc;

struct HeldMsg {
    topic: Arc<str>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    pos: HeldPos,
    slot: u64,
}

/// An owned [`PosRef`] (the GTID kept as the text the header carries).
struct HeldPos {
    file: String,
    pos: u64,
    row: u64,
    gtid: Option<String>,
    chunk: Option<u64>,
}

impl HeldPos {
    fn new(p: PosRef<'_>) -> Self {
        HeldPos {
            file: p.file.to_string(),
            pos: p.pos,
            row: p.row,
            gtid: p.gtid.map(str::to_string),
            chunk: p.chunk,
        }
    }

    fn as_ref(&self) -> PosRef<'_> {
        PosRef {
            file: &self.file,
            pos: self.pos,
            row: self.row,
            gtid: self.gtid.as_deref(),
            chunk: self.chunk,
        }
    }
}

/// The held messages of the open transaction.
#[derive(Default)]
pub struct Held {
    msgs: Vec<HeldMsg>,
}

impl Held {
    /// Holds a message (a row, or the tombstone after the row held).
    pub fn push(
        &mut self,
        topic: &Arc<str>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        pos: PosRef<'_>,
        slot: u64,
    ) {
        self.msgs.push(HeldMsg {
            topic: topic.clone(),
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            pos: HeldPos::new(pos),
            slot,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Sends the held messages in order; with `mark`, the first (the row)
    /// rewritten by it first.
    pub async fn send(
        &mut self,
        sink: &mut KafkaSink,
        mark: Option<fn(&mut Vec<u8>)>,
    ) -> Result<(), TaskError> {
        for (i, mut m) in std::mem::take(&mut self.msgs).into_iter().enumerate() {
            if let (0, Some(mark), Some(v)) = (i, mark, m.value.as_mut()) {
                mark(v);
            }
            sink.send(
                &m.topic,
                m.key.as_deref(),
                m.value.as_deref(),
                m.pos.as_ref(),
                m.slot,
            )
            .await?;
        }
        Ok(())
    }
}
