//! Kafka sink: topic creation, partitioning, duplicate removal on resume,
//! idempotent production with delivery tracking.
//!
//! Flow in: messages with their topic, key, payload and [`MsgPos`]. Flow out:
//! records to librdkafka (idempotent, `acks=all`, batched), and through the
//! [`Tracker`] the newest checkpoint whose transactions Kafka acknowledged.
//! Topics are created through the admin API before the first message (never
//! relying on broker auto-creation). `QueueFull` is back-pressure: wait and
//! retry, so memory stays bounded by the producer queue whatever the
//! transaction size. A delivery failure stops the pipeline (transient: it
//! resumes from the context and removes duplicates).

pub mod dedupe;
pub mod partition;
pub mod tail;
pub mod tracker;

use crate::error::{DefiniteError, TaskError};
use dedupe::{MsgPos, PosRef, Watermarks, EPOCH_HEADER, POSITION_HEADER, TASK_HEADER};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracker::Tracker;

/// How to reach and use Kafka for one task.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub brokers: String,
    pub properties: BTreeMap<String, String>,
    pub partitions: u32,
    pub task: String,
    /// Sequence number of the writing instance (header of every message).
    pub epoch: i64,
    /// librdkafka `message.timeout.ms`: a message not delivered by then fails
    /// (kept below the ZooKeeper session timeout, so that a paused process
    /// drops what it queued rather than sending it after it lost the task).
    pub message_timeout: Duration,
    /// How long the tail reader waits for more messages before it trusts the end.
    pub tail_idle: Duration,
}

/// Routes acknowledgements to the tracker.
pub struct DeliveryContext {
    tracker: Arc<Tracker>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, txn: usize) {
        match result {
            Ok(_) => self.tracker.ack(txn as u64),
            Err((e, _)) => self.tracker.fail(txn as u64, e.to_string()),
        }
    }
}

/// The Kafka side of one running task.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryContext>,
    admin: AdminClient<DefaultClientContext>,
    tracker: Arc<Tracker>,
    topics: HashMap<Arc<str>, u32>,
    watermarks: Watermarks,
    check_tails: bool,
    opts: SinkOptions,
    task_header: Vec<u8>,
    epoch_header: Vec<u8>,
    pos_header: Vec<u8>,
    skipped: u64,
}

