//! The task's fenced, idempotent Kafka producer.
//!
//! Flow in: records for (topic, partition, leader address) with the id of
//! the transaction they belong to. Flow out: acknowledgements to the
//! [`Tracker`], per transaction, in partition order; and the partitions
//! whose leader moved ([`Producer::take_moves`]), for the sink's leader cache.
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
//! once when a batch is full, a flush waits, or batches were handed over to
//! it), with one request in flight per broker, and each partition on one
//! link at a time, so that partitions stay in order. The producer routes a
//! partition to the leader the sink named for its first record, and after
//! that to wherever the partition moved. Memory is bounded by
//! `queue.buffering.max.*`: `send` waits while that much is unacknowledged.
//!
//! Failure: a transient broker error (connection lost or refused, request
//! timed out, `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`,
//! `UNKNOWN_TOPIC_OR_PARTITION`, `NOT_ENOUGH_REPLICAS(_AFTER_APPEND)`,
//! `REQUEST_TIMED_OUT`) resends the batches not yet acknowledged, the same
//! bytes with the same producer id, epoch and sequence numbers, before
//! anything later of their partitions. After a connection that cannot be
//! made (a request that failed on an established one is first resent on a
//! new connection to the same broker) or one of the three leader errors,
//! the producer first asks the sink's metadata who leads those partitions
//! now ([`LeaderLookup`]: rdkafka's metadata request on a blocking thread,
//! bounded by the request timeout); a partition whose
//! leader moved is handed over ([`super::reroute`]): its unacknowledged
//! batches, in order and unchanged, and everything queued for it go to the
//! new leader's link, which sends them before anything later of the
//! partition and continues its sequence numbers. A partition whose leader
//! is unchanged or unknown is resent where it was. The broker drops what it
//! already appended (`DUPLICATE_SEQUENCE_NUMBER` or the original offset
//! count as delivered), except after the same broker refused a connection
//! during the batch's resends (its process restarted): Tansu 0.6 on S3 then
//! answers `DUPLICATE_SEQUENCE_NUMBER` for a batch it never stored, so that
//! answer stops the producer like the errors below and the restarted
//! pipeline's tail read finds what the topic really holds. A new leader's
//! answer is trusted: its producer state comes with the log (Kafka
//! replicates it; Tansu on PostgreSQL checks the sequence and appends in one
//! transaction), and the old leader's crash typically leaves it exactly
//! that: a batch appended whose acknowledgement was lost. Each batch is resent at most `retries` times
//! within `delivery.timeout.ms` of its first attempt, on whichever link,
//! backing off from `retry.backoff.ms` doubling up to 1 s. Any other error
//! (`OUT_OF_ORDER_SEQUENCE_NUMBER`, `UNKNOWN_PRODUCER_ID`, fenced, definite
//! errors), or an exhausted budget, fails the tracker and stops the
//! producer; queued batches are dropped, and the pipeline resumes from its
//! context and removes the duplicates.
//!
//! Tansu 0.6 never answers `NOT_LEADER_OR_FOLLOWER` (each broker names
//! itself leader of every partition, whatever the storage), so the
//! end-to-end test moves the leader by replacing the broker
//! (`leader_move`); the hand-over on that code is checked by the unit tests
//! of [`super::reroute`].
//!
//! Self-fence: right before a request goes on the wire the producer asks its
//! [`WireGuard`] (the writer's ZooKeeper lease). Once the lease expired it
//! sends nothing more, so a process that resumes from a freeze does not put
//! what it had queued on the wire.

use super::batch::{BatchBuilder, ProducerId, HEADER_LEN};
use super::conn::{Client, Conn, ConnError};
use super::protocol::{self, error_name, Versions};
use super::reroute::{self, OfPartition, Tp};
use crate::sink::tracker::Tracker;
use replicator_common::producer::ProducerSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::task::JoinSet;

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

/// Who leads each partition of a topic now, from the cluster's metadata:
/// asked after a leader error or a failed connection.
pub trait LeaderLookup: Send + Sync {
    /// Blocking (the producer runs it on a blocking thread), bounded by
    /// `timeout`: the leader address of each partition of `topic`, or
    /// `None` when the metadata does not know the topic or a partition has
    /// no leader.
    fn leaders(&self, topic: &str, timeout: Duration)
        -> Result<Option<Vec<Arc<str>>>, LookupError>;
}

