//! Where a partition's unacknowledged batches go when its leader moved
//! (pure).
//!
//! Flow in: the batches of a failed `Produce` request that are still not
//! acknowledged, each sealed with its producer id, epoch and base sequence,
//! the broker they were sent to, and the partition leaders that a metadata
//! refresh found. Flow out: a [`Plan`]: the batches that stay with the
//! broker (leader unchanged, or unknown: resend there after a back-off) and,
//! per partition whose leader moved, the batches that follow it, in their
//! order. [`hand_over`] then joins a moved partition's in-flight batches
//! with what was queued for it, so that the new leader's link sends them
//! first, unchanged (same bytes, same sequence numbers: the new leader drops
//! what it already has), before anything later of that partition, which is
//! sealed with the sequence numbers that follow.
//!
//! Failure: nothing here fails; a partition whose new leader is unknown
//! stays where it was and the caller's retry budget bounds the attempts.

use std::collections::VecDeque;
use std::sync::Arc;

/// A topic partition.
pub type Tp = (Arc<str>, i32);

/// Produce error codes that mean "ask the metadata who leads this
/// partition now": `UNKNOWN_TOPIC_OR_PARTITION` (3, after a move),
/// `LEADER_NOT_AVAILABLE` (5), `NOT_LEADER_OR_FOLLOWER` (6).
pub fn needs_metadata(code: i16) -> bool {
    matches!(code, 3 | 5 | 6)
}

/// `NOT_LEADER_OR_FOLLOWER`: resent to the new leader, not a reason to stop.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// The base sequence of the batch after one of `count` records starting at
/// `base` (sequences wrap to 0 after `i32::MAX`, as Kafka's do).
pub fn next_sequence(base: i32, count: i32) -> i32 {
    base.wrapping_add(count) & i32::MAX
}

/// A batch that belongs to one partition.
pub trait OfPartition {
    fn tp(&self) -> &Tp;
}

/// The batches of one partition whose leader moved, and where to.
#[derive(Debug, PartialEq, Eq)]
pub struct Move<B> {
    pub tp: Tp,
    pub to: Arc<str>,
    /// In the order they were sent (sequence order).
    pub batches: Vec<B>,
}

/// What becomes of a failed request's unacknowledged batches.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan<B> {
    /// Resent to the same broker (leader unchanged or unknown), in order.
    pub stay: Vec<B>,
    /// One per moved partition, by partition.
    pub moves: Vec<Move<B>>,
}

/// Splits `batches` (sent to `from`, in sequence order within each
/// partition) by the leader `leader` reports for their partition: `None`
/// (unknown) or `from` keeps a batch where it is.
pub fn plan<B: OfPartition>(
    from: &str,
    batches: Vec<B>,
    leader: impl Fn(&Tp) -> Option<Arc<str>>,
) -> Plan<B> {
    let mut stay = Vec::new();
    let mut moves: Vec<Move<B>> = Vec::new();
    for b in batches {
        match leader(b.tp()) {
            Some(to) if &*to != from => match moves.iter_mut().find(|m| m.tp == *b.tp()) {
                Some(m) => m.batches.push(b),
                None => moves.push(Move {
                    tp: b.tp().clone(),
                    to,
                    batches: vec![b],
                }),
            },
            _ => stay.push(b),
        }
    }
    moves.sort_by(|a, b| a.tp.cmp(&b.tp));
    Plan { stay, moves }
}

/// One partition's queue on a link: batches sealed elsewhere that go
/// first (`ready`), then the open batches, which get sequence numbers from
/// `next_seq` when they are sealed.
#[derive(Debug)]
pub struct PartQueue<S, O> {
    /// The base sequence of the next batch sealed from `open`.
    pub next_seq: i32,
    pub ready: VecDeque<S>,
    pub open: VecDeque<O>,
}

impl<S, O> Default for PartQueue<S, O> {
    fn default() -> Self {
        Self {
            next_seq: 0,
            ready: VecDeque::new(),
            open: VecDeque::new(),
        }
    }
}

impl<S, O> PartQueue<S, O> {
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.open.is_empty()
    }
}

