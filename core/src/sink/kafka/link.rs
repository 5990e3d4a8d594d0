//! One task per broker (a link): it takes the first pending batch of every
//! partition it leads into one `Produce` request, resends what failed
//! within the delivery budget, and hands a partition whose leader moved
//! over to the new leader's link.
//!
//! Batching: a link sends after `linger.ms` (or at once when a batch is
//! full, a flush waits, or batches were handed over to it), with one
//! request in flight per broker, and each partition on one link at a time,
//! so that partitions stay in order.
//!
//! Failure: a transient broker error (connection lost or refused, request
//! timed out, `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`,
//! `UNKNOWN_TOPIC_OR_PARTITION`, `NOT_ENOUGH_REPLICAS(_AFTER_APPEND)`,
//! `REQUEST_TIMED_OUT`) resends the batches not yet acknowledged, the same
//! bytes with the same producer id, epoch and sequence numbers, before
//! anything later of their partitions, after a back-off ([`super::retry`]).
//! After a connection that cannot be made (a request that failed on an
//! established one is first resent on a new connection to the same broker,
//! [`super::broker`]) or one of the three leader errors, the link first
//! asks the sink's metadata who leads those partitions now
//! ([`super::leaders`]); a partition whose leader moved is handed over
//! ([`super::reroute`]): its unacknowledged batches, in order and
//! unchanged, and everything queued for it go to the new leader's link,
//! which sends them before anything later of the partition and continues
//! its sequence numbers. A partition whose leader is unchanged or unknown
//! is resent where it was. The broker drops what it already appended
//! (`DUPLICATE_SEQUENCE_NUMBER` or the original offset count as delivered;
//! [`super::answer`] says when that answer is not trusted). Any other
//! error (`OUT_OF_ORDER_SEQUENCE_NUMBER`, `UNKNOWN_PRODUCER_ID`, fenced,
//! definite errors), or an exhausted budget, fails the tracker and stops
//! the producer; queued batches are dropped, and the pipeline resumes from
//! its context and removes the duplicates.
//!
//! Tansu 0.6 never answers `NOT_LEADER_OR_FOLLOWER` (each broker names
//! itself leader of every partition, whatever the storage), so the
//! end-to-end test moves the leader by replacing the broker
//! (`leader_move`); the hand-over on that code is checked by the unit tests
//! of [`super::reroute`].

use super::answer::Failure;
use super::broker::attempt;
use super::conn::Conn;
use super::error::DeliveryError;
use super::leaders;
use super::protocol::Versions;
use super::queue::PartQueue;
use super::reroute;
use super::retry;
use super::seal::{self, Sealed};
use super::shared::{Link, Router, Shared};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The link of broker `addr`, started when it is new.
pub fn link_for(shared: &Arc<Shared>, r: &mut Router, addr: &Arc<str>) -> Arc<Link> {
    if let Some(l) = r.links.get(addr) {
        return l.clone();
    }
    let link = Arc::new(Link::default());
    r.links.insert(addr.clone(), link.clone());
    if let Some(tasks) = r.tasks.as_mut() {
        tasks.spawn(run_link(addr.clone(), link.clone(), shared.clone()));
    }
    link
}

/// Sends one broker's batches, one request at a time.
async fn run_link(addr: Arc<str>, link: Arc<Link>, shared: Arc<Shared>) {
    let mut conn: Option<(Conn, Versions)> = None;
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            shared.drop_queued(&link);
        }
        let (since, bytes, handed) = {
            let q = link.queue.lock().expect("link queue lock");
            (q.since, q.bytes, q.handed())
        };
        let Some(since) = since else {
            link.wake.notified().await;
            continue;
        };
        let due = since + shared.settings.linger;
        if !shared.urgent.load(Ordering::Acquire)
            && !handed
            && bytes < shared.settings.batch_bytes
            && Instant::now() < due
        {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = link.wake.notified() => {}
            }
            continue;
        }
        let taken = link.queue.lock().expect("link queue lock").take();
        if taken.is_empty() {
            continue;
        }
        // outside the queue lock: compression takes time
        let batches = match seal::seal(taken, shared.pid, shared.settings.compression) {
            Ok(batches) => batches,
            Err(failed) => {
                shared.settle(failed.msgs, failed.counted);
                shared.stop(failed.error);
                continue;
            }
        };
        if let Err(e) = produce(&addr, &link, &mut conn, batches, &shared).await {
            shared.stop(e);
            conn = None;
        }
    }
}

