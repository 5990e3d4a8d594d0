//! What a `Produce` answer means for each batch of the request. Pure.
//!
//! Flow in: the batches sent (each partition once, in partition order) and
//! every partition's error code in the answer. Flow out: the batches the
//! broker took (to acknowledge), the rest (to resend or drop), and why the
//! request failed ([`Failure`]).
//!
//! - Appended, or `DUPLICATE_SEQUENCE_NUMBER` (the broker already holds the
//!   batch: a resend of what it appended): acknowledged. A new leader's
//!   answer is trusted: its producer state comes with the log (Kafka
//!   replicates it; Tansu on PostgreSQL checks the sequence and appends in
//!   one transaction), and the old leader's crash typically leaves it
//!   exactly that: a batch appended whose acknowledgement was lost.
//! - `DUPLICATE_SEQUENCE_NUMBER` from a broker that refused a connection
//!   during the batch's resends (its process restarted): not taken on
//!   trust. Tansu 0.6 on S3 answers it for a batch it never stored (seen in
//!   `broker_restart`), so the producer stops and the restarted pipeline's
//!   tail read finds what the topic really holds.
//! - The three leader errors ([`super::reroute::needs_metadata`]): resend,
//!   after asking the metadata who leads the partition now.
//! - Other transient errors: resend; anything else stops the producer
//!   ([`super::protocol::classify`]).

use super::error::AttemptError;
use super::protocol::{self, PartitionResult};
use super::reroute;
use super::seal::Sealed;
use std::sync::Arc;

/// How one attempt at a request failed.
#[derive(Debug)]
pub enum Failure {
    /// Resend the batches not yet acknowledged (after a backoff), after
    /// asking who leads the partitions of `refresh` now.
    Retry {
        error: AttemptError,
        refresh: Vec<Arc<str>>,
    },
    /// Stop the producer.
    Stop(AttemptError),
}

/// The topics of `batches` (sorted by topic), once each.
pub fn topics_of(batches: &[Sealed]) -> Vec<Arc<str>> {
    let mut topics: Vec<Arc<str>> = batches.iter().map(|b| b.tp.0.clone()).collect();
    topics.dedup();
    topics
}

