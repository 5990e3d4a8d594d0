//! The task's fenced, idempotent Kafka producer.
//!
//! Flow in: records for (topic, partition, leader address) with the id of
//! the transaction they belong to. Flow out: acknowledgements to the
//! [`Tracker`], per transaction, in partition order.
//!
//! Fencing: on start the producer asks the task's transaction coordinator
//! for the producer id of transactional id `mysql-replicator:<task znode>`
//! (`InitProducerId`). Every call returns the same id with a higher epoch.
//! Tansu then refuses older epochs everywhere (`PRODUCER_FENCED`); Apache
//! Kafka refuses them on a partition only once a batch of the new epoch
//! landed there (`INVALID_PRODUCER_EPOCH`), which is why the sink writes a
//! fence record to every partition before it reads a tail
//! ([`crate::sink::takeover`]). Batches are idempotent, not transactional:
//! they are visible at once and need no commit.
//!
//! Batching: one link task per broker takes the first pending batch of every
//! partition it leads into one `Produce` request after `linger.ms` (or at
//! once when a batch is full or a flush waits), with one request in flight
//! per broker so that partitions stay in order. Memory is bounded by
//! `queue.buffering.max.*`: `send` waits while that much is unacknowledged.
//!
//! Failure: a transient broker error (connection lost, request timed out,
//! `LEADER_NOT_AVAILABLE`, `NOT_ENOUGH_REPLICAS(_AFTER_APPEND)`,
//! `REQUEST_TIMED_OUT`) resends the batches not yet acknowledged, the same
//! bytes with the same producer id, epoch and sequence numbers, on a new
//! connection, before anything later of their partitions (one request in
//! flight per broker keeps partition order). The broker drops what it
//! already appended (`DUPLICATE_SEQUENCE_NUMBER` or the original offset
//! count as delivered), except after the broker refused a connection in
//! between (its process restarted): Tansu 0.6 on S3 then answers
//! `DUPLICATE_SEQUENCE_NUMBER` for a batch it never stored, so that answer
//! stops the producer like the errors below and the restarted pipeline's
//! tail read finds what the topic really holds. At
//! most `retries` resends within `delivery.timeout.ms`, backing off from
//! `retry.backoff.ms` doubling up to 1 s. Any other error, or an exhausted
//! budget, fails the tracker and stops the producer; queued batches are
//! dropped, and the pipeline resumes from its context and removes the
//! duplicates. `NOT_LEADER_OR_FOLLOWER` is one of those: the leader moved,
//! and the restarted pipeline reads fresh metadata.
//!
//! Self-fence: right before a request goes on the wire the producer asks its
//! [`WireGuard`] (the writer's ZooKeeper lease). Once the lease expired it
//! sends nothing more, so a process that resumes from a freeze does not put
//! what it had queued on the wire.

use super::batch::{BatchBuilder, ProducerId, HEADER_LEN};
use super::conn::{Client, Conn, ConnError};
use super::protocol::{self, error_name, Versions};
use crate::sink::tracker::Tracker;
use replicator_common::producer::ProducerSettings;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Asked right before each request goes on the wire: false stops the
/// producer before it sends (the writer's lease expired).
pub type WireGuard = Arc<dyn Fn() -> bool + Send + Sync>;

/// A guard that always allows sending (tests, tools without a lease).
pub fn no_guard() -> WireGuard {
    Arc::new(|| true)
}

/// How long to keep asking a coordinator that is not ready.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(10);

/// Why the producer could not start or accept a record.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{what}: Kafka error {name} ({code})")]
    Broker {
        what: String,
        code: i16,
        name: &'static str,
    },
    #[error("no reachable broker in `{0}`")]
    NoBroker(String),
    #[error("a record of {size} bytes does not fit in a batch (batch.size {max})")]
    TooLarge { size: usize, max: usize },
    #[error("producer stopped: {0}")]
    Stopped(String),
    #[error("Kafka at {addr}: {source}")]
    Unsupported {
        addr: String,
        #[source]
        source: protocol::UnsupportedVersions,
    },
}

/// Why one attempt at a `Produce` request failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Connect(#[from] ProducerError),
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("producing to {topic}/{partition}: Kafka error {name} ({code}){hint}")]
    Broker {
        topic: Arc<str>,
        partition: i32,
        code: i16,
        name: &'static str,
        /// Said of a fenced epoch: who fenced it.
        hint: &'static str,
    },
    #[error("{0} after the broker restarted: not taken on trust")]
    AfterRestart(Box<AttemptError>),
    #[error("lease expired: nothing more goes on the wire (self-fenced)")]
    LeaseExpired,
}

