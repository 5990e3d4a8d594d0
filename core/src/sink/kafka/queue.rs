//! One link's queue: per partition, the batches handed over sealed from
//! another link, then the open batches, with the base sequence of the next
//! batch sealed. Pure (the caller holds the link's lock).
//!
//! Records join the last open batch of their partition, or a new one when
//! it would pass `batch.size` ([`Queue::push`]). A request takes the first
//! batch of every partition ([`Queue::take`]): one batch per partition in
//! flight at a time, so that a partition's batches land in sequence order;
//! an open batch gets its base sequence as it is taken. A partition whose
//! leader moved leaves the queue whole ([`Queue::remove`]) and joins the new
//! leader's queue behind its in-flight batches ([`Queue::receive`], the
//! order of [`super::reroute::hand_over`]).

use super::reroute::{self, Tp};
use super::seal::{Pending, Record, Sealed, Taken};
use std::collections::BTreeMap;
use std::time::Instant;

/// One partition's queue on a link: batches handed over sealed go first.
pub type PartQueue = reroute::PartQueue<Sealed, Pending>;

fn open_bytes(q: &PartQueue) -> usize {
    q.open.iter().map(Pending::counted).sum()
}

#[derive(Default)]
pub struct Queue {
    /// By partition, so that a request lists its partitions in order.
    pub parts: BTreeMap<Tp, PartQueue>,
    /// What the records of the open batches were charged ([`Pending::counted`]).
    pub bytes: usize,
    /// When the oldest record now queued arrived.
    pub since: Option<Instant>,
}

impl Queue {
    /// Adds `r` to partition `tp`'s last open batch, or to a new one when
    /// it would not fit in `batch_bytes`. True when the link should look
    /// now: the queue was empty, or the batch is full.
    pub fn push(&mut self, tp: Tp, r: &Record, batch_bytes: usize) -> bool {
        let part = self.parts.entry(tp).or_default();
        if part
            .open
            .back()
            .is_none_or(|p| p.batch.size() + r.size > batch_bytes)
        {
            part.open
                .push_back(Pending::new((batch_bytes / 4).min(256 * 1024)));
        }
        let p = part.open.back_mut().expect("just pushed");
        p.push(r);
        let full = p.batch.size() + r.size > batch_bytes;
        let was_empty = self.since.is_none();
        self.bytes += r.size;
        self.since.get_or_insert_with(Instant::now);
        was_empty || full
    }

    /// True when a partition has batches handed over (send them at once).
    pub fn handed(&self) -> bool {
        self.parts.values().any(|p| !p.ready.is_empty())
    }

    /// The first batch of every partition, in partition order: a sealed
    /// one handed over, else the first open one with the partition's next
    /// base sequence.
    pub fn take(&mut self) -> Vec<Taken> {
        let mut taken = Vec::with_capacity(self.parts.len());
        let mut left = false;
        let mut freed = 0;
        for (tp, part) in self.parts.iter_mut() {
            if let Some(s) = part.ready.pop_front() {
                taken.push(Taken::Sealed(s));
            } else if let Some(p) = part.open.pop_front() {
                let seq = part.next_seq;
                part.next_seq = reroute::next_sequence(seq, p.batch.count());
                freed += p.counted();
                taken.push(Taken::Open {
                    tp: tp.clone(),
                    seq,
                    pending: p,
                });
            }
            left |= !part.is_empty();
        }
        self.bytes -= freed;
        self.since = left.then(Instant::now);
        taken
    }

    /// Partition `tp`'s queue, taken out (empty when it has none).
    pub fn remove(&mut self, tp: &Tp) -> PartQueue {
        let part = self.parts.remove(tp).unwrap_or_default();
        self.bytes -= open_bytes(&part);
        part
    }

    /// Takes in partition `tp` from another link: its batches in flight
    /// there, then its queue there (`old`), before anything queued here.
    pub fn receive(&mut self, tp: Tp, in_flight: Vec<Sealed>, old: PartQueue) {
        let moved_bytes = open_bytes(&old);
        let new = self.parts.remove(&tp).unwrap_or_default();
        self.parts
            .insert(tp, reroute::hand_over(in_flight, old, new));
        self.bytes += moved_bytes;
        self.since.get_or_insert_with(Instant::now);
    }

