//! The order in which a new writer makes a topic its own, and the fence
//! record it writes for that. Pure.
//!
//! Flow in: the partition count of a topic the writer is about to use, and
//! whether this run must read tails (its context is not clean). Flow out: a
//! [`plan`] of [`Step`]s that [`super::KafkaSink::prepare_topic`] executes in
//! order, and the bytes of the fence record.
//!
//! Why: Apache Kafka checks producer epochs per partition and lazily. A
//! partition learns a new epoch only when a batch carrying it lands there;
//! until then a batch of an earlier writer of the task (same producer id,
//! older epoch) is still accepted. A tail read that ran before the new epoch
//! reached a partition could therefore be followed by an old message, which
//! the duplicate check never saw. So the new writer first writes one fence
//! record at its epoch to every partition and waits for the acknowledgements,
//! and only then reads the tails: from the acknowledgement on, the partition
//! refuses the old epoch (`INVALID_PRODUCER_EPOCH`), and whatever landed
//! before it is in the tail read. Every topic is prepared before its first
//! message, so topics first written later in a run get the same treatment.
//!
//! A clean start reads no tails and writes no fence: a clean context is
//! written only by a writer that flushed everything and stopped, and, when
//! that writer itself started after an unclean stop, only once it replayed
//! past where the binlog ended when it began (so it prepared, fenced and
//! read every topic the earlier writer can have written; see
//! [`crate::pipeline`]). What remains is an old writer that resumes from a
//! freeze: the self-fence of the producer ([`super::kafka::producer`]) puts
//! nothing on the wire once its lease expired, so the window is a request
//! already written to a socket when the process froze, bounded by the
//! request timeout.
//!
//! Kafka forgets a producer's state on a partition after
//! `producer.id.expiration.ms` (1 day) without writes. That bound is not
//! refreshed here: the fence only has to hold while an old writer may still
//! send, which the self-fence limits to that request timeout.
//!
//! Fence record: key `{"fence":"<task>"}` (never null: a compacted topic
//! refuses null keys), value `{"type":"fence","task":"<task>","epoch":<n>}`
//! (never null: a null value is a tombstone), headers `replicator.fence`,
//! `replicator.task` and `replicator.epoch`, no `replicator.position` (the
//! tail reader ignores it). Consumers skip records whose value has
//! `"type":"fence"` or that carry the `replicator.fence` header.

/// Header present on fence records only (value: the writer's epoch).
pub use replicator_common::message::FENCE_HEADER;

/// One step of preparing a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Queue a fence record for this partition.
    Fence(i32),
    /// Wait until every fence record is acknowledged (a refusal stops the run).
    AwaitFences,
    /// Read the tail of every partition for the duplicate check.
    ReadTails,
}

/// What a writer does before its first message to a topic of `partitions`
/// partitions: fence every partition and wait, then read the tails; nothing
/// when the context is clean.
pub fn plan(partitions: u32, check_tails: bool) -> Vec<Step> {
    if !check_tails {
        return Vec::new();
    }
    let mut steps: Vec<Step> = (0..partitions as i32).map(Step::Fence).collect();
    steps.push(Step::AwaitFences);
    steps.push(Step::ReadTails);
    steps
}

/// The fence record's key.
pub fn fence_key(task: &str) -> Vec<u8> {
    serde_json::json!({ "fence": task })
        .to_string()
        .into_bytes()
}