/// Splits `batches` by the broker's `results`: returns those it took
/// (in order) and leaves the others in `batches`; the failure, if any, is
/// the first stop, else the first reason to resend.
pub fn judge(
    results: &[PartitionResult],
    batches: &mut Vec<Sealed>,
) -> (Vec<Sealed>, Option<Failure>) {
    let mut retry = None;
    let mut refresh: Vec<Arc<str>> = Vec::new();
    let mut stop = None;
    let mut acked = Vec::new();
    let mut kept = Vec::with_capacity(batches.len());
    for b in batches.drain(..) {
        let code = results
            .iter()
            .find(|r| r.partition == b.tp.1 && *r.topic == *b.tp.0)
            .map_or(-1, |r| r.error);
        let what = || AttemptError::produce(&b.tp, code);
        if reroute::needs_metadata(code) {
            // the leader may have moved: ask the metadata, then resend
            retry.get_or_insert_with(what);
            if refresh.last() != Some(&b.tp.0) {
                refresh.push(b.tp.0.clone());
            }
            kept.push(b);
            continue;
        }
        match protocol::classify(code) {
            protocol::Outcome::Appended => acked.push(b),
            // A broker that was down in between is not trusted to have kept
            // what it says it has: Tansu 0.6 on S3 answers a resend after a
            // restart with DUPLICATE_SEQUENCE_NUMBER for a batch it never
            // stored (seen in `broker_restart`). Stop instead: the restarted
            // pipeline's tail read checks what the topic holds.
            protocol::Outcome::Duplicate if b.restarted => {
                stop.get_or_insert_with(|| AttemptError::AfterRestart(Box::new(what())));
                kept.push(b);
            }
            protocol::Outcome::Duplicate => acked.push(b),
            protocol::Outcome::Retry => {
                retry.get_or_insert_with(what);
                kept.push(b);
            }
            protocol::Outcome::Stop => {
                stop.get_or_insert_with(what);
                kept.push(b);
            }
        }
    }
    *batches = kept;
    let failure = match (stop, retry) {
        (Some(e), _) => Some(Failure::Stop(e)),
        (None, Some(error)) => Some(Failure::Retry { error, refresh }),
        (None, None) => None,
    };
    (acked, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(topic: &str, partition: i32, restarted: bool) -> Sealed {
        Sealed {
            tp: (topic.into(), partition),
            bytes: bytes::Bytes::new(),
            txns: vec![(1, 1)],
            msgs: 1,
            counted: 10,
            attempts: 0,
            first_sent: None,
            restarted,
        }
    }

    fn result(topic: &str, partition: i32, error: i16) -> PartitionResult {
        PartitionResult {
            topic: topic.into(),
            partition,
            error,
            base_offset: 0,
        }
    }

    fn tps(batches: &[Sealed]) -> Vec<(String, i32)> {
        batches
            .iter()
            .map(|b| (b.tp.0.to_string(), b.tp.1))
            .collect()
    }

    #[test]
    fn all_appended_or_duplicate_is_acknowledged_in_order() {
        let mut batches = vec![batch("a", 0, false), batch("a", 1, false)];
        let results = [result("a", 1, 46), result("a", 0, 0)];
        let (acked, failure) = judge(&results, &mut batches);
        assert_eq!(tps(&acked), [("a".into(), 0), ("a".into(), 1)]);
        assert!(batches.is_empty());
        assert!(failure.is_none());
    }

    #[test]
    fn empty_request_is_no_failure() {
        let (acked, failure) = judge(&[], &mut Vec::new());
        assert!(acked.is_empty() && failure.is_none());
    }

    #[test]
    fn leader_errors_keep_the_batch_and_ask_for_its_topic_once() {
        let mut batches = vec![
            batch("a", 0, false),
            batch("a", 1, false),
            batch("b", 0, false),
        ];
        let results = [result("a", 0, 6), result("a", 1, 3), result("b", 0, 0)];
        let (acked, failure) = judge(&results, &mut batches);
        assert_eq!(tps(&acked), [("b".into(), 0)]);
        assert_eq!(tps(&batches), [("a".into(), 0), ("a".into(), 1)]);
        match failure {
            Some(Failure::Retry { error, refresh }) => {
                assert_eq!(refresh, [Arc::<str>::from("a")]);
                assert!(matches!(error, AttemptError::Broker { code: 6, .. }));
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_after_a_restart_stops_and_a_stop_wins_over_a_retry() {
        let mut batches = vec![batch("a", 0, false), batch("a", 1, true)];
        let results = [result("a", 0, 7), result("a", 1, 46)];
        let (acked, failure) = judge(&results, &mut batches);
        assert!(acked.is_empty());
        assert_eq!(batches.len(), 2);
        match failure {
            Some(Failure::Stop(AttemptError::AfterRestart(inner))) => {
                assert!(matches!(*inner, AttemptError::Broker { code: 46, .. }));
            }
            other => panic!("expected a stop after restart, got {other:?}"),
        }
    }

    #[test]
    fn a_partition_missing_from_the_answer_stops_and_fencing_says_who() {
        let mut batches = vec![batch("a", 0, false), batch("a", 1, false)];
        let results = [result("a", 1, protocol::PRODUCER_FENCED)];
        let (_, failure) = judge(&results, &mut batches);
        // the first stop is kept: partition 0 had no answer (-1)
        match failure {
            Some(Failure::Stop(AttemptError::Broker { code: -1, .. })) => {}
            other => panic!("expected UNKNOWN_SERVER_ERROR, got {other:?}"),
        }
        let mut batches = vec![batch("a", 1, false)];
        let (_, failure) = judge(&results, &mut batches);
        let Some(Failure::Stop(e)) = failure else {
            panic!("expected a stop")
        };
        assert!(e.to_string().contains("this one is fenced"), "{e}");
    }
}