    /// Records, and what they were charged against the bounds, of every batch queued
    /// (to settle the bounds when the queue is dropped).
    pub fn unacked(&self) -> (usize, usize) {
        let (mut msgs, mut counted) = (0, 0);
        for part in self.parts.values() {
            for p in &part.open {
                msgs += p.batch.count() as usize;
                counted += p.counted();
            }
            for s in &part.ready {
                msgs += s.msgs;
                counted += s.counted;
            }
        }
        (msgs, counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kafka::batch::{BatchBuilder, ProducerId, HEADER_LEN};
    use crate::sink::kafka::seal::seal;
    use replicator_common::producer::Compression;

    fn tp(p: i32) -> Tp {
        ("t".into(), p)
    }

    const VALUE: [u8; 10] = [7; 10];

    /// What one test record counts for in the queue.
    fn size() -> usize {
        BatchBuilder::record_size(None, Some(&VALUE), &[])
    }

    /// Room for two test records in a batch.
    fn budget() -> usize {
        HEADER_LEN + 2 * size()
    }

    /// Pushes one record of 10 value bytes to partition `p`.
    fn push(q: &mut Queue, p: i32, txn: u64, batch_bytes: usize) -> bool {
        let value = VALUE;
        let size = size();
        let r = Record {
            ts: 1,
            key: None,
            value: Some(&value),
            headers: &[],
            txn,
            size,
        };
        q.push(tp(p), &r, batch_bytes)
    }

    fn sealed(p: i32) -> Sealed {
        Sealed {
            tp: tp(p),
            bytes: bytes::Bytes::new(),
            txns: vec![(9, 2)],
            msgs: 2,
            counted: 30,
            attempts: 1,
            first_sent: None,
            restarted: false,
        }
    }

    fn open_seqs(taken: &[Taken]) -> Vec<(i32, i32)> {
        taken
            .iter()
            .map(|t| match t {
                Taken::Open { tp, seq, .. } => (tp.1, *seq),
                Taken::Sealed(s) => (s.tp.1, -1),
            })
            .collect()
    }

    /// The bounds on unacknowledged bytes are settled with exactly what
    /// they were charged: `record_size` is an upper bound (offset and
    /// timestamp deltas take fewer bytes than it assumes), so settling
    /// with the sealed size left a few bytes per record counted for ever,
    /// until the bound let nothing in.
    #[test]
    fn what_the_records_were_charged_is_what_taking_them_settles() {
        let mut q = Queue::default();
        let mut charged = 0;
        let headers: [(&str, &[u8]); 1] = [("replicator.position", b"f.000001:4:0")];
        for i in 0..1000usize {
            let key = vec![b'k'; i % 7];
            let value = vec![b'v'; 1 + i % 300];
            let size = BatchBuilder::record_size(Some(&key), Some(&value), &headers);
            charged += size;
            let r = Record {
                ts: 1_700_000_000_000 + i as i64,
                key: Some(&key),
                value: Some(&value),
                headers: &headers,
                txn: i as u64 / 5,
                size,
            };
            q.push(tp((i % 3) as i32), &r, 16 * 1024);
        }
        assert_eq!(q.bytes, charged);
        assert_eq!(q.unacked(), (1000, charged));
        let (mut settled, mut written) = (0, 0);
        loop {
            let taken = q.take();
            if taken.is_empty() {
                break;
            }
            let Ok(sealed) = seal(taken, ProducerId { id: 1, epoch: 0 }, Compression::None) else {
                panic!("sealing failed");
            };
            for s in sealed {
                settled += s.counted;
                written += s.bytes.len() - HEADER_LEN;
            }
        }
        assert_eq!(settled, charged);
        assert_eq!(q.bytes, 0);
        assert!(written < charged, "record_size is an upper bound here");
    }

    #[test]
    fn an_empty_queue_takes_nothing() {
        let mut q = Queue::default();
        assert!(q.take().is_empty());
        assert_eq!(q.since, None);
        assert_eq!(q.unacked(), (0, 0));
    }

    #[test]
    fn the_first_record_wakes_the_link_and_a_full_batch_does_again() {
        let mut q = Queue::default();
        let budget = budget();
        assert!(push(&mut q, 0, 1, budget));
        assert!(push(&mut q, 0, 1, budget), "second record fills the batch");
        assert!(!push(&mut q, 0, 2, budget), "a new batch; queue not empty");
        let part = &q.parts[&tp(0)];
        assert_eq!(part.open.len(), 2);
        assert_eq!(part.open[0].batch.count(), 2);
        assert_eq!(part.open[0].txns, [(1, 2)]);
        assert_eq!(q.bytes, 3 * size());
        assert_eq!(q.unacked().0, 3);
    }

    #[test]
    fn take_is_one_batch_per_partition_with_following_sequences() {
        let mut q = Queue::default();
        let budget = budget();
        for txn in 0..3 {
            push(&mut q, 1, txn, budget);
        }
        push(&mut q, 0, 5, budget);
        let first = q.take();
        assert_eq!(open_seqs(&first), [(0, 0), (1, 0)]);
        assert!(q.since.is_some(), "partition 1 has a batch left");
        let second = q.take();
        assert_eq!(open_seqs(&second), [(1, 2)]);
        assert_eq!(q.since, None);
        assert_eq!(q.unacked(), (0, 0));
        assert!(q.take().is_empty());
    }

    #[test]
    fn a_partition_moved_in_goes_first_and_keeps_its_old_sequence() {
        let budget = budget();
        let mut old = Queue::default();
        push(&mut old, 0, 1, budget);
        push(&mut old, 0, 1, budget);
        push(&mut old, 0, 2, budget);
        // the first batch (sequence 0, two records) is in flight
        let in_flight = old.take();
        assert_eq!(open_seqs(&in_flight), [(0, 0)]);
        let moved = old.remove(&tp(0));
        let moved_counted = moved.open[0].counted();
        assert!(old.parts.is_empty());

        let mut new = Queue::default();
        push(&mut new, 1, 3, budget);
        new.receive(tp(0), vec![sealed(0)], moved);
        assert!(new.handed());
        assert_eq!(new.bytes, size() + moved_counted);
        let (msgs, counted) = new.unacked();
        assert_eq!(msgs, 2 + 1 + 1);
        assert_eq!(
            counted,
            30 + moved_counted + new.parts[&tp(1)].open[0].counted()
        );
        let taken = new.take();
        // partition 0: the sealed batch handed over; partition 1: its own
        assert_eq!(open_seqs(&taken), [(0, -1), (1, 0)]);
        assert!(!new.handed());
        // then partition 0's open batch, after the in-flight one's records
        assert_eq!(open_seqs(&new.take()), [(0, 2)]);
    }
}