/// The fence record's value.
pub fn fence_value(task: &str, epoch: i64) -> Vec<u8> {
    serde_json::json!({ "type": "fence", "task": task, "epoch": epoch })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    //! A model of Apache Kafka's per-partition epoch rules, driven by the
    //! real [`plan`]. It is a model because no broker here fences like Kafka:
    //! Tansu fences at once, cluster-wide, at `InitProducerId`, so a test on
    //! it cannot show the lazy window.
    use super::*;

    const OLD: i16 = 1;
    const NEW: i16 = 2;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Rec {
        Old,
        Fence,
        New,
    }

    /// One partition as Kafka keeps it: the last epoch seen of the producer
    /// id (learned only from batches that land) and the log.
    #[derive(Default, Clone)]
    struct Partition {
        last_epoch: Option<i16>,
        log: Vec<Rec>,
    }

    impl Partition {
        /// Kafka's check (`ProducerAppendInfo`): an epoch older than the
        /// last one seen on this partition is refused; anything else lands.
        fn append(&mut self, epoch: i16, rec: Rec) -> bool {
            if self.last_epoch.is_some_and(|last| epoch < last) {
                return false;
            }
            self.last_epoch = Some(epoch);
            self.log.push(rec);
            true
        }
    }

    /// Runs `steps` for a new writer on `parts` partitions; before step
    /// `at` (and after the last one) the old writer sends one batch to
    /// partition `old_to`. Returns the log length of each partition at the
    /// tail read (None: no tail read) and the final partitions.
    fn run(
        steps: &[Step],
        mut parts: Vec<Partition>,
        at: usize,
        old_to: usize,
    ) -> (Option<Vec<usize>>, Vec<Partition>) {
        // InitProducerId on a transactional id in state Empty writes no
        // markers: nothing happens to the partitions here.
        let mut queued_fences = Vec::new();
        let mut tails = None;
        for (i, step) in steps.iter().enumerate() {
            if i == at {
                parts[old_to].append(OLD, Rec::Old);
            }
            match *step {
                Step::Fence(p) => queued_fences.push(p as usize),
                Step::AwaitFences => {
                    for p in queued_fences.drain(..) {
                        assert!(parts[p].append(NEW, Rec::Fence), "fence refused");
                    }
                }
                Step::ReadTails => tails = Some(parts.iter().map(|p| p.log.len()).collect()),
            }
        }
        if at >= steps.len() {
            parts[old_to].append(OLD, Rec::Old);
        }
        // Then the new writer's first real messages, and the old writer later.
        for p in parts.iter_mut() {
            assert!(p.append(NEW, Rec::New), "new writer refused");
        }
        for p in parts.iter_mut() {
            p.append(OLD, Rec::Old);
        }
        (tails, parts)
    }

    /// Old messages at or after the tail-read length of their partition.
    fn late_old(tails: &[usize], parts: &[Partition]) -> Vec<(usize, usize)> {
        let mut late = Vec::new();
        for (p, part) in parts.iter().enumerate() {
            for (i, r) in part.log.iter().enumerate().skip(tails[p]) {
                if *r == Rec::Old {
                    late.push((p, i));
                }
            }
        }
        late
    }

    /// Partitions the old writer already wrote to (it knows epoch 1 on
    /// some of them) and ones it never wrote to.
    fn history(n: usize) -> Vec<Partition> {
        (0..n)
            .map(|p| {
                let mut part = Partition::default();
                if p % 2 == 0 {
                    part.append(OLD, Rec::Old);
                }
                part
            })
            .collect()
    }

    #[test]
    fn nothing_of_an_earlier_writer_lands_after_the_tail_read() {
        for n in 1..=5u32 {
            let steps = plan(n, true);
            for at in 0..=steps.len() {
                for old_to in 0..n as usize {
                    let (tails, parts) = run(&steps, history(n as usize), at, old_to);
                    let tails = tails.expect("a non-clean start reads tails");
                    assert_eq!(
                        late_old(&tails, &parts),
                        [],
                        "{n} partitions, old send before step {at} to {old_to}"
                    );
                    for part in &parts {
                        assert_eq!(part.log.iter().filter(|r| **r == Rec::Fence).count(), 1);
                    }
                }
            }
        }
    }

    #[test]
    fn the_model_catches_a_tail_read_before_the_fences() {
        // Without fences (what the producer did before) or with the tail
        // read first, an old send between InitProducerId and the first
        // real message lands after the tail read.
        let no_fence = [Step::ReadTails];
        let (tails, parts) = run(&no_fence, history(2), 1, 1);
        assert_eq!(late_old(&tails.unwrap(), &parts), [(1, 0)]);
        let tail_first = [Step::ReadTails, Step::Fence(0), Step::AwaitFences];
        let (tails, parts) = run(&tail_first, history(1), 1, 0);
        assert_eq!(late_old(&tails.unwrap(), &parts), [(0, 1)]);
    }

    #[test]
    fn a_clean_start_has_nothing_to_do() {
        assert_eq!(plan(4, false), []);
        assert_eq!(
            plan(2, true),
            [
                Step::Fence(0),
                Step::Fence(1),
                Step::AwaitFences,
                Step::ReadTails
            ]
        );
    }

    #[test]
    fn the_fence_record_is_json_with_a_key() {
        let v: serde_json::Value = serde_json::from_slice(&fence_value("t1", 7)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "fence", "task": "t1", "epoch": 7})
        );
        let k: serde_json::Value = serde_json::from_slice(&fence_key("t1")).unwrap();
        assert_eq!(k, serde_json::json!({"fence": "t1"}));
    }
}