/// Why records were not delivered; the first one stops the producer.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("compressing a batch with {codec}: {source}")]
    Compress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{source} (gave up after {attempts} attempts in {elapsed_ms} ms)")]
    GaveUp {
        #[source]
        source: AttemptError,
        attempts: u32,
        elapsed_ms: u128,
    },
    #[error(transparent)]
    Stopped(AttemptError),
}

/// Why a flush did not end with everything acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The first delivery failure, as the tracker recorded it.
    #[error("{0}")]
    Failed(String),
    #[error("{in_flight} messages still unacknowledged after {waited_ms} ms")]
    TimedOut { in_flight: usize, waited_ms: u128 },
}

impl ProducerError {
    /// True when retrying cannot help (the task must stop).
    pub fn is_definite(&self) -> bool {
        match self {
            ProducerError::Broker { code, .. } => protocol::is_definite(*code),
            ProducerError::Conn(c) => c.is_definite(),
            ProducerError::TooLarge { .. } | ProducerError::Unsupported { .. } => true,
            _ => false,
        }
    }

    fn broker(what: impl Into<String>, code: i16) -> Self {
        ProducerError::Broker {
            what: what.into(),
            code,
            name: error_name(code),
        }
    }
}

/// The transactional id whose epochs fence the writers of a task: its
/// znode path (`task_path`), unique per deployment and task even when
/// several deployments share a Kafka cluster.
pub fn transactional_id(task_path: &str) -> String {
    format!("mysql-replicator:{task_path}")
}

type Tp = (Arc<str>, i32);

struct Pending {
    batch: BatchBuilder,
    /// Run-length transaction ids of the records, in order.
    txns: Vec<(u64, u64)>,
}

#[derive(Default)]
struct Queue {
    parts: HashMap<Tp, VecDeque<Pending>>,
    bytes: usize,
    /// When the oldest record now queued arrived.
    since: Option<Instant>,
}

struct Link {
    queue: Mutex<Queue>,
    wake: Notify,
}

struct Shared {
    pid: ProducerId,
    tracker: Arc<Tracker>,
    settings: ProducerSettings,
    client: Client,
    timeout: Duration,
    unacked_msgs: AtomicUsize,
    unacked_bytes: AtomicUsize,
    /// A flush waits: send without lingering.
    urgent: AtomicBool,
    stopped: AtomicBool,
    guard: WireGuard,
    /// The guard refused a request.
    lease_expired: AtomicBool,
}

impl Shared {
    fn settle(&self, msgs: usize, bytes: usize) {
        self.unacked_msgs.fetch_sub(msgs, Ordering::AcqRel);
        self.unacked_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn stop(&self, reason: &DeliveryError) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            tracing::warn!(reason = %reason, "kafka producer stopped");
        }
        self.tracker.fail(0, reason.to_string());
    }
}

