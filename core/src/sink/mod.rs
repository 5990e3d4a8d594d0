//! Kafka sink: topic creation, partitioning, duplicate removal on resume,
//! fenced idempotent production with delivery tracking.
//!
//! Flow in: messages with their topic, key, payload and [`MsgPos`]. Flow out:
//! record batches through our own [`kafka::Producer`] (idempotent,
//! `acks=all`, fenced by a producer epoch per task), and through the
//! [`Tracker`] the newest checkpoint whose transactions Kafka acknowledged.
//! Starting a sink takes a new producer epoch for the task; before a topic's
//! tail is read, a fence record at that epoch is acknowledged on every
//! partition of the topic ([`takeover`]), so that no earlier writer's message
//! can land after the tail read, even on brokers that learn epochs lazily. Topics are created
//! through the admin API before the first message (never relying on broker
//! auto-creation). A full producer queue is back-pressure: `send` waits, so
//! memory stays bounded whatever the transaction size. The sink keeps each
//! prepared topic's partition leaders; the producer asks the same metadata
//! ([`AdminLeaders`]) after a leader error or a failed connection, hands a
//! moved partition's unacknowledged batches over to its new leader, and the
//! sink's leader cache learns the move before its next send. A delivery
//! failure that outlasts the producer's retry budget stops the pipeline
//! (transient: it resumes from the context and removes duplicates).

pub mod dedupe;
pub mod kafka;
pub mod partition;
pub mod tail;
pub mod takeover;
pub mod tracker;

use crate::error::{ConfigError, DataError, DefiniteError, TaskError, TransientError};
use dedupe::{
    MsgPos, PosRef, Watermarks, EPOCH_HEADER, GTID_HEADER, POSITION_HEADER, SNAPSHOT_KEY_HEADER,
    TASK_HEADER,
};
use kafka::conn::Client;
use kafka::sasl::Login;
use kafka::{LeaderLookup, LookupError, Producer, ProducerError, WireGuard};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use replicator_common::producer::ProducerSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;
use takeover::{Step, FENCE_HEADER};
use tokio_util::task::TaskTracker;
use tracker::Tracker;
use tracker::UNTRACKED;

/// How to reach and use Kafka for one task.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub brokers: String,
    /// `sink.properties` (see [`ProducerSettings`]).
    pub properties: BTreeMap<String, String>,
    pub partitions: u32,
    /// Of topics this sink creates; `None`: the broker's default.
    pub replication_factor: Option<u16>,
    pub min_insync_replicas: Option<u16>,
    pub task: String,
    /// The task's znode path: names the producer id that fences earlier writers.
    pub task_path: String,
    /// Sequence number of the writing instance (header of every message).
    pub epoch: i64,
    /// How long a produce request may wait for its answer.
    pub message_timeout: Duration,
    /// How long the tail reader waits for more messages before it trusts the end.
    pub tail_idle: Duration,
}