/// The queue a partition has on its new leader's link: the batches that
/// were in flight (`in_flight`, in order), then what the old link had
/// sealed or queued for it (`old`), then anything the new link held for it
/// (`new`, empty while one link at a time owns a partition). The sequence
/// numbers continue from the old link's: it sealed the batches in flight.
pub fn hand_over<S, O>(
    in_flight: Vec<S>,
    old: PartQueue<S, O>,
    new: PartQueue<S, O>,
) -> PartQueue<S, O> {
    let mut ready: VecDeque<S> = in_flight.into();
    ready.extend(old.ready);
    ready.extend(new.ready);
    let mut open = old.open;
    open.extend(new.open);
    PartQueue {
        next_seq: old.next_seq,
        ready,
        open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, PartialEq, Eq)]
    struct B {
        tp: Tp,
        seq: i32,
    }

    impl OfPartition for B {
        fn tp(&self) -> &Tp {
            &self.tp
        }
    }

    fn tp(t: &str, p: i32) -> Tp {
        (Arc::from(t), p)
    }

    fn b(t: &str, p: i32, seq: i32) -> B {
        B { tp: tp(t, p), seq }
    }

    fn leaders(map: &[(&str, i32, &str)]) -> impl Fn(&Tp) -> Option<Arc<str>> {
        let m: HashMap<Tp, Arc<str>> = map
            .iter()
            .map(|(t, p, a)| (tp(t, *p), Arc::from(*a)))
            .collect();
        move |tp| m.get(tp).cloned()
    }

    #[test]
    fn codes_that_ask_for_metadata() {
        for code in [3, 5, NOT_LEADER_OR_FOLLOWER] {
            assert!(needs_metadata(code), "{code}");
        }
        for code in [0, 7, 19, 46, 47, 90] {
            assert!(!needs_metadata(code), "{code}");
        }
    }

    #[test]
    fn nothing_unacknowledged_moves_nothing() {
        let p: Plan<B> = plan("a:1", Vec::new(), leaders(&[("t", 0, "b:2")]));
        assert_eq!(
            p,
            Plan {
                stay: vec![],
                moves: vec![]
            }
        );
    }

    #[test]
    fn one_batch_follows_its_moved_leader() {
        let p = plan("a:1", vec![b("t", 0, 7)], leaders(&[("t", 0, "b:2")]));
        assert!(p.stay.is_empty());
        assert_eq!(
            p.moves,
            vec![Move {
                tp: tp("t", 0),
                to: "b:2".into(),
                batches: vec![b("t", 0, 7)]
            }]
        );
    }

    #[test]
    fn many_batches_of_a_partition_move_in_order() {
        let batches: Vec<B> = (0..50).map(|i| b("t", 3, i * 10)).collect();
        let p = plan("a:1", batches, leaders(&[("t", 3, "b:2")]));
        assert_eq!(p.moves.len(), 1);
        let seqs: Vec<i32> = p.moves[0].batches.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, (0..50).map(|i| i * 10).collect::<Vec<_>>());
    }

    #[test]
    fn batches_of_several_partitions_go_each_to_its_leader() {
        let batches = vec![
            b("u", 1, 4),
            b("t", 0, 0),
            b("t", 1, 9),
            b("t", 0, 5),
            b("t", 2, 2),
        ];
        let p = plan(
            "a:1",
            batches,
            leaders(&[
                ("t", 0, "b:2"),
                ("t", 1, "a:1"),
                ("t", 2, "c:3"),
                ("u", 1, "b:2"),
            ]),
        );
        assert_eq!(p.stay, vec![b("t", 1, 9)], "t/1 is still led by a");
        let got: Vec<(Tp, &str, Vec<i32>)> = p
            .moves
            .iter()
            .map(|m| {
                (
                    m.tp.clone(),
                    &*m.to,
                    m.batches.iter().map(|b| b.seq).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (tp("t", 0), "b:2", vec![0, 5]),
                (tp("t", 2), "c:3", vec![2]),
                (tp("u", 1), "b:2", vec![4]),
            ]
        );
    }

    #[test]
    fn an_unchanged_leader_keeps_every_batch() {
        let batches = vec![b("t", 0, 0), b("t", 1, 3)];
        let p = plan("a:1", batches, leaders(&[("t", 0, "a:1"), ("t", 1, "a:1")]));
        assert_eq!(p.stay, vec![b("t", 0, 0), b("t", 1, 3)]);
        assert!(p.moves.is_empty());
    }

    #[test]
    fn an_unknown_leader_keeps_the_batch_where_it_was() {
        let batches = vec![b("t", 0, 0), b("t", 1, 3), b("gone", 0, 1)];
        let p = plan("a:1", batches, leaders(&[("t", 1, "b:2")]));
        assert_eq!(p.stay, vec![b("t", 0, 0), b("gone", 0, 1)]);
        assert_eq!(p.moves.len(), 1);
        assert_eq!(p.moves[0].to.as_ref(), "b:2");
    }

    #[test]
    fn hand_over_sends_in_flight_then_sealed_then_open_and_keeps_sequences() {
        // the old link had batch 10 in flight, 20 sealed and two open ones
        let old = PartQueue {
            next_seq: 30,
            ready: VecDeque::from([b("t", 0, 20)]),
            open: VecDeque::from(["x", "y"]),
        };
        // the new link led the partition once, long ago: stale, empty
        let new = PartQueue {
            next_seq: 4,
            ..PartQueue::default()
        };
        let q = hand_over(vec![b("t", 0, 10)], old, new);
        assert_eq!(q.next_seq, 30, "the old link's numbering continues");
        let seqs: Vec<i32> = q.ready.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![10, 20]);
        assert_eq!(q.open, VecDeque::from(["x", "y"]));
    }

    #[test]
    fn hand_over_of_an_empty_partition_is_empty() {
        let q: PartQueue<B, ()> = hand_over(Vec::new(), PartQueue::default(), PartQueue::default());
        assert!(q.is_empty());
        assert_eq!(q.next_seq, 0);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 2, 5), 2);
    }
}