/// Why a metadata lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("metadata of {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("metadata of {topic}: no answer within {waited_ms} ms")]
    TimedOut { topic: String, waited_ms: u128 },
    #[error("metadata of {topic}: the lookup task failed: {source}")]
    Task {
        topic: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("the metadata client is closed")]
    Closed,
}

struct Pending {
    batch: BatchBuilder,
    /// Run-length transaction ids of the records, in order.
    txns: Vec<(u64, u64)>,
}

impl Pending {
    /// Record bytes before compression (what the unacknowledged bound counts).
    fn raw(&self) -> usize {
        self.batch.size() - HEADER_LEN
    }
}

/// One partition's queue on a link: batches handed over sealed go first.
type PartQueue = reroute::PartQueue<Sealed, Pending>;

fn open_bytes(q: &PartQueue) -> usize {
    q.open.iter().map(Pending::raw).sum()
}

#[derive(Default)]
struct Queue {
    /// By partition, so that a request lists its partitions in order.
    parts: BTreeMap<Tp, PartQueue>,
    /// Bytes of the open batches.
    bytes: usize,
    /// When the oldest record now queued arrived.
    since: Option<Instant>,
}

#[derive(Default)]
struct Link {
    queue: Mutex<Queue>,
    wake: Notify,
    /// The first acknowledgement from this broker since the link started,
    /// or since partitions were handed over to it, was logged.
    acked: AtomicBool,
}

/// Which link sends each partition; one lock, so that a record cannot
/// slip onto a partition's old link while the partition moves.
#[derive(Default)]
struct Router {
    links: HashMap<Arc<str>, Arc<Link>>,
    /// Where each partition's records go (set by its first record, changed
    /// by a hand-over).
    routes: HashMap<Tp, Arc<str>>,
    /// Hand-overs the sink has not yet learned.
    moves: Vec<(Tp, Arc<str>)>,
    /// The link tasks; `None` once the producer is dropped.
    tasks: Option<JoinSet<()>>,
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
    router: Mutex<Router>,
    /// `router.moves` is not empty.
    moved: AtomicBool,
    lookup: OnceLock<Arc<dyn LeaderLookup>>,
}

impl Shared {
    fn settle(&self, msgs: usize, bytes: usize) {
        self.unacked_msgs.fetch_sub(msgs, Ordering::AcqRel);
        self.unacked_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn settle_sealed(&self, batches: &[Sealed]) {
        for b in batches {
            self.settle(b.msgs, b.raw);
        }
    }

    fn stop(&self, reason: &DeliveryError) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            tracing::warn!(reason = %reason, "kafka producer stopped");
        }
        self.tracker.fail(0, reason.to_string());
    }

    fn links(&self) -> Vec<Arc<Link>> {
        let r = self.router.lock().expect("router lock");
        r.links.values().cloned().collect()
    }
}

/// The link of broker `addr`, started when it is new.
fn link_for(shared: &Arc<Shared>, r: &mut Router, addr: &Arc<str>) -> Arc<Link> {
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
                        router: Mutex::new(Router {
                            tasks: Some(JoinSet::new()),
                            ..Router::default()
                        }),
                        moved: AtomicBool::new(false),
                        lookup: OnceLock::new(),
                    });
                    return Ok(Self { shared });
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
        let wake = {
            let mut q = link.queue.lock().expect("link queue lock");
            let batch_bytes = s.settings.batch_bytes;
            let part = q.parts.entry(tp).or_default();
            if part
                .open
                .back()
                .is_none_or(|p| p.batch.size() + size > batch_bytes)
            {
                part.open.push_back(Pending {
                    batch: BatchBuilder::with_capacity((batch_bytes / 4).min(256 * 1024)),
                    txns: Vec::new(),
                });
            }
            let p = part.open.back_mut().expect("just pushed");
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
            drop_queued(&l, &self.shared);
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
    let q = std::mem::take(&mut *link.queue.lock().expect("link queue lock"));
    for part in q.parts.into_values() {
        for p in part.open {
            shared.settle(p.batch.count() as usize, p.raw());
        }
        shared.settle_sealed(&part.ready.into_iter().collect::<Vec<_>>());
    }
}