/// The Kafka side of one running task.
pub struct KafkaSink {
    producer: Producer,
    /// Shared (weakly) with the producer's [`AdminLeaders`].
    admin: Arc<AdminClient<DefaultClientContext>>,
    tracker: Arc<Tracker>,
    /// Leader address of each partition, per prepared topic.
    topics: HashMap<Arc<str>, Vec<Arc<str>>>,
    watermarks: Watermarks,
    check_tails: bool,
    opts: SinkOptions,
    /// TLS/SASL settings for the librdkafka clients (admin, tail reads).
    client_props: Vec<(&'static str, String)>,
    task_header: Vec<u8>,
    epoch_header: Vec<u8>,
    pos_header: Vec<u8>,
    skipped: u64,
}

impl KafkaSink {
    /// Fences earlier writers of the task and connects. With `check_tails`,
    /// each topic's tail is read before its first message so that replayed
    /// messages are not sent twice.
    /// `guard` is asked right before each request goes on the wire (the
    /// writer's lease): once it says no, the producer sends nothing more.
    pub async fn new(
        opts: SinkOptions,
        tracker: Arc<Tracker>,
        check_tails: bool,
        guard: WireGuard,
    ) -> Result<Self, TaskError> {
        let settings = ProducerSettings::parse(&opts.properties).map_err(DefiniteError::from)?;
        let security = &settings.security;
        let client_props = security
            .client_properties()
            .map_err(|e| DefiniteError::Config(e.into()))?;
        let client = Client {
            client_id: settings.client_id.clone(),
            timeout: opts.message_timeout.max(Duration::from_secs(1)),
            tls: match security.protocol.tls() {
                true => Some(
                    kafka::tls::client_config(&security.tls)
                        .map_err(|e| DefiniteError::Config(ConfigError::KafkaTls(e.into())))?,
                ),
                false => None,
            },
            sasl: match &security.sasl {
                Some(s) => Some(Login {
                    mechanism: s.mechanism,
                    username: s.username.clone(),
                    password: s.password().map_err(|e| DefiniteError::Config(e.into()))?,
                }),
                None => None,
            },
        };
        let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(
            rdkafka_config(&opts.brokers, &client_props)
                .create()
                .map_err(DefiniteError::KafkaAdmin)?,
        );
        let producer = Producer::start(
            &opts.brokers,
            &kafka::transactional_id(&opts.task_path),
            settings,
            client,
            tracker.clone(),
            guard,
        )
        .await
        .map_err(producer_error)?;
        producer.set_leader_lookup(Arc::new(AdminLeaders(Arc::downgrade(&admin))));
        let task_header = opts.task.as_bytes().to_vec();
        let epoch_header = opts.epoch.to_string().into_bytes();
        Ok(Self {
            producer,
            admin,
            tracker,
            topics: HashMap::new(),
            watermarks: Watermarks::default(),
            check_tails,
            opts,
            client_props,
            task_header,
            epoch_header,
            pos_header: Vec::with_capacity(48),
            skipped: 0,
        })
    }

    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// True while a topic tail holds messages beyond what this run sent
    /// (the replay has not caught up with an earlier writer everywhere).
    pub fn behind_earlier_writer(&self) -> bool {
        !self.watermarks.is_empty()
    }

    /// The topic tails were written by a run on another source server (a
    /// source failover): only GTIDs can tell what they hold.
    pub fn tails_from_another_server(&mut self) {
        self.watermarks.set_other_server(true);
    }

    /// Messages dropped as already delivered.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Makes `topic` ready: created, partition count known, tail read.
    pub async fn prepare_topic(&mut self, topic: &Arc<str>) -> Result<u32, TaskError> {
        if let Some(leaders) = self.topics.get(topic) {
            return Ok(leaders.len() as u32);
        }
        let leaders = match tokio::task::block_in_place(|| self.leaders(topic))? {
            Some(l) => l,
            None => {
                self.create_topic(topic).await?;
                self.wait_for_leaders(topic).await?
            }
        };
        let partitions = leaders.len() as u32;
        let started = std::time::Instant::now();
        for step in takeover::plan(partitions, self.check_tails) {
            match step {
                Step::Fence(p) => self.fence(topic, &leaders[p as usize], p).await?,
                Step::AwaitFences => {
                    self.flush(self.opts.message_timeout.max(Duration::from_secs(1)))
                        .await?;
                    tracing::info!(topic = %topic, partitions, epoch = self.opts.epoch,
                        took_ms = started.elapsed().as_millis() as u64,
                        "fenced every partition at the new epoch");
                }
                Step::ReadTails => {
                    let started = std::time::Instant::now();
                    let tails = tokio::task::block_in_place(|| {
                        tail::read_tails(
                            rdkafka_config(&self.opts.brokers, &self.client_props),
                            topic,
                            &self.opts.task,
                            partitions,
                            self.opts.tail_idle,
                        )
                    })?;
                    tracing::info!(topic = %topic, partitions, took_ms = started.elapsed().as_millis() as u64,
                        tails = ?tails.iter().map(|t| t.as_ref().map(MsgPos::header)).collect::<Vec<_>>(),
                        "read topic tail for duplicate check");
                    self.watermarks.set_topic(topic.clone(), tails);
                }
            }
        }
        self.topics.insert(topic.clone(), leaders);
        Ok(partitions)
    }