impl KafkaSink {
    /// Connects a producer. With `check_tails`, each topic's tail is read
    /// before its first message so that replayed messages are not sent twice.
    pub fn new(
        opts: SinkOptions,
        tracker: Arc<Tracker>,
        check_tails: bool,
    ) -> Result<Self, TaskError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &opts.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "50000")
            .set("queue.buffering.max.kbytes", "16384")
            .set(
                "message.timeout.ms",
                opts.message_timeout.as_millis().to_string(),
            )
            .set("log_level", "3");
        for (k, v) in &opts.properties {
            cfg.set(k, v);
        }
        let producer = cfg
            .create_with_context(DeliveryContext {
                tracker: tracker.clone(),
            })
            .map_err(|e| DefiniteError::Kafka(format!("producer config: {e}")))?;
        let mut admin_cfg = ClientConfig::new();
        admin_cfg
            .set("bootstrap.servers", &opts.brokers)
            .set("log_level", "3");
        for (k, v) in &opts.properties {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                admin_cfg.set(k, v);
            }
        }
        let admin = admin_cfg
            .create()
            .map_err(|e| DefiniteError::Kafka(format!("admin client: {e}")))?;
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

    /// Messages dropped as already delivered.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Makes `topic` ready: created, partition count known, tail read.
    pub async fn prepare_topic(&mut self, topic: &Arc<str>) -> Result<u32, TaskError> {
        if let Some(n) = self.topics.get(topic) {
            return Ok(*n);
        }
        let partitions = match tokio::task::block_in_place(|| self.existing_partitions(topic))? {
            Some(n) => n,
            None => {
                self.create_topic(topic).await?;
                tokio::task::block_in_place(|| self.partition_count(topic))?
            }
        };
        if self.check_tails {
            let started = std::time::Instant::now();
            let tails = tokio::task::block_in_place(|| {
                tail::read_tails(
                    &self.opts.brokers,
                    &self.opts.properties,
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
        self.topics.insert(topic.clone(), partitions);
        Ok(partitions)
    }

    async fn create_topic(&self, topic: &str) -> Result<(), TaskError> {
        let new = NewTopic::new(
            topic,
            self.opts.partitions as i32,
            TopicReplication::Fixed(1),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| TaskError::transient(format!("creating topic {topic}: {e}")))?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic, partitions = self.opts.partitions, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::InvalidTopic),
                )) => {
                    return Err(
                        DefiniteError::Kafka(format!("creating topic {topic}: {code}")).into(),
                    )
                }
                Err((_, code)) => {
                    return Err(TaskError::transient(format!(
                        "creating topic {topic}: {code}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Partitions of `topic` when the broker already knows it.
    fn existing_partitions(&self, topic: &str) -> Result<Option<u32>, TaskError> {
        let md = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| TaskError::transient(format!("metadata of {topic}: {e}")))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as u32))
    }

    fn partition_count(&self, topic: &str) -> Result<u32, TaskError> {
        for _ in 0..50 {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(|e| TaskError::transient(format!("metadata of {topic}: {e}")))?;
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none() && !t.partitions().is_empty() {
                    return Ok(t.partitions().len() as u32);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TaskError::transient(format!(
            "topic {topic} has no partitions in metadata"
        )))
    }

    /// Sends one message of transaction `txn` unless it already reached Kafka.
    /// `prepare_topic` must have been called for `topic`.
    pub async fn send(
        &mut self,
        topic: &Arc<str>,
        key: &[u8],
        payload: &[u8],
        pos: PosRef<'_>,
        txn: u64,
    ) -> Result<(), TaskError> {
        let partitions = match self.topics.get(topic) {
            Some(n) => *n,
            None => self.prepare_topic(topic).await?,
        };
        let partition = partition::partition_for(key, partitions);
        if !self.watermarks.is_empty()
            && self
                .watermarks
                .already_delivered(topic, partition, &pos.to_owned())
                .map_err(|e| DefiniteError::Decode(format!("comparing with the topic tail: {e}")))?
        {
            self.skipped += 1;
            return Ok(());
        }
        self.pos_header.clear();
        pos.write_header(&mut self.pos_header);
        let pos_header = &self.pos_header;
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: TASK_HEADER,
                value: Some(&self.task_header),
            })
            .insert(Header {
                key: POSITION_HEADER,
                value: Some(pos_header.as_slice()),
            })
            .insert(Header {
                key: EPOCH_HEADER,
                value: Some(&self.epoch_header),
            });
        let mut record = BaseRecord::with_opaque_to(topic, txn as usize)
            .key(key)
            .payload(payload)
            .partition(partition)
            .headers(headers);
        self.tracker.add_pending(txn);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    if let Some(f) = self.tracker.failure() {
                        return Err(TaskError::transient(format!("delivery failed: {f}")));
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => {
                    self.tracker.ack(txn);
                    return Err(match e {
                        KafkaError::MessageProduction(
                            code @ (RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::InvalidMessage),
                        ) => DefiniteError::Kafka(format!("{topic}: {code}")).into(),
                        other => TaskError::transient(format!("producing to {topic}: {other}")),
                    });
                }
            }
        }
    }

    /// Waits until every queued message is acknowledged (or `timeout`).
    ///
    /// librdkafka's own flush polls for events in 100 ms steps while the
    /// producer's thread consumes them; watching the queue length instead
    /// returns within a millisecond of the last acknowledgement.
    pub async fn flush(&self, timeout: Duration) -> Result<(), TaskError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return Err(TaskError::transient(format!(
                    "flushing Kafka: {} messages still unacknowledged after {} ms",
                    self.producer.in_flight_count(),
                    timeout.as_millis()
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Stops without waiting for the producer's threads: dropping a
    /// librdkafka producer joins its polling thread (up to 100 ms).
    pub fn close_in_background(self) {
        tokio::task::spawn_blocking(move || drop(self));
    }

    /// Drops every message not yet sent (fenced: someone else owns the task).
    pub fn purge(&self) {
        self.producer.purge(PurgeConfig::default().queue());
    }
}
