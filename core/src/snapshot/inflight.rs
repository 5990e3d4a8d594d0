//! Which snapshot chunks may be in Kafka unacknowledged at once, pure.
//!
//! In: the chunks emitted (sequence number, table), the acknowledged
//! checkpoint's `next_chunk` and the context writes. Out: whether the next
//! chunk may be emitted now, and whether the stream must keep waiting.
//!
//! The rules (the resume argument is in the module doc of
//! [`crate::snapshot`]):
//! - at most [`MAX_IN_FLIGHT`] chunks are unacknowledged at once, all of
//!   one table, so the rows in the producer stay bounded;
//! - the first chunk of another table goes out only once every chunk before
//!   it is acknowledged and a context naming them is written;
//! - the stream takes no binlog event while a chunk is unacknowledged or
//!   an acknowledged chunk is not yet in the context (the last message of
//!   the task in a partition must be a snapshot row while chunks the
//!   context does not name may be in Kafka).

use std::collections::VecDeque;

/// Chunks emitted and not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: usize = 2;

/// The chunks in flight and whether the context lags behind them.
#[derive(Debug, Default)]
pub struct InFlight {
    /// (sequence number, table index), oldest first.
    chunks: VecDeque<(u64, usize)>,
    /// Table of the last chunk emitted.
    last_table: Option<usize>,
    /// A chunk was acknowledged after the context was last written.
    unwritten: bool,
}

impl InFlight {
    /// True when a chunk of table `table` may be emitted now.
    pub fn may_emit(&self, table: usize) -> bool {
        if self.chunks.len() >= MAX_IN_FLIGHT {
            return false;
        }
        if self.last_table == Some(table) {
            return true;
        }
        // another table: everything before it acknowledged and recorded
        self.chunks.is_empty() && !self.unwritten
    }

    /// Chunk `seq` of table `table` was emitted.
    pub fn emitted(&mut self, seq: u64, table: usize) {
        self.chunks.push_back((seq, table));
        self.last_table = Some(table);
    }

    /// The acknowledged checkpoint's progress says chunks before
    /// `next_chunk` are in Kafka. Returns true when that acknowledged a
    /// chunk in flight (the context should be written).
    pub fn acked_before(&mut self, next_chunk: u64) -> bool {
        let before = self.chunks.len();
        while self.chunks.front().is_some_and(|&(s, _)| s < next_chunk) {
            self.chunks.pop_front();
        }
        let acked = self.chunks.len() < before;
        self.unwritten |= acked;
        acked
    }

    /// A context was written with the checkpoint given to the last
    /// [`Self::acked_before`].
    pub fn written(&mut self) {
        self.unwritten = false;
    }

    /// True while the stream must wait.
    pub fn holds_stream(&self) -> bool {
        !self.chunks.is_empty() || self.unwritten
    }

    /// Chunks emitted and not acknowledged.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// True when no chunk is in flight.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_in_flight_lets_any_table_go_and_the_stream_run() {
        let f = InFlight::default();
        assert!(f.may_emit(0));
        assert!(f.may_emit(3));
        assert!(!f.holds_stream());
        assert!(f.is_empty());
    }

    #[test]
    fn two_chunks_of_one_table_go_out_before_the_first_is_acked() {
        let mut f = InFlight::default();
        f.emitted(5, 0);
        assert!(f.holds_stream());
        assert!(f.may_emit(0), "a second chunk of the same table");
        f.emitted(6, 0);
        assert_eq!(f.len(), 2);
        assert!(!f.may_emit(0), "at most two in flight");
        assert!(!f.acked_before(5), "nothing acknowledged yet");
        assert!(f.acked_before(6), "chunk 5 acknowledged");
        assert_eq!(f.len(), 1);
        assert!(f.may_emit(0));
        f.emitted(7, 0);
        assert!(f.acked_before(8), "both acknowledged at once");
        assert!(f.is_empty());
        assert!(f.holds_stream(), "until the context names them");
        assert!(f.may_emit(0), "the same table goes on before the write");
        f.written();
        assert!(!f.holds_stream());
    }

    #[test]
    fn another_table_waits_for_the_acks_and_the_context() {
        let mut f = InFlight::default();
        f.emitted(9, 0);
        assert!(!f.may_emit(1), "chunk 9 of table 0 in flight");
        f.acked_before(10);
        assert!(!f.may_emit(1), "acknowledged but not in the context");
        f.written();
        assert!(f.may_emit(1));
        f.emitted(10, 1);
        assert!(!f.may_emit(0));
        assert!(f.may_emit(1));
    }

    #[test]
    fn a_stale_acknowledgement_changes_nothing() {
        let mut f = InFlight::default();
        assert!(!f.acked_before(100), "nothing in flight");
        assert!(!f.holds_stream());
        f.emitted(3, 2);
        assert!(!f.acked_before(2));
        assert!(!f.acked_before(3));
        assert_eq!(f.len(), 1);
    }
}
