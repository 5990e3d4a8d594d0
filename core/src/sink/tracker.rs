//! Delivery tracking: which transactions Kafka fully acknowledged.
//!
//! Each transaction gets a slot when it begins; every message sent for it
//! adds one pending delivery, every acknowledgement removes one. A slot is
//! done when its transaction ended and nothing is pending; the checkpoint of
//! the newest done slot *with every earlier slot done too* is what the
//! context may advance to. A failed delivery poisons the tracker: the
//! pipeline stops and resumes from the last context (duplicates removed then).

use super::kafka::error::DeliveryError;
use crate::progress::Checkpoint;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Transaction id of records that belong to no transaction (fence
/// records): their acknowledgements move no checkpoint.
pub const UNTRACKED: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Slot {
    pending: u64,
    end: Option<Checkpoint>,
}

#[derive(Debug, Default)]
struct Inner {
    base: u64,
    slots: VecDeque<Slot>,
    acked: Option<Checkpoint>,
    failed: Option<Arc<DeliveryError>>,
}

/// Shared between the pipeline (begin/send/end) and the producer's delivery
/// callback (ack/fail).
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

impl Tracker {
    /// Opens a slot for a new transaction and returns its id.
    pub fn begin(&self) -> u64 {
        let mut g = self.inner.lock().expect("tracker lock");
        g.slots.push_back(Slot::default());
        g.base + g.slots.len() as u64 - 1
    }

    /// One more message of transaction `id` is on its way.
    pub fn add_pending(&self, id: u64) {
        let mut g = self.inner.lock().expect("tracker lock");
        let base = g.base;
        if let Some(s) = g.slots.get_mut((id - base) as usize) {
            s.pending += 1;
        }
    }

    /// Kafka acknowledged one message of transaction `id`.
    pub fn ack(&self, id: u64) {
        self.ack_many(id, 1);
    }

    /// Kafka acknowledged `n` messages of transaction `id`.
    pub fn ack_many(&self, id: u64, n: u64) {
        let mut g = self.inner.lock().expect("tracker lock");
        let base = g.base;
        if id < base {
            return;
        }
        if let Some(s) = g.slots.get_mut((id - base) as usize) {
            s.pending = s.pending.saturating_sub(n);
        }
        Self::advance(&mut g);
    }

    /// A message of transaction `id` could not be delivered.
    pub fn fail(&self, id: u64, reason: DeliveryError) {
        let mut g = self.inner.lock().expect("tracker lock");
        let _ = id;
        g.failed.get_or_insert_with(|| Arc::new(reason));
    }

    /// Transaction `id` ended at `end`.
    pub fn end(&self, id: u64, end: Checkpoint) {
        let mut g = self.inner.lock().expect("tracker lock");
        let base = g.base;
        if let Some(s) = g.slots.get_mut((id - base) as usize) {
            s.end = Some(end);
        }
        Self::advance(&mut g);
    }

    /// Records a position reached without any message (heartbeat, skipped
    /// events): it becomes the acked position once everything before is acked.
    pub fn mark(&self, cp: Checkpoint) {
        let id = self.begin();
        self.end(id, cp);
    }

    fn advance(g: &mut Inner) {
        while let Some(front) = g.slots.front() {
            if front.pending > 0 || front.end.is_none() {
                break;
            }
            let s = g.slots.pop_front().expect("front exists");
            g.base += 1;
            g.acked = s.end;
        }
    }

    /// The newest checkpoint before which everything is acknowledged.
    pub fn acked(&self) -> Option<Checkpoint> {
        self.inner.lock().expect("tracker lock").acked.clone()
    }

    /// The first delivery failure, if any.
    pub fn failure(&self) -> Option<Arc<DeliveryError>> {
        self.inner.lock().expect("tracker lock").failed.clone()
    }

    /// Transactions begun but not yet fully acknowledged.
    pub fn open(&self) -> usize {
        self.inner.lock().expect("tracker lock").slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kafka::error::AttemptError;
    use replicator_common::position::BinlogPos;

    fn cp(pos: u64) -> Checkpoint {
        Checkpoint {
            pos: BinlogPos::new("b.000001", pos),
            gtid: None,
            event_ts_ms: 0,
            events: 0,
            snapshot: None,
        }
    }

    #[test]
    fn advances_only_past_fully_acked_transactions_in_order() {
        let t = Tracker::default();
        let a = t.begin();
        t.add_pending(a);
        t.add_pending(a);
        let b = t.begin();
        t.add_pending(b);
        t.end(a, cp(100));
        t.end(b, cp(200));
        t.ack(b); // b done but a is not
        assert_eq!(t.acked(), None);
        t.ack(a);
        assert_eq!(t.acked(), None, "a still has one pending");
        t.ack(a);
        assert_eq!(t.acked(), Some(cp(200)), "a and b are done");
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn open_transaction_holds_the_position() {
        let t = Tracker::default();
        let a = t.begin();
        t.add_pending(a);
        t.ack(a);
        assert_eq!(t.acked(), None, "not ended yet");
        t.end(a, cp(50));
        assert_eq!(t.acked(), Some(cp(50)));
        t.mark(cp(60));
        assert_eq!(t.acked(), Some(cp(60)));
    }

    #[test]
    fn remembers_the_first_failure() {
        let t = Tracker::default();
        let a = t.begin();
        t.fail(a, DeliveryError::Stopped(AttemptError::LeaseExpired));
        let io = std::io::Error::other("second");
        t.fail(
            a,
            DeliveryError::Compress {
                codec: "lz4",
                source: io,
            },
        );
        let first = t.failure().expect("failed");
        assert!(matches!(
            *first,
            DeliveryError::Stopped(AttemptError::LeaseExpired)
        ));
    }
}