    /// Sends a message outside any transaction and without a position
    /// (heartbeats): not tracked for the context, never compared with a
    /// topic tail (the tail reader skips messages without a position).
    pub async fn send_untracked(
        &mut self,
        topic: &Arc<str>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), TaskError> {
        if !self.topics.contains_key(topic) {
            self.prepare_topic(topic).await?;
        }
        self.learn_moved_leaders();
        let leaders = &self.topics[topic];
        let partition = partition::partition_for(key, leaders.len() as u32);
        let leader = leaders[partition as usize].clone();
        let headers: [(&str, &[u8]); 2] = [
            (TASK_HEADER, &self.task_header),
            (EPOCH_HEADER, &self.epoch_header),
        ];
        self.producer
            .send(
                &leader,
                topic,
                partition,
                Some(key),
                Some(value),
                &headers,
                UNTRACKED,
            )
            .await
            .map_err(|e| self.send_error(topic, e))
    }

    /// Queues one fence record (see [`takeover`]) for `partition`; it is
    /// acknowledged outside any transaction.
    async fn fence(
        &mut self,
        topic: &Arc<str>,
        leader: &Arc<str>,
        partition: i32,
    ) -> Result<(), TaskError> {
        let key = takeover::fence_key(&self.opts.task);
        let value = takeover::fence_value(&self.opts.task, self.opts.epoch);
        let headers: [(&str, &[u8]); 3] = [
            (FENCE_HEADER, &self.epoch_header),
            (TASK_HEADER, &self.task_header),
            (EPOCH_HEADER, &self.epoch_header),
        ];
        self.producer
            .send(
                leader,
                topic,
                partition,
                Some(&key),
                Some(&value),
                &headers,
                UNTRACKED,
            )
            .await
            .map_err(|e| self.send_error(topic, e))
    }