/// One `Produce` request with the given batches (sorted by partition),
/// resent on transient errors within the retry budget, or handed over to
/// the new leader of their partition; acknowledges them.
async fn produce(
    addr: &Arc<str>,
    link: &Link,
    conn: &mut Option<(Conn, Versions)>,
    mut batches: Vec<Sealed>,
    shared: &Arc<Shared>,
) -> Result<(), DeliveryError> {
    loop {
        if batches.is_empty() {
            return Ok(());
        }
        if shared.stopped.load(Ordering::Acquire) {
            shared.settle_sealed(&batches);
            return Ok(());
        }
        retry::mark_sent(&mut batches, Instant::now());
        let (reason, refresh) = match attempt(addr, link, conn, &mut batches, shared).await {
            Ok(()) => return Ok(()),
            Err(Failure::Stop(e)) => {
                shared.settle_sealed(&batches);
                return Err(DeliveryError::Stopped(e));
            }
            Err(Failure::Retry { error, refresh }) => (error, refresh),
        };
        *conn = None;
        let (attempts, elapsed) = retry::count_failure(&mut batches);
        let Some(backoff) = retry::backoff(&shared.settings, attempts, elapsed) else {
            shared.settle_sealed(&batches);
            return Err(DeliveryError::GaveUp {
                source: reason,
                attempts,
                elapsed_ms: elapsed.as_millis(),
            });
        };
        tracing::warn!(broker = %addr, error = %reason, attempt = attempts,
            backoff_ms = backoff.as_millis() as u64, "kafka request failed; resending");
        tokio::time::sleep(backoff).await;
        if !refresh.is_empty() {
            batches = reroute_batches(addr, batches, refresh, shared).await;
        }
    }
}

/// Asks who leads the partitions of `topics` now and hands the batches of
/// each moved partition over to its new leader's link; returns the batches
/// that stay.
async fn reroute_batches(
    addr: &Arc<str>,
    batches: Vec<Sealed>,
    topics: Vec<Arc<str>>,
    shared: &Arc<Shared>,
) -> Vec<Sealed> {
    let Some(lookup) = shared.lookup.get() else {
        return batches;
    };
    let found = leaders::leaders_of(lookup, topics, shared.timeout).await;
    let plan = reroute::plan(addr, batches, |(topic, p)| {
        found.get(topic).and_then(|l| l.get(*p as usize)).cloned()
    });
    if !plan.moves.is_empty() {
        hand_over(shared, addr, plan.moves);
    }
    plan.stay
}

/// Moves each partition of `moves`, with its in-flight batches and
/// everything `from` had queued for it, to the link of its new leader, and
/// routes its later records there.
fn hand_over(shared: &Arc<Shared>, from: &Arc<str>, moves: Vec<reroute::Move<Sealed>>) {
    let mut r = shared.router.lock().expect("router lock");
    let old_link = r.links.get(from).cloned();
    for mut m in moves {
        // The mark says the old broker refused a connection (restarted);
        // the new leader did not, and its DUPLICATE_SEQUENCE_NUMBER comes
        // from producer state kept with the log (Kafka replicates it; Tansu
        // on PostgreSQL checks the sequence and appends in one transaction).
        for b in m.batches.iter_mut() {
            b.restarted = false;
        }
        let old = match &old_link {
            Some(l) => l.queue.lock().expect("link queue lock").remove(&m.tp),
            None => PartQueue::default(),
        };
        let (in_flight, queued) = (m.batches.len(), old.ready.len() + old.open.len());
        let to = link_for(shared, &mut r, &m.to);
        to.queue
            .lock()
            .expect("link queue lock")
            .receive(m.tp.clone(), m.batches, old);
        to.acked.store(false, Ordering::Release);
        to.wake.notify_one();
        tracing::info!(topic = %m.tp.0, partition = m.tp.1, from = %from, to = %m.to,
            in_flight, queued, "kafka partition leader moved; its batches follow it");
        r.routes.insert(m.tp.clone(), m.to.clone());
        r.moves.push((m.tp, m.to));
        shared.moved.store(true, Ordering::Release);
    }
}
