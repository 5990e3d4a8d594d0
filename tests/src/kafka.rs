//! Kafka helpers on [`Stack`], with the `rdkafka` crate (Debian's librdkafka
//! cannot talk to Tansu; the crate's bundled build can).
//!
//! Tansu does not create topics on first use: create them with
//! [`Stack::create_topic`]. Consumers here `assign()` partitions and never
//! join a consumer group (joins are slow). Tansu's high watermark can lag the
//! true end of a partition by the last record batch, so reading "to the end"
//! means: past the high watermark, then no message for [`IDLE`].
//!
//! The helpers panic with context on errors: they are for tests.

use crate::Stack;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Quiet time after which a partition read is considered complete.
pub const IDLE: Duration = Duration::from_millis(500);
/// How long [`Stack::read_topic`] may take before it panics.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Header of the Core's fence records.
pub use replicator_common::message::FENCE_HEADER;

/// One Kafka message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Headers in order; a header may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Create or log-append time in ms, when the broker gave one.
    pub timestamp_ms: Option<i64>,
}

impl Message {
    /// The key parsed as JSON; panics when absent or not JSON.
    pub fn key_json(&self) -> serde_json::Value {
        parse_json("key", self.key.as_deref(), self)
    }
    /// The value parsed as JSON; panics when absent or not JSON.
    pub fn value_json(&self) -> serde_json::Value {
        parse_json("value", self.value.as_deref(), self)
    }
    /// The value as UTF-8 text (lossy); empty when absent.
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
    /// True for a fence record a Core writes when it takes a task over
    /// (header `replicator.fence`, value `{"type":"fence",...}`): not data.
    pub fn is_fence(&self) -> bool {
        self.headers.iter().any(|(n, _)| n == FENCE_HEADER)
    }
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn parse_json(what: &str, bytes: Option<&[u8]>, m: &Message) -> serde_json::Value {
    let bytes =
        bytes.unwrap_or_else(|| panic!("{}/{}@{} has no {what}", m.topic, m.partition, m.offset));
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} of {}/{}@{} is not JSON ({e}): {}",
            m.topic,
            m.partition,
            m.offset,
            String::from_utf8_lossy(bytes)
        )
    })
}

impl Stack {
    /// Client config with the bootstrap servers and short timeouts; add what
    /// you need and `create()` a client from it.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.kafka_bootstrap())
            .set("socket.timeout.ms", "10000")
            .set("message.timeout.ms", "10000")
            .set("topic.metadata.refresh.interval.ms", "1000");
        for (k, v) in &self.kafka_props {
            config.set(k, v);
        }
        config
    }

    /// Creates `topic` with `partitions` partitions (replication 1) and waits
    /// until the broker reports it. An existing topic is fine.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self
            .kafka_config()
            .create()
            .unwrap_or_else(|e| panic!("Kafka admin client: {e}"));
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics([&new], &opts)
            .await
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => panic!("create topic {name}: {code}"),
            }
        }
        let config = self.kafka_config();
        let topic = topic.to_string();
        crate::wait_until(Duration::from_secs(10), "the new topic in metadata", || {
            let config = config.clone();
            let topic = topic.clone();
            async move {
                tokio::task::spawn_blocking(move || partitions_of(&config, &topic))
                    .await
                    .expect("metadata task")
                    .is_some()
            }
        })
        .await;
    }

    /// The number of partitions of `topic`, or `None` when it does not exist.
    pub async fn topic_partitions(&self, topic: &str) -> Option<i32> {
        let config = self.kafka_config();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || partitions_of(&config, &topic).map(|p| p.len() as i32))
            .await
            .expect("metadata task")
    }

    /// Produces one message and waits for the broker's acknowledgement;
    /// returns its partition and offset. `partition: None` lets the
    /// partitioner choose (by key hash when there is a key).
    pub async fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> (i32, i64) {
        self.produce_with_headers(topic, partition, key, value, &[])
            .await
    }

    /// [`Stack::produce`] with headers (name, value), in order.
    pub async fn produce_with_headers(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&str, &[u8])],
    ) -> (i32, i64) {
        let producer = self.producer.get_or_init(|| {
            self.kafka_config()
                .create()
                .unwrap_or_else(|e| panic!("Kafka producer: {e}"))
        });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if !headers.is_empty() {
            let owned = headers.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(*value),
                })
            });
            record = record.headers(owned);
        }
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(delivery) => (delivery.partition, delivery.offset),
            Err((e, _)) => panic!("produce to {topic}: {e}"),
        }
    }

    /// Every message of every partition of `topic`, from the beginning to the
    /// end (see the module docs for "end"), sorted by partition then offset.
    /// A topic that does not exist reads as empty. Panics if the end is not
    /// reached within [`READ_TIMEOUT`].
    /// Fence records are left out (see [`Message::is_fence`]); use
    /// [`Stack::read_topic_with_fences`] to see them.
    pub async fn read_topic(&self, topic: &str) -> Vec<Message> {
        without_fences(self.read_topic_with_fences(topic).await)
    }

    /// [`Stack::read_topic`] including fence records.
    pub async fn read_topic_with_fences(&self, topic: &str) -> Vec<Message> {
        let read = self.read_topic_inner(topic, 0, READ_TIMEOUT).await;
        if !read.caught_up {
            panic!(
                "topic {topic}: did not reach the end within {READ_TIMEOUT:?} ({} messages read)",
                read.messages.len()
            );
        }
        read.messages
    }

    /// Like [`Stack::read_topic`], but keeps reading until at least `min`
    /// messages arrived (and then the topic went quiet), or `timeout` passed;
    /// returns what it has either way, for the caller to check. Use it to
    /// wait for a process to publish. Fence records are left out and do
    /// not count towards `min`.
    pub async fn read_topic_until(
        &self,
        topic: &str,
        min: usize,
        timeout: Duration,
    ) -> Vec<Message> {
        without_fences(self.read_topic_until_with_fences(topic, min, timeout).await)
    }

    /// [`Stack::read_topic_until`] including fence records (still only
    /// data counts towards `min`).
    pub async fn read_topic_until_with_fences(
        &self,
        topic: &str,
        min: usize,
        timeout: Duration,
    ) -> Vec<Message> {
        self.read_topic_inner(topic, min, timeout).await.messages
    }

    async fn read_topic_inner(&self, topic: &str, min: usize, timeout: Duration) -> Read {
        let config = self.kafka_config();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || read_blocking(config, &topic, min, timeout))
            .await
            .expect("Kafka read task panicked")
    }
}