    async fn create_topic(&self, topic: &str) -> Result<(), TaskError> {
        // -1: the broker's default.replication.factor (CreateTopics v4+)
        let rf = self.opts.replication_factor.map_or(-1, i32::from);
        let mut new = NewTopic::new(
            topic,
            self.opts.partitions as i32,
            TopicReplication::Fixed(rf),
        );
        let isr = self.opts.min_insync_replicas.map(|v| v.to_string());
        if let Some(isr) = &isr {
            new = new.set("min.insync.replicas", isr);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self.admin.create_topics([&new], &opts).await.map_err(|e| {
            TransientError::CreateTopic {
                topic: topic.to_string(),
                source: Box::new(e),
            }
        })?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic, partitions = self.opts.partitions,
                    replication_factor = rf, min_insync_replicas = ?self.opts.min_insync_replicas, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidConfig
                    | RDKafkaErrorCode::PolicyViolation),
                )) => {
                    return Err(DefiniteError::TopicRefused {
                        topic: topic.to_string(),
                        partitions: self.opts.partitions,
                        replication_factor: self.opts.replication_factor,
                        min_insync_replicas: self.opts.min_insync_replicas,
                        code,
                    }
                    .into())
                }
                Err((_, code)) => {
                    return Err(TransientError::CreateTopic {
                        topic: topic.to_string(),
                        source: Box::new(KafkaError::AdminOp(code)),
                    }
                    .into())
                }
            }
        }
        Ok(())
    }

    /// The leader address of each partition of `topic`, when the broker
    /// knows the topic and every partition has a leader.
    fn leaders(&self, topic: &str) -> Result<Option<Vec<Arc<str>>>, TaskError> {
        fetch_leaders(&self.admin, topic, METADATA_TIMEOUT).map_err(|e| {
            TransientError::Kafka {
                context: "partition leaders",
                source: e.into(),
            }
            .into()
        })
    }

    /// Takes the partitions the producer handed over to a new leader into
    /// the leader cache, so that later sends name the new leader.
    fn learn_moved_leaders(&mut self) {
        for ((topic, partition), leader) in self.producer.take_moves() {
            if let Some(slot) = self
                .topics
                .get_mut(&topic)
                .and_then(|l| l.get_mut(partition as usize))
            {
                *slot = leader;
            }
        }
    }

    async fn wait_for_leaders(&self, topic: &str) -> Result<Vec<Arc<str>>, TaskError> {
        let started = std::time::Instant::now();
        for _ in 0..50 {
            if let Some(l) = tokio::task::block_in_place(|| self.leaders(topic))? {
                return Ok(l);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(TransientError::NoLeaders {
            topic: topic.to_string(),
            waited_ms: started.elapsed().as_millis(),
        }
        .into())
    }

    /// Sends one message of transaction `txn` unless it already reached Kafka.
    /// `prepare_topic` must have been called for `topic`. A `None` key or
    /// payload is sent as Kafka's null (a `None` payload is a tombstone).
    pub async fn send(
        &mut self,
        topic: &Arc<str>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        pos: PosRef<'_>,
        txn: u64,
    ) -> Result<(), TaskError> {
        self.send_with(topic, key, payload, pos, txn, None).await
    }

    /// Sends one snapshot row (position with a chunk, raw key header). The
    /// caller already left out rows the topic tail showed delivered.
    pub async fn send_snapshot_row(
        &mut self,
        topic: &Arc<str>,
        key: Option<&[u8]>,
        payload: &[u8],
        pos: PosRef<'_>,
        txn: u64,
        raw_key: &[u8],
    ) -> Result<(), TaskError> {
        self.send_with(topic, key, Some(payload), pos, txn, Some(raw_key))
            .await
    }

    /// Partition of `key` in `topic` (prepared by `prepare_topic`).
    pub fn partition_of(&self, topic: &str, key: Option<&[u8]>) -> Option<i32> {
        self.topics
            .get(topic)
            .map(|l| partition::partition_for(key.unwrap_or_default(), l.len() as u32))
    }

    /// What the tail of `topic` says about chunk `chunk` of a snapshot.
    pub fn snapshot_marks(&self, topic: &str, chunk: u64) -> Vec<dedupe::SnapshotMark> {
        self.watermarks.snapshot_marks(topic, chunk)
    }

    /// Counts a message left out as already delivered.
    pub fn count_skipped(&mut self) {
        self.skipped += 1;
    }

    async fn send_with(
        &mut self,
        topic: &Arc<str>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        pos: PosRef<'_>,
        txn: u64,
        snap_key: Option<&[u8]>,
    ) -> Result<(), TaskError> {
        if !self.topics.contains_key(topic) {
            self.prepare_topic(topic).await?;
        }
        self.learn_moved_leaders();
        let leaders = &self.topics[topic];
        let partition = partition::partition_for(key.unwrap_or_default(), leaders.len() as u32);
        if !self.watermarks.is_empty()
            && self
                .watermarks
                .already_delivered(topic, partition, &pos.to_owned())
                .map_err(|source| {
                    DefiniteError::Decode(DataError::Position {
                        what: "comparing with the topic tail",
                        source,
                    })
                })?
        {
            self.skipped += 1;
            return Ok(());
        }
        self.pos_header.clear();
        pos.write_header(&mut self.pos_header);
        // task, position and epoch always; the GTID and a snapshot row's
        // raw key when there are
        let mut headers: [(&str, &[u8]); 5] = [
            (TASK_HEADER, &self.task_header),
            (POSITION_HEADER, &self.pos_header),
            (EPOCH_HEADER, &self.epoch_header),
            ("", &[]),
            ("", &[]),
        ];
        let mut n = 3;
        if let Some(g) = pos.gtid {
            headers[n] = (GTID_HEADER, g.as_bytes());
            n += 1;
        }
        if let Some(k) = snap_key {
            headers[n] = (SNAPSHOT_KEY_HEADER, k);
            n += 1;
        }
        let headers = &headers[..n];
        self.tracker.add_pending(txn);
        let leader = &leaders[partition as usize];
        let sent = self
            .producer
            .send(leader, topic, partition, key, payload, headers, txn)
            .await;
        sent.map_err(|e| {
            self.tracker.ack(txn);
            self.send_error(topic, e)
        })
    }

    fn send_error(&self, topic: &str, e: ProducerError) -> TaskError {
        if self.producer.lease_expired() {
            return TaskError::LeaseLost;
        }
        match e {
            ProducerError::Stopped(_) => match self.tracker.failure() {
                Some(reason) => TransientError::Delivery(reason).into(),
                None => TransientError::Produce {
                    topic: topic.to_string(),
                    source: e.into(),
                }
                .into(),
            },
            e if e.is_definite() => DefiniteError::KafkaMessage {
                topic: topic.to_string(),
                source: e.into(),
            }
            .into(),
            e => TransientError::Produce {
                topic: topic.to_string(),
                source: e.into(),
            }
            .into(),
        }
    }

    /// True once the producer refused to send because the lease expired.
    pub fn lease_expired(&self) -> bool {
        self.producer.lease_expired()
    }

    /// Waits until every queued message is acknowledged (or `timeout`).
    pub async fn flush(&self, timeout: Duration) -> Result<(), TaskError> {
        let r = self.producer.flush(timeout).await;
        if self.producer.lease_expired() {
            return Err(TaskError::LeaseLost);
        }
        r.map_err(|e| {
            TransientError::Kafka {
                context: "flushing Kafka",
                source: e.into(),
            }
            .into()
        })
    }

    /// Stops: the producer's link tasks end at once; the admin client's
    /// threads are joined off the async runtime, tracked by [`close_off_runtime`].
    pub fn close_in_background(self) {
        let Self {
            producer, admin, ..
        } = self;
        drop(producer);
        close_off_runtime(admin);
    }

    /// Drops every message not yet sent (fenced: someone else owns the task).
    pub fn purge(&self) {
        self.producer.purge();
    }
}

/// How long the sink waits for a topic's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The partition leaders of a topic from the sink's admin client: what the
/// producer asks after a leader error or a failed connection. Holds the
/// client weakly: the sink owns it and closes it off the runtime.
pub struct AdminLeaders(Weak<AdminClient<DefaultClientContext>>);

impl LeaderLookup for AdminLeaders {
    fn leaders(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<Vec<Arc<str>>>, LookupError> {
        // upgraded on the producer's blocking thread: if the sink dropped
        // the client meanwhile, the last reference ends here, off the runtime
        let admin = self.0.upgrade().ok_or(LookupError::Closed)?;
        fetch_leaders(&admin, topic, timeout)
    }
}

/// The leader address of each partition of `topic` (blocking, at most
/// `timeout`); `None` when the metadata does not know the topic or a
/// partition has no leader.
fn fetch_leaders(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<Arc<str>>>, LookupError> {
    let md = admin
        .inner()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| LookupError::Kafka {
            topic: topic.to_string(),
            source,
        })?;
    let brokers: HashMap<i32, Arc<str>> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), Arc::from(format!("{}:{}", b.host(), b.port()))))
        .collect();
    let Some(t) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    else {
        return Ok(None);
    };
    let mut leaders: Vec<Option<Arc<str>>> = vec![None; t.partitions().len()];
    for p in t.partitions() {
        let slot = leaders.get_mut(p.id() as usize);
        match (slot, brokers.get(&p.leader())) {
            (Some(slot), Some(addr)) => *slot = Some(addr.clone()),
            _ => return Ok(None),
        }
    }
    Ok(leaders.into_iter().collect())
}

