//! The task's fenced, idempotent Kafka producer: what the sink calls.
//!
//! Flow in: records for (topic, partition, leader address) with the id of
//! the transaction they belong to. Flow out: acknowledgements to the
//! [`Tracker`], per transaction, in partition order; and the partitions
//! whose leader moved ([`Producer::take_moves`]), for the sink's leader cache.
//!
//! The steps, each in its module:
//! - start: fence every earlier writer of the task ([`super::fence`]:
//!   `InitProducerId` gives the same producer id with a higher epoch);
//! - [`Producer::send`]: route the record to the link of its partition's
//!   broker (the leader the sink named for its first record, and after that
//!   wherever the partition moved) and queue it in the partition's open
//!   batch ([`super::queue`]); memory is bounded by
//!   `queue.buffering.max.*`: `send` waits while that much is
//!   unacknowledged;
//! - each link task ([`super::link`]) seals the first batch of every
//!   partition it leads ([`super::seal`]), sends them in one `Produce`
//!   request ([`super::broker`]), acknowledges what the broker took
//!   ([`super::answer`]), resends the rest within the delivery budget
//!   ([`super::retry`]) and hands partitions whose leader moved over to the
//!   new leader's link ([`super::leaders`], [`super::reroute`]);
//! - [`Producer::flush`] waits until everything is acknowledged;
//!   [`Producer::purge`] drops what is queued.
//!
//! Failure: the first delivery that fails for good fails the tracker and
//! stops the producer; `send` then refuses records
//! ([`ProducerError::Stopped`]) and the pipeline resumes from its context.
//! Self-fence: right before a request goes on the wire the producer asks
//! its [`WireGuard`] (the writer's ZooKeeper lease); once the lease expired
//! it sends nothing more.

use super::batch::{BatchBuilder, ProducerId, HEADER_LEN};
use super::conn::Client;
use super::error::{FlushError, ProducerError};
use super::fence;
use super::leaders::LeaderLookup;
use super::link::link_for;
use super::reroute::Tp;
use super::seal::Record;
use super::shared::{Shared, WireGuard};
use crate::sink::tracker::Tracker;
use replicator_common::producer::ProducerSettings;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Producer {
    shared: Arc<Shared>,
}

impl Producer {
    /// Fences every earlier writer of `transactional_id` and returns a
    /// producer holding the new epoch. Without a [`LeaderLookup`]
    /// ([`Producer::set_leader_lookup`]) failed batches are resent to the
    /// same broker.
    pub async fn start(
        brokers: &str,
        transactional_id: &str,
        settings: ProducerSettings,
        client: Client,
        tracker: Arc<Tracker>,
        guard: WireGuard,
    ) -> Result<Self, ProducerError> {
        let started = Instant::now();
        let mut last_err = None;
        for addr in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match fence::init_producer_id(addr, transactional_id, &client).await {
                Ok(pid) => {
                    tracing::info!(
                        transactional_id,
                        producer_id = pid.id,
                        epoch = pid.epoch,
                        took_ms = started.elapsed().as_millis() as u64,
                        "kafka producer fenced earlier writers"
                    );
                    let shared = Shared::new(pid, settings, client, tracker, guard);
                    return Ok(Self {
                        shared: Arc::new(shared),
                    });
                }
                Err(e @ ProducerError::Broker { .. }) => return Err(e),
                Err(e) if e.is_definite() => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ProducerError::NoBroker(brokers.to_string())))
    }

    /// Where to ask who leads a partition after a leader error or a failed
    /// connection (set once; later calls are ignored).
    pub fn set_leader_lookup(&self, lookup: Arc<dyn LeaderLookup>) {
        let _ = self.shared.lookup.set(lookup);
    }

    pub fn producer_id(&self) -> ProducerId {
        self.shared.pid
    }

    /// True once the [`WireGuard`] refused a request.
    pub fn lease_expired(&self) -> bool {
        self.shared.lease_expired.load(Ordering::Acquire)
    }

    /// The partitions handed over to a new leader since the last call, with
    /// their new leader's address.
    pub fn take_moves(&self) -> Vec<(Tp, Arc<str>)> {
        if !self.shared.moved.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut r = self.shared.router.lock().expect("router lock");
        self.shared.moved.store(false, Ordering::Release);
        std::mem::take(&mut r.moves)
    }

    /// Queues one record for `partition` of `topic`, led by the broker at
    /// `leader` (unless the partition has moved since its first record).
    /// Waits while the unacknowledged bounds are reached.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &mut self,
        leader: &Arc<str>,
        topic: &Arc<str>,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        txn: u64,
    ) -> Result<(), ProducerError> {
        let size = BatchBuilder::record_size(key, value, headers);
        let s = &self.shared;
        if size + HEADER_LEN > s.settings.batch_bytes {
            return Err(ProducerError::TooLarge {
                size,
                max: s.settings.batch_bytes,
            });
        }
        loop {
            if s.stopped.load(Ordering::Acquire) {
                return Err(ProducerError::Stopped(s.tracker.failure()));
            }
            let msgs = s.unacked_msgs.load(Ordering::Acquire);
            let bytes = s.unacked_bytes.load(Ordering::Acquire);
            if msgs == 0 || (msgs < s.settings.max_messages && bytes + size <= s.settings.max_bytes)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        s.unacked_msgs.fetch_add(1, Ordering::AcqRel);
        s.unacked_bytes.fetch_add(size, Ordering::AcqRel);
        let tp: Tp = (topic.clone(), partition);
        // under the router lock: a hand-over of this partition either sees
        // this record in the old link's queue or routes it to the new link
        let mut r = s.router.lock().expect("router lock");
        let addr = match r.routes.get(&tp) {
            Some(addr) => addr.clone(),
            None => {
                r.routes.insert(tp.clone(), leader.clone());
                leader.clone()
            }
        };
        let link = link_for(&self.shared, &mut r, &addr);
        let record = Record {
            ts,
            key,
            value,
            headers,
            txn,
            size,
        };
        let wake =
            link.queue
                .lock()
                .expect("link queue lock")
                .push(tp, &record, s.settings.batch_bytes);
        drop(r);
        if wake {
            link.wake.notify_one();
        }
        Ok(())
    }

    /// Records accepted and not yet acknowledged (or dropped).
    pub fn in_flight(&self) -> usize {
        self.shared.unacked_msgs.load(Ordering::Acquire)
    }

    /// Waits until every accepted record is acknowledged, or the producer
    /// failed, or `timeout` passed.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.shared.urgent.store(true, Ordering::Release);
        for l in self.shared.links() {
            l.wake.notify_one();
        }
        let r = loop {
            // A failed request settles its records too: check failure first.
            if let Some(f) = self.shared.tracker.failure() {
                break Err(FlushError::Failed(f));
            }
            if self.in_flight() == 0 {
                break Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break Err(FlushError::TimedOut {
                    in_flight: self.in_flight(),
                    waited_ms: timeout.as_millis(),
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        self.shared.urgent.store(false, Ordering::Release);
        r
    }

    /// Drops every queued record; what is in flight still resolves.
    pub fn purge(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        for l in self.shared.links() {
            self.shared.drop_queued(&l);
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // dropping the set aborts every link task
        let tasks = match self.shared.router.lock() {
            Ok(mut r) => r.tasks.take(),
            Err(poisoned) => poisoned.into_inner().tasks.take(),
        };
        drop(tasks);
    }
}
