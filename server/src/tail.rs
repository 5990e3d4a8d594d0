//! `replicatorctl tail`: follows Kafka topics and prints their messages.
//!
//! In: topic names and the bootstrap servers. Out: one line per message on
//! stdout (the value as the Core wrote it, a JSON document of docs/design.md §7;
//! with `--meta`, prefixed by `topic/partition@offset key`), notes on
//! stderr, and an exit code of [`crate::client::exit`].
//!
//! Every partition of every topic is `assign()`ed: no consumer group is
//! joined and nothing is committed, so tailing never disturbs anyone and
//! starts at once. It starts at the end of each partition, or at the
//! beginning with `--from-beginning`. A topic that does not exist yet is
//! waited for (a Core creates a task's topics when it first writes to
//! them). It stops after `--max` messages, after `--max-wait-ms`, or on
//! Ctrl-C; Kafka that cannot be reached for [`CONNECT_TIMEOUT`] ends it
//! with exit code 6.
//!
//! Fence records (written by a Core taking over a task, header
//! `replicator.fence`, value `{"type":"fence",...}`) are not data: they are
//! skipped and not counted unless `--fences` asks for them.

use crate::client::exit;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use replicator_common::kafka_security::KafkaSecurity;
use std::io::Write;
use std::time::{Duration, Instant};

/// Header of the fence records a Core writes when it takes a task over
/// (`core/src/sink/takeover.rs`).
pub use replicator_common::message::FENCE_HEADER;

/// How long the brokers may stay unreachable before `tail` gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two looks for a topic that does not exist yet.
const TOPIC_RETRY: Duration = Duration::from_millis(500);

/// `replicatorctl tail TOPIC... --brokers B [--from-beginning] [--max N] [--max-wait-ms N] [--meta]`.
#[derive(clap::Args, Debug, Clone)]
pub struct TailArgs {
    /// Topics to follow; a task's topics are named by its `sink.topic`
    /// template, `{database}.{table}` by default.
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT].
    #[arg(long, env = "REPLICATOR_BROKERS")]
    pub brokers: String,
    /// Start at the beginning of each partition instead of its end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many messages.
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop after this long; exit code 2 when fewer than --max messages came.
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// Prefix each value with `topic/partition@offset key`.
    #[arg(long)]
    pub meta: bool,
    /// A TLS/SASL setting for a secured Kafka, KEY=VALUE (repeatable):
    /// security.protocol, ssl.ca.location, sasl.mechanism, sasl.username,
    /// sasl.password_env, ...
    #[arg(long = "kafka-property")]
    pub kafka_properties: Vec<String>,
    /// Also print fence records (skipped by default).
    #[arg(long)]
    pub fences: bool,
}

/// True for a fence record: it carries the fence header.
pub fn is_fence<'a>(mut header_names: impl Iterator<Item = &'a str>) -> bool {
    header_names.any(|k| k == FENCE_HEADER)
}

/// One output line (without the newline); pure.
pub fn format_line(
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    meta: bool,
) -> String {
    let value = value.map_or_else(
        || "null".to_string(),
        |v| String::from_utf8_lossy(v).into_owned(),
    );
    if !meta {
        return value;
    }
    let key = key.map_or_else(
        || "-".to_string(),
        |k| String::from_utf8_lossy(k).into_owned(),
    );
    format!("{topic}/{partition}@{offset} {key} {value}")
}

/// Runs the tail; returns the exit code.
pub fn run(args: &TailArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    tail(args, CONNECT_TIMEOUT, out, err)
}