/// librdkafka clients being closed: dropping one joins its broker threads
/// (up to about a second), so it is dropped on a blocking thread, tracked
/// here so that process shutdown can wait for them ([`wait_closed`]).
static CLOSING: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Drops a librdkafka client on a tracked blocking thread. Call inside the
/// runtime (also from `block_in_place`).
pub fn close_off_runtime<T: Send + 'static>(client: T) {
    CLOSING.spawn_blocking(move || drop(client));
}

/// Waits up to `deadline` for every client handed to [`close_off_runtime`]
/// to close; false when some were still closing.
pub async fn wait_closed(deadline: Duration) -> bool {
    CLOSING.close();
    let done = tokio::time::timeout(deadline, CLOSING.wait()).await.is_ok();
    CLOSING.reopen();
    done
}

/// A librdkafka client config for `brokers` with the task's TLS/SASL settings.
pub fn rdkafka_config(brokers: &str, props: &[(&'static str, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers).set("log_level", "3");
    for (k, v) in props {
        cfg.set(*k, v);
    }
    cfg
}

fn producer_error(e: ProducerError) -> TaskError {
    match e {
        ProducerError::Conn(c) if c.is_definite() => DefiniteError::KafkaSecurity(c.into()).into(),
        e if e.is_definite() => DefiniteError::KafkaProducer(e.into()).into(),
        e => TransientError::Kafka {
            context: "starting the Kafka producer",
            source: e.into(),
        }
        .into(),
    }
}