/// `messages` without fence records: the one filter every test uses.
pub fn without_fences(messages: Vec<Message>) -> Vec<Message> {
    messages.into_iter().filter(|m| !m.is_fence()).collect()
}

struct Read {
    messages: Vec<Message>,
    caught_up: bool,
}

/// Partition ids of `topic`, `None` when the broker does not know it.
fn partitions_of(config: &ClientConfig, topic: &str) -> Option<Vec<i32>> {
    let consumer: BaseConsumer = config
        .create()
        .unwrap_or_else(|e| panic!("Kafka consumer: {e}"));
    let metadata = match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
        Ok(m) => m,
        Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition)) => return None,
        Err(e) => panic!("Kafka metadata for {topic}: {e}"),
    };
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some(t.partitions().iter().map(|p| p.id()).collect())
}

fn read_blocking(config: ClientConfig, topic: &str, min: usize, timeout: Duration) -> Read {
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    let Some(partitions) = wait_partitions(&config, topic, min, deadline) else {
        return Read {
            messages,
            caught_up: min == 0,
        };
    };
    let mut config = config;
    // assign() needs a group id, but no group is ever joined: nothing
    // subscribes and nothing commits
    let consumer: BaseConsumer = config
        .set("group.id", crate::unique_name("replicator_tests_reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap_or_else(|e| panic!("Kafka consumer: {e}"));
    let mut assignment = TopicPartitionList::new();
    let mut end = BTreeMap::new();
    let mut next = BTreeMap::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition offset");
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"));
        end.insert(p, high);
        next.insert(p, 0i64);
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| panic!("assign {topic}: {e}"));
    let mut last_message = Instant::now();
    let mut last_error = None;
    let mut data = 0;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                let m = owned(&m);
                data += usize::from(!m.is_fence());
                messages.push(m);
                last_message = Instant::now();
            }
            Some(Err(e)) => last_error = Some(e),
            None => {}
        }
        let caught_up = end.iter().all(|(p, high)| next[p] >= *high) && data >= min;
        if caught_up && last_message.elapsed() >= IDLE {
            break;
        }
        if Instant::now() >= deadline {
            if let Some(e) = &last_error {
                eprintln!("replicator-tests: reading {topic}: last error {e}");
            }
            return finish(messages, caught_up);
        }
    }
    finish(messages, true)
}

/// Waits (until `deadline` when `min > 0`) for the topic to exist.
fn wait_partitions(
    config: &ClientConfig,
    topic: &str,
    min: usize,
    deadline: Instant,
) -> Option<Vec<i32>> {
    loop {
        if let Some(p) = partitions_of(config, topic) {
            return Some(p);
        }
        if min == 0 || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(mut messages: Vec<Message>, caught_up: bool) -> Read {
    messages.sort_by_key(|m| (m.partition, m.offset));
    messages.dedup_by_key(|m| (m.partition, m.offset));
    Read {
        messages,
        caught_up,
    }
}

fn owned(m: &rdkafka::message::BorrowedMessage<'_>) -> Message {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|Header { key, value }| (key.to_string(), value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Message {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}