pub struct Producer {
    shared: Arc<Shared>,
    links: HashMap<Arc<str>, Arc<Link>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Producer {
    /// Fences every earlier writer of `transactional_id` and returns a
    /// producer holding the new epoch.
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
        let timeout = client.timeout;
        for addr in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Self::init_producer_id(addr, transactional_id, &client).await {
                Ok(pid) => {
                    tracing::info!(
                        transactional_id,
                        producer_id = pid.id,
                        epoch = pid.epoch,
                        took_ms = started.elapsed().as_millis() as u64,
                        "kafka producer fenced earlier writers"
                    );
                    let shared = Arc::new(Shared {
                        pid,
                        tracker,
                        settings,
                        client,
                        timeout,
                        unacked_msgs: AtomicUsize::new(0),
                        unacked_bytes: AtomicUsize::new(0),
                        urgent: AtomicBool::new(false),
                        stopped: AtomicBool::new(false),
                        guard,
                        lease_expired: AtomicBool::new(false),
                    });
                    return Ok(Self {
                        shared,
                        links: HashMap::new(),
                        tasks: Vec::new(),
                    });
                }
                Err(e @ ProducerError::Broker { .. }) => return Err(e),
                Err(e) if e.is_definite() => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ProducerError::NoBroker(brokers.to_string())))
    }

    async fn init_producer_id(
        bootstrap: &str,
        transactional_id: &str,
        client: &Client,
    ) -> Result<ProducerId, ProducerError> {
        let deadline = Instant::now() + COORDINATOR_PATIENCE;
        let (mut conn, v) = connect(bootstrap, client).await?;
        loop {
            let find = protocol::find_coordinator(transactional_id);
            let c = protocol::read_coordinator(&conn.call(&find, v.find_coordinator).await?);
            if c.error != 0 {
                if retriable_coordinator_error(c.error) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                return Err(ProducerError::broker(
                    format!("finding the coordinator of {transactional_id}"),
                    c.error,
                ));
            }
            let addr = format!("{}:{}", c.host, c.port);
            let mut coord = if addr == conn.addr() {
                None
            } else {
                Some(connect(&addr, client).await?)
            };
            let (cc, cv) = match coord.as_mut() {
                Some((c, cv)) => (c, *cv),
                None => (&mut conn, v),
            };
            let init = protocol::init_producer_id(transactional_id, 60_000);
            let (error, id, epoch) =
                protocol::read_producer_id(&cc.call(&init, cv.init_producer_id).await?);
            match error {
                0 => return Ok(ProducerId { id, epoch }),
                e if retriable_coordinator_error(e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                e => {
                    return Err(ProducerError::broker(
                        format!("getting a producer id for {transactional_id}"),
                        e,
                    ))
                }
            }
        }
    }

    pub fn producer_id(&self) -> ProducerId {
        self.shared.pid
    }

    /// True once the [`WireGuard`] refused a request.
    pub fn lease_expired(&self) -> bool {
        self.shared.lease_expired.load(Ordering::Acquire)
    }

    /// Queues one record for `partition` of `topic`, led by the broker at
    /// `leader`. Waits while the unacknowledged bounds are reached.
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
        let link = self.link(leader);
        let s = &self.shared;
        if size + HEADER_LEN > s.settings.batch_bytes {
            return Err(ProducerError::TooLarge {
                size,
                max: s.settings.batch_bytes,
            });
        }
        loop {
            if s.stopped.load(Ordering::Acquire) {
                return Err(ProducerError::Stopped(
                    s.tracker.failure().unwrap_or_else(|| "purged".into()),
                ));
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
        let wake = {
            let mut q = link.queue.lock().expect("link queue lock");
            let batch_bytes = s.settings.batch_bytes;
            let parts = q.parts.entry((topic.clone(), partition)).or_default();
            if parts
                .back()
                .is_none_or(|p| p.batch.size() + size > batch_bytes)
            {
                parts.push_back(Pending {
                    batch: BatchBuilder::with_capacity((batch_bytes / 4).min(256 * 1024)),
                    txns: Vec::new(),
                });
            }
            let p = parts.back_mut().expect("just pushed");
            p.batch.push(ts, key, value, headers);
            match p.txns.last_mut() {
                Some((t, n)) if *t == txn => *n += 1,
                _ => p.txns.push((txn, 1)),
            }
            let full = p.batch.size() + size > batch_bytes;
            let was_empty = q.since.is_none();
            q.bytes += size;
            q.since.get_or_insert_with(Instant::now);
            was_empty || full
        };
        if wake {
            link.wake.notify_one();
        }
        Ok(())
    }

    fn link(&mut self, leader: &Arc<str>) -> Arc<Link> {
        if let Some(l) = self.links.get(leader) {
            return l.clone();
        }
        let link = Arc::new(Link {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        });
        self.links.insert(leader.clone(), link.clone());
        self.tasks.push(tokio::spawn(run_link(
            leader.clone(),
            link.clone(),
            self.shared.clone(),
        )));
        link
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
        for l in self.links.values() {
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
        for l in self.links.values() {
            drop_queued(l, &self.shared);
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects and learns which versions to use with this broker
/// (`ApiVersions`; a broker that refuses v0 gets our defaults).
async fn connect(addr: &str, client: &Client) -> Result<(Conn, Versions), ProducerError> {
    let mut conn = Conn::connect(addr, client).await?;
    let answer = conn
        .call(&protocol::api_versions(), protocol::API_VERSIONS_VERSION)
        .await?;
    let (error, ranges) = protocol::read_api_versions(&answer);
    if error != 0 {
        tracing::debug!(
            broker = addr,
            code = error,
            "ApiVersions refused; using defaults"
        );
        return Ok((conn, Versions::default()));
    }
    let versions =
        protocol::pick_versions(&ranges).map_err(|source| ProducerError::Unsupported {
            addr: addr.to_string(),
            source,
        })?;
    tracing::debug!(broker = addr, ?versions, "negotiated request versions");
    Ok((conn, versions))
}

fn retriable_coordinator_error(code: i16) -> bool {
    matches!(code, 14..=16 | 51)
}

fn drop_queued(link: &Link, shared: &Shared) {
    let parts = std::mem::take(&mut *link.queue.lock().expect("link queue lock"));
    for p in parts.parts.into_values().flatten() {
        shared.settle(p.batch.count() as usize, p.batch.size() - HEADER_LEN);
    }
}

/// Sends one broker's batches, one request at a time.
async fn run_link(addr: Arc<str>, link: Arc<Link>, shared: Arc<Shared>) {
    let mut conn: Option<(Conn, Versions)> = None;
    let mut sequences: HashMap<Tp, i32> = HashMap::new();
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            drop_queued(&link, &shared);
        }
        let (since, bytes) = {
            let q = link.queue.lock().expect("link queue lock");
            (q.since, q.bytes)
        };
        let Some(since) = since else {
            link.wake.notified().await;
            continue;
        };
        let due = since + shared.settings.linger;
        if !shared.urgent.load(Ordering::Acquire)
            && bytes < shared.settings.batch_bytes
            && Instant::now() < due
        {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = link.wake.notified() => {}
            }
            continue;
        }
        let mut taken: Vec<(Tp, Pending)> = {
            let mut q = link.queue.lock().expect("link queue lock");
            let mut taken = Vec::with_capacity(q.parts.len());
            let mut left = false;
            let mut freed = 0;
            for (tp, parts) in q.parts.iter_mut() {
                if let Some(p) = parts.pop_front() {
                    freed += p.batch.size() - HEADER_LEN;
                    taken.push((tp.clone(), p));
                }
                left |= !parts.is_empty();
            }
            q.parts.retain(|_, parts| !parts.is_empty());
            q.bytes -= freed;
            q.since = left.then(Instant::now);
            taken
        };
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        if let Err(e) = produce(&addr, &mut conn, &mut sequences, taken, &shared).await {
            shared.stop(&e);
            conn = None;
        }
    }
}

/// One partition's batch, sealed with its producer id, epoch and sequence
/// once: every resend carries the same bytes, so the broker can tell a
/// resend of what it already appended (the original offset) from a new batch.
struct Sealed {
    topic: Arc<str>,
    partition: i32,
    bytes: bytes::Bytes,
    txns: Vec<(u64, u64)>,
}

/// How one attempt at a request failed.
enum Failure {
    /// Resend the batches not yet acknowledged (after a backoff).
    Retry(AttemptError),
    /// Stop the producer.
    Stop(AttemptError),
}

/// One `Produce` request with the given batches, resent on transient
/// errors within the retry budget; acknowledges them.
async fn produce(
    addr: &Arc<str>,
    conn: &mut Option<(Conn, Versions)>,
    sequences: &mut HashMap<Tp, i32>,
    taken: Vec<(Tp, Pending)>,
    shared: &Shared,
) -> Result<(), DeliveryError> {
    let msgs: usize = taken.iter().map(|(_, p)| p.batch.count() as usize).sum();
    let bytes: usize = taken.iter().map(|(_, p)| p.batch.size() - HEADER_LEN).sum();
    let codec = shared.settings.compression;
    // sealed once: a resend carries the same bytes (same sequence numbers)
    let mut batches: Vec<Sealed> = Vec::with_capacity(taken.len());
    for ((topic, partition), p) in taken {
        let seq = sequences.entry((topic.clone(), partition)).or_insert(0);
        let count = p.batch.count();
        let bytes =
            p.batch
                .seal(shared.pid, *seq, codec)
                .map_err(|source| DeliveryError::Compress {
                    codec: codec.name(),
                    source,
                })?;
        *seq = seq.wrapping_add(count) & i32::MAX;
        batches.push(Sealed {
            topic,
            partition,
            bytes,
            txns: p.txns,
        });
    }
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut restarted = false;
    let result = loop {
        if shared.stopped.load(Ordering::Acquire) {
            break Ok(());
        }
        let reason = match attempt(addr, conn, &mut batches, shared, &mut restarted).await {
            Ok(()) => break Ok(()),
            Err(Failure::Stop(e)) => break Err(DeliveryError::Stopped(e)),
            Err(Failure::Retry(e)) => e,
        };
        *conn = None;
        attempts += 1;
        let s = &shared.settings;
        let backoff = s
            .retry_backoff
            .saturating_mul(1 << (attempts - 1).min(10))
            .min(Duration::from_secs(1));
        if attempts > s.retries || started.elapsed() + backoff > s.delivery_timeout {
            break Err(DeliveryError::GaveUp {
                source: reason,
                attempts,
                elapsed_ms: started.elapsed().as_millis(),
            });
        }
        tracing::warn!(broker = %addr, error = %reason, attempt = attempts,
            backoff_ms = backoff.as_millis() as u64, "kafka request failed; resending");
        tokio::time::sleep(backoff).await;
    };
    shared.settle(msgs, bytes);
    result
}

/// Sends `batches` once; removes (and acknowledges) those the broker took.
/// `restarted` is set once the broker refused a connection during this
/// request's resends (its process was down in between).
async fn attempt(
    addr: &Arc<str>,
    conn: &mut Option<(Conn, Versions)>,
    batches: &mut Vec<Sealed>,
    shared: &Shared,
    restarted: &mut bool,
) -> Result<(), Failure> {
    if conn.is_none() {
        *conn = Some(connect(addr, &shared.client).await.map_err(|e| match e {
            e @ ProducerError::Unsupported { .. } => Failure::Stop(e.into()),
            e => {
                if let ProducerError::Conn(ConnError::Connect { source, .. }) = &e {
                    *restarted |= source.kind() == std::io::ErrorKind::ConnectionRefused;
                }
                Failure::Retry(e.into())
            }
        })?);
    }
    let restarted = *restarted;
    let (c, v) = conn.as_mut().expect("connected");
    let version = v.produce;
    // `batches` is sorted by topic: one entry per topic.
    let request = protocol::produce(
        shared.timeout.as_millis() as i32,
        batches.iter().map(|b| protocol::PartitionBatch {
            topic: &b.topic,
            partition: b.partition,
            batch: &b.bytes,
        }),
    );
    let frame = c
        .encode(&request, version)
        .map_err(|e| Failure::Stop(e.into()))?;
    // Self-fence: the last check before the request goes on the wire. A
    // process frozen with this request queued finds its lease expired here.
    if !(shared.guard)() {
        shared.lease_expired.store(true, Ordering::Release);
        return Err(Failure::Stop(AttemptError::LeaseExpired));
    }
    let response = c
        .exchange(frame)
        .await
        .map_err(|e| Failure::Retry(e.into()))?;
    let results = protocol::read_produce(&response);
    let mut retry = None;
    let mut stop = None;
    batches.retain(|b| {
        let code = results
            .iter()
            .find(|r| r.partition == b.partition && *r.topic == *b.topic)
            .map_or(-1, |r| r.error);
        let what = || AttemptError::Broker {
            topic: b.topic.clone(),
            partition: b.partition,
            code,
            name: error_name(code),
            hint: if matches!(
                code,
                protocol::PRODUCER_FENCED | protocol::INVALID_PRODUCER_EPOCH
            ) {
                " (a newer writer of this task started: this one is fenced)"
            } else {
                ""
            },
        };
        match protocol::classify(code) {
            protocol::Outcome::Appended => {
                for &(txn, n) in &b.txns {
                    shared.tracker.ack_many(txn, n);
                }
                false
            }
            // A broker that was down in between is not trusted to have kept
            // what it says it has: Tansu 0.6 on S3 answers a resend after a
            // restart with DUPLICATE_SEQUENCE_NUMBER for a batch it never
            // stored (seen in `broker_restart`). Stop instead: the restarted
            // pipeline's tail read checks what the topic holds.
            protocol::Outcome::Duplicate if restarted => {
                stop.get_or_insert_with(|| AttemptError::AfterRestart(Box::new(what())));
                true
            }
            protocol::Outcome::Duplicate => {
                for &(txn, n) in &b.txns {
                    shared.tracker.ack_many(txn, n);
                }
                false
            }
            protocol::Outcome::Retry => {
                retry.get_or_insert_with(what);
                true
            }
            protocol::Outcome::Stop => {
                stop.get_or_insert_with(what);
                true
            }
        }
    });
    match (stop, retry) {
        (Some(e), _) => Err(Failure::Stop(e)),
        (None, Some(e)) => Err(Failure::Retry(e)),
        (None, None) => Ok(()),
    }
}