/// A batch taken from a partition's queue for the next request.
enum Taken {
    /// Handed over from another link: sealed there.
    Sealed(Sealed),
    /// To seal with base sequence `seq`.
    Open { tp: Tp, seq: i32, pending: Pending },
}

/// Sends one broker's batches, one request at a time.
async fn run_link(addr: Arc<str>, link: Arc<Link>, shared: Arc<Shared>) {
    let mut conn: Option<(Conn, Versions)> = None;
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            drop_queued(&link, &shared);
        }
        let (since, bytes, handed) = {
            let q = link.queue.lock().expect("link queue lock");
            let handed = q.parts.values().any(|p| !p.ready.is_empty());
            (q.since, q.bytes, handed)
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
        let taken: Vec<Taken> = {
            let mut q = link.queue.lock().expect("link queue lock");
            let mut taken = Vec::with_capacity(q.parts.len());
            let mut left = false;
            let mut freed = 0;
            for (tp, part) in q.parts.iter_mut() {
                if let Some(s) = part.ready.pop_front() {
                    taken.push(Taken::Sealed(s));
                } else if let Some(p) = part.open.pop_front() {
                    let seq = part.next_seq;
                    part.next_seq = reroute::next_sequence(seq, p.batch.count());
                    freed += p.raw();
                    taken.push(Taken::Open {
                        tp: tp.clone(),
                        seq,
                        pending: p,
                    });
                }
                left |= !part.is_empty();
            }
            q.bytes -= freed;
            q.since = left.then(Instant::now);
            taken
        };
        if taken.is_empty() {
            continue;
        }
        let Some(batches) = seal(taken, &shared) else {
            continue;
        };
        if let Err(e) = produce(&addr, &link, &mut conn, batches, &shared).await {
            shared.stop(&e);
            conn = None;
        }
    }
}

/// Seals the open batches (outside the queue lock: compression takes time);
/// `None` when compressing failed (the producer stops).
fn seal(taken: Vec<Taken>, shared: &Shared) -> Option<Vec<Sealed>> {
    let codec = shared.settings.compression;
    let mut out = Vec::with_capacity(taken.len());
    let mut failed = None;
    for t in taken {
        match t {
            Taken::Sealed(s) => out.push(s),
            Taken::Open { tp, seq, pending } => {
                let msgs = pending.batch.count() as usize;
                let raw = pending.raw();
                match pending.batch.seal(shared.pid, seq, codec) {
                    Ok(bytes) => out.push(Sealed {
                        tp,
                        bytes,
                        txns: pending.txns,
                        msgs,
                        raw,
                        attempts: 0,
                        first_sent: None,
                        restarted: false,
                    }),
                    Err(source) => {
                        shared.settle(msgs, raw);
                        failed.get_or_insert(DeliveryError::Compress {
                            codec: codec.name(),
                            source,
                        });
                    }
                }
            }
        }
    }
    match failed {
        Some(e) => {
            shared.settle_sealed(&out);
            shared.stop(&e);
            None
        }
        None => Some(out),
    }
}

/// One partition's batch, sealed with its producer id, epoch and sequence
/// once: every resend carries the same bytes, also to a new leader, so the
/// broker can tell a resend of what it already appended (the original
/// offset) from a new batch.
struct Sealed {
    tp: Tp,
    bytes: bytes::Bytes,
    txns: Vec<(u64, u64)>,
    /// Records, and their bytes before compression (to settle the bounds).
    msgs: usize,
    raw: usize,
    /// Failed attempts so far, on any link.
    attempts: u32,
    /// When it first went on the wire (the delivery timeout counts from it).
    first_sent: Option<Instant>,
    /// The broker it is sent to refused a connection during its resends: a
    /// `DUPLICATE_SEQUENCE_NUMBER` answer from it is not taken on trust
    /// (cleared when the batch is handed over to a new leader).
    restarted: bool,
}

impl OfPartition for Sealed {
    fn tp(&self) -> &Tp {
        &self.tp
    }
}