fn tail(args: &TailArgs, connect: Duration, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let deadline = args
        .max_wait_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let security = KafkaSecurity::flags(&args.kafka_properties)
        .map_err(|e| e.to_string())
        .and_then(|p| KafkaSecurity::parse_only(&p).map_err(|bad| bad.to_string()));
    let props = match security.and_then(|s| s.client_properties().map_err(|e| e.to_string())) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: --kafka-property {e}");
            return exit::USAGE;
        }
    };
    let mut config = consumer_config(&args.brokers);
    for (k, v) in &props {
        config.set(*k, v);
    }
    let consumer: BaseConsumer = match config.create() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: Kafka client for {}: {e}", args.brokers);
            return exit::USAGE;
        }
    };
    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for topic in &args.topics {
        let looked = wait_partitions(&consumer, &args.brokers, topic, deadline, connect, err);
        let partitions = match looked {
            Ok(Some(p)) => p,
            Ok(None) => return exit::NOT_FOUND, // deadline while waiting
            Err(code) => return code,
        };
        for p in partitions {
            // the end as of now, resolved before `tailing` is printed, so
            // that whatever is written after that line is shown
            let offset = match start {
                Offset::End => consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .map_or(Offset::End, |(_, high)| Offset::Offset(high)),
                other => other,
            };
            if let Err(e) = assignment.add_partition_offset(topic, p, offset) {
                let _ = writeln!(err, "error: {topic}/{p}: {e}");
                return exit::USAGE;
            }
        }
    }
    if let Err(e) = consumer.assign(&assignment) {
        let _ = writeln!(err, "error: cannot assign the partitions: {e}");
        return exit::UNREACHABLE;
    }
    let _ = writeln!(
        err,
        "tailing {} partition(s) of {} from the {}",
        assignment.count(),
        args.topics.join(", "),
        if args.from_beginning {
            "beginning"
        } else {
            "end"
        }
    );
    let mut seen = 0u64;
    let mut last_error = String::new();
    loop {
        if args.max.is_some_and(|max| seen >= max) {
            return exit::OK;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return match args.max {
                Some(max) => {
                    let _ = writeln!(err, "only {seen} of {max} messages before --max-wait-ms");
                    exit::NOT_FOUND
                }
                None => exit::OK,
            };
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let fence = m
                    .headers()
                    .is_some_and(|h| is_fence(h.iter().map(|h| h.key)));
                if fence && !args.fences {
                    continue;
                }
                let line = format_line(
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    m.key(),
                    m.payload(),
                    args.meta,
                );
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return exit::OK; // the reader went away (`| head`)
                }
                seen += 1;
            }
            Some(Err(e)) => {
                let text = e.to_string();
                if text != last_error {
                    let _ = writeln!(err, "warning: {text}; still trying");
                    last_error = text;
                }
            }
            None => {}
        }
    }
}

/// A consumer that never joins a group and never commits.
fn consumer_config(brokers: &str) -> ClientConfig {
    let group = format!(
        "replicatorctl-tail-{}-{}",
        std::process::id(),
        replicator_common::now_ms()
    );
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group) // assign() needs one; it is never joined
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "2000");
    config
}

/// The partition ids of `topic`, waiting while it does not exist;
/// `Ok(None)` when `deadline` passed first, `Err(exit code)` when Kafka
/// cannot be reached.
fn wait_partitions(
    consumer: &BaseConsumer,
    brokers: &str,
    topic: &str,
    deadline: Option<Instant>,
    connect: Duration,
    err: &mut dyn Write,
) -> Result<Option<Vec<i32>>, u8> {
    let mut unreachable_since: Option<Instant> = None;
    let mut said_waiting = false;
    loop {
        let asked = Instant::now();
        match consumer.fetch_metadata(Some(topic), connect.min(Duration::from_secs(5))) {
            Ok(md) => {
                unreachable_since = None;
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    if t.error().is_none() && !t.partitions().is_empty() {
                        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                        ids.sort_unstable();
                        return Ok(Some(ids));
                    }
                }
            }
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                unreachable_since = None;
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert(asked);
                if since.elapsed() >= connect {
                    let _ = writeln!(err, "error: cannot reach Kafka at {brokers}: {e}");
                    return Err(exit::UNREACHABLE);
                }
            }
        }
        if unreachable_since.is_none() && !said_waiting {
            let _ = writeln!(
                err,
                "waiting for topic {topic} to exist (a Core creates a task's topics when it first writes to them)"
            );
            said_waiting = true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = writeln!(err, "topic {topic} did not appear before --max-wait-ms");
            return Ok(None);
        }
        std::thread::sleep(TOPIC_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicator_common::message::{POSITION_HEADER, TASK_HEADER};

    #[test]
    fn lines() {
        let v = br#"{"type":"insert"}"#;
        assert_eq!(
            format_line("d.t", 1, 42, Some(b"[7]"), Some(v), false),
            r#"{"type":"insert"}"#
        );
        assert_eq!(
            format_line("d.t", 1, 42, Some(b"[7]"), Some(v), true),
            r#"d.t/1@42 [7] {"type":"insert"}"#
        );
        assert_eq!(format_line("d.t", 0, 0, None, None, true), "d.t/0@0 - null");
    }

    #[test]
    fn fence_records_are_told_by_their_header() {
        assert!(is_fence([TASK_HEADER, FENCE_HEADER].into_iter()));
        assert!(!is_fence([TASK_HEADER, POSITION_HEADER].into_iter()));
        assert!(!is_fence(std::iter::empty()));
    }

    #[test]
    fn unreachable_brokers_exit_6() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = TailArgs {
            topics: vec!["t".into()],
            brokers: format!("127.0.0.1:{port}"),
            from_beginning: false,
            max: Some(1),
            max_wait_ms: Some(30_000),
            meta: false,
            kafka_properties: Vec::new(),
            fences: false,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let t = Instant::now();
        let code = tail(&args, Duration::from_secs(1), &mut out, &mut err);
        assert_eq!(code, exit::UNREACHABLE);
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        let err = String::from_utf8_lossy(&err);
        assert!(err.contains("cannot reach Kafka"), "{err}");
    }
}