/// How one attempt at a request failed.
enum Failure {
    /// Resend the batches not yet acknowledged (after a backoff), after
    /// asking who leads the partitions of `refresh` now.
    Retry {
        error: AttemptError,
        refresh: Vec<Arc<str>>,
    },
    /// Stop the producer.
    Stop(AttemptError),
}

fn topics_of(batches: &[Sealed]) -> Vec<Arc<str>> {
    let mut topics: Vec<Arc<str>> = batches.iter().map(|b| b.tp.0.clone()).collect();
    topics.dedup();
    topics
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
        let now = Instant::now();
        for b in batches.iter_mut() {
            b.first_sent.get_or_insert(now);
        }
        let (reason, refresh) = match attempt(addr, link, conn, &mut batches, shared).await {
            Ok(()) => return Ok(()),
            Err(Failure::Stop(e)) => {
                shared.settle_sealed(&batches);
                return Err(DeliveryError::Stopped(e));
            }
            Err(Failure::Retry { error, refresh }) => (error, refresh),
        };
        *conn = None;
        let mut attempts = 0;
        for b in batches.iter_mut() {
            b.attempts += 1;
            attempts = attempts.max(b.attempts);
        }
        let oldest = batches.iter().filter_map(|b| b.first_sent).min();
        let elapsed = oldest.map_or(Duration::ZERO, |t| t.elapsed());
        let s = &shared.settings;
        let backoff = s
            .retry_backoff
            .saturating_mul(1 << (attempts.max(1) - 1).min(10))
            .min(Duration::from_secs(1));
        if attempts > s.retries || elapsed + backoff > s.delivery_timeout {
            shared.settle_sealed(&batches);
            return Err(DeliveryError::GaveUp {
                source: reason,
                attempts,
                elapsed_ms: elapsed.as_millis(),
            });
        }
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
    let mut found: HashMap<Arc<str>, Vec<Arc<str>>> = HashMap::new();
    for topic in topics {
        match lookup_leaders(lookup.clone(), topic.clone(), shared.timeout).await {
            Ok(Some(leaders)) => {
                found.insert(topic, leaders);
            }
            Ok(None) => {
                tracing::debug!(topic = %topic, "no leader in the metadata; resending to the same broker")
            }
            Err(e) => {
                tracing::warn!(topic = %topic, error = %e, "kafka metadata refresh failed; resending to the same broker")
            }
        }
    }
    let plan = reroute::plan(addr, batches, |(topic, p)| {
        found.get(topic).and_then(|l| l.get(*p as usize)).cloned()
    });
    if !plan.moves.is_empty() {
        hand_over(shared, addr, plan.moves);
    }
    plan.stay
}

/// The leaders of `topic`, looked up on a blocking thread; waits at most
/// `timeout` (plus a second for the thread), as the lookup itself does.
async fn lookup_leaders(
    lookup: Arc<dyn LeaderLookup>,
    topic: Arc<str>,
    timeout: Duration,
) -> Result<Option<Vec<Arc<str>>>, LookupError> {
    let t = topic.clone();
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || lookup.leaders(&t, timeout));
    match tokio::time::timeout(timeout + Duration::from_secs(1), task).await {
        Ok(Ok(r)) => r,
        Ok(Err(source)) => Err(LookupError::Task {
            topic: topic.to_string(),
            source,
        }),
        Err(_) => Err(LookupError::TimedOut {
            topic: topic.to_string(),
            waited_ms: started.elapsed().as_millis(),
        }),
    }
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
            Some(l) => {
                let mut q = l.queue.lock().expect("link queue lock");
                let part = q.parts.remove(&m.tp).unwrap_or_default();
                q.bytes -= open_bytes(&part);
                part
            }
            None => PartQueue::default(),
        };
        let (in_flight, queued) = (m.batches.len(), old.ready.len() + old.open.len());
        let moved_bytes = open_bytes(&old);
        let to = link_for(shared, &mut r, &m.to);
        {
            let mut q = to.queue.lock().expect("link queue lock");
            let new = q.parts.remove(&m.tp).unwrap_or_default();
            q.parts
                .insert(m.tp.clone(), reroute::hand_over(m.batches, old, new));
            q.bytes += moved_bytes;
            q.since.get_or_insert_with(Instant::now);
        }
        to.acked.store(false, Ordering::Release);
        to.wake.notify_one();
        tracing::info!(topic = %m.tp.0, partition = m.tp.1, from = %from, to = %m.to,
            in_flight, queued, "kafka partition leader moved; its batches follow it");
        r.routes.insert(m.tp.clone(), m.to.clone());
        r.moves.push((m.tp, m.to));
        shared.moved.store(true, Ordering::Release);
    }
}

/// Sends `batches` once; removes (and acknowledges) those the broker took.
async fn attempt(
    addr: &Arc<str>,
    link: &Link,
    conn: &mut Option<(Conn, Versions)>,
    batches: &mut Vec<Sealed>,
    shared: &Shared,
) -> Result<(), Failure> {
    if conn.is_none() {
        match connect(addr, &shared.client).await {
            Ok(c) => *conn = Some(c),
            Err(e @ ProducerError::Unsupported { .. }) => return Err(Failure::Stop(e.into())),
            Err(e) => {
                if let ProducerError::Conn(ConnError::Connect { source, .. }) = &e {
                    if source.kind() == std::io::ErrorKind::ConnectionRefused {
                        for b in batches.iter_mut() {
                            b.restarted = true;
                        }
                    }
                }
                return Err(Failure::Retry {
                    error: e.into(),
                    refresh: topics_of(batches),
                });
            }
        }
    }
    let (c, v) = conn.as_mut().expect("connected");
    let version = v.produce;
    // `batches` is sorted by topic: one entry per topic.
    let request = protocol::produce(
        shared.timeout.as_millis() as i32,
        batches.iter().map(|b| protocol::PartitionBatch {
            topic: &b.tp.0,
            partition: b.tp.1,
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
    // A request that failed on an established connection is first resent
    // on a new connection to the same broker (a restarted broker is back at
    // once); only a connection that cannot be made asks the metadata.
    let response = c.exchange(frame).await.map_err(|e| Failure::Retry {
        error: e.into(),
        refresh: Vec::new(),
    })?;
    let results = protocol::read_produce(&response);
    let mut retry = None;
    let mut refresh: Vec<Arc<str>> = Vec::new();
    let mut stop = None;
    let mut acked = false;
    batches.retain(|b| {
        let code = results
            .iter()
            .find(|r| r.partition == b.tp.1 && *r.topic == *b.tp.0)
            .map_or(-1, |r| r.error);
        let what = || AttemptError::Broker {
            topic: b.tp.0.clone(),
            partition: b.tp.1,
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
        let ack = |b: &Sealed| {
            for &(txn, n) in &b.txns {
                shared.tracker.ack_many(txn, n);
            }
            shared.settle(b.msgs, b.raw);
        };
        if reroute::needs_metadata(code) {
            // the leader may have moved: ask the metadata, then resend
            retry.get_or_insert_with(what);
            if refresh.last() != Some(&b.tp.0) {
                refresh.push(b.tp.0.clone());
            }
            return true;
        }
        match protocol::classify(code) {
            protocol::Outcome::Appended => {
                ack(b);
                acked = true;
                false
            }
            // A broker that was down in between is not trusted to have kept
            // what it says it has: Tansu 0.6 on S3 answers a resend after a
            // restart with DUPLICATE_SEQUENCE_NUMBER for a batch it never
            // stored (seen in `broker_restart`). Stop instead: the restarted
            // pipeline's tail read checks what the topic holds.
            protocol::Outcome::Duplicate if b.restarted => {
                stop.get_or_insert_with(|| AttemptError::AfterRestart(Box::new(what())));
                true
            }
            protocol::Outcome::Duplicate => {
                ack(b);
                acked = true;
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
    if acked && !link.acked.swap(true, Ordering::AcqRel) {
        tracing::info!(broker = %addr, "kafka broker acknowledges our requests");
    }
    match (stop, retry) {
        (Some(e), _) => Err(Failure::Stop(e)),
        (None, Some(error)) => Err(Failure::Retry { error, refresh }),
        (None, None) => Ok(()),
    }
}
