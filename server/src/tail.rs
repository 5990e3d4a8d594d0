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
use rdkafka::message::{BorrowedMessage, Headers, Message};
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
    let consumer = match create_consumer(args, err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = assign_partitions(&consumer, args, deadline, connect, err) {
        return code;
    }
    follow(&consumer, args, deadline, out, err)
}

/// The consumer, with the `--kafka-property` settings; `Err(exit code)`
/// (said on `err`) when they are bad or the client cannot be made.
fn create_consumer(args: &TailArgs, err: &mut dyn Write) -> Result<BaseConsumer, u8> {
    let props = security_properties(&args.kafka_properties, err)?;
    let mut config = consumer_config(&args.brokers);
    for (k, v) in &props {
        config.set(*k, v);
    }
    config.create().map_err(|e| {
        let _ = writeln!(err, "error: Kafka client for {}: {e}", args.brokers);
        exit::USAGE
    })
}

/// The librdkafka properties of the `--kafka-property` flags (the SASL
/// password read now); a bad flag is a usage error, said on `err`.
fn security_properties(
    flags: &[String],
    err: &mut dyn Write,
) -> Result<Vec<(&'static str, String)>, u8> {
    let mut usage = |e: &dyn std::fmt::Display| {
        let _ = writeln!(err, "error: --kafka-property {e}");
        exit::USAGE
    };
    let props = KafkaSecurity::flags(flags).map_err(|e| usage(&e))?;
    let security = KafkaSecurity::parse_only(&props).map_err(|e| usage(&e))?;
    security.client_properties().map_err(|e| usage(&e))
}

/// Assigns every partition of every topic at its start, waiting for topics
/// that do not exist yet, and says `tailing ...` on `err`; `Err(exit code)`
/// when a topic did not appear before the deadline or Kafka cannot be
/// reached.
fn assign_partitions(
    consumer: &BaseConsumer,
    args: &TailArgs,
    deadline: Option<Instant>,
    connect: Duration,
    err: &mut dyn Write,
) -> Result<(), u8> {
    let mut assignment = TopicPartitionList::new();
    for topic in &args.topics {
        let looked = wait_partitions(consumer, &args.brokers, topic, deadline, connect, err)?;
        let Some(partitions) = looked else {
            return Err(exit::NOT_FOUND); // deadline while waiting
        };
        for p in partitions {
            let offset = start_offset(consumer, topic, p, args.from_beginning);
            if let Err(e) = assignment.add_partition_offset(topic, p, offset) {
                let _ = writeln!(err, "error: {topic}/{p}: {e}");
                return Err(exit::USAGE);
            }
        }
    }
    if let Err(e) = consumer.assign(&assignment) {
        let _ = writeln!(err, "error: cannot assign the partitions: {e}");
        return Err(exit::UNREACHABLE);
    }
    let from = if args.from_beginning {
        "beginning"
    } else {
        "end"
    };
    let (count, topics) = (assignment.count(), args.topics.join(", "));
    let _ = writeln!(
        err,
        "tailing {count} partition(s) of {topics} from the {from}"
    );
    Ok(())
}

/// Where a partition is read from: its beginning, or its end as of now,
/// resolved before `tailing` is printed so that whatever is written after
/// that line is shown.
fn start_offset(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    from_beginning: bool,
) -> Offset {
    if from_beginning {
        return Offset::Beginning;
    }
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(5))
        .map_or(Offset::End, |(_, high)| Offset::Offset(high))
}

/// Prints the messages as they come, skipping fences unless `--fences`,
/// until [`finished`] or the reader goes away; returns the exit code. A
/// poll error is said once on `err` until another one comes.
fn follow(
    consumer: &BaseConsumer,
    args: &TailArgs,
    deadline: Option<Instant>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut seen = 0u64;
    let mut last_error = String::new();
    loop {
        if let Some(code) = finished(args.max, seen, deadline, err) {
            return code;
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let fence = m
                    .headers()
                    .is_some_and(|h| is_fence(h.iter().map(|h| h.key)));
                if fence && !args.fences {
                    continue;
                }
                if !print(&m, args.meta, out) {
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

/// The exit code when tailing is over after `seen` messages: `--max` of
/// them came, or the deadline passed (exit 2, said on `err`, when fewer than
/// `--max` came); `None` to go on.
fn finished(
    max: Option<u64>,
    seen: u64,
    deadline: Option<Instant>,
    err: &mut dyn Write,
) -> Option<u8> {
    if max.is_some_and(|max| seen >= max) {
        return Some(exit::OK);
    }
    let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
    if !timed_out {
        return None;
    }
    Some(match max {
        Some(max) => {
            let _ = writeln!(err, "only {seen} of {max} messages before --max-wait-ms");
            exit::NOT_FOUND
        }
        None => exit::OK,
    })
}

/// Writes the message's line to `out`; false when that fails.
fn print(m: &BorrowedMessage<'_>, meta: bool, out: &mut dyn Write) -> bool {
    let line = format_line(
        m.topic(),
        m.partition(),
        m.offset(),
        m.key(),
        m.payload(),
        meta,
    );
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
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
    fn tailing_ends_at_max_or_deadline() {
        let (mut err, past) = (Vec::new(), Some(Instant::now()));
        let future = Some(Instant::now() + Duration::from_secs(3600));
        assert_eq!(finished(None, 0, None, &mut err), None);
        assert_eq!(finished(Some(3), 2, future, &mut err), None);
        assert_eq!(finished(Some(0), 0, None, &mut err), Some(exit::OK));
        assert_eq!(finished(Some(3), 3, past, &mut err), Some(exit::OK));
        assert_eq!(finished(None, 5, past, &mut err), Some(exit::OK));
        assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
        assert_eq!(finished(Some(3), 1, past, &mut err), Some(exit::NOT_FOUND));
        assert_eq!(
            String::from_utf8_lossy(&err),
            "only 1 of 3 messages before --max-wait-ms\n"
        );
    }

    #[test]
    fn bad_kafka_properties_are_usage_errors() {
        let mut err = Vec::new();
        assert_eq!(
            security_properties(&[], &mut err),
            Ok(vec![("security.protocol", "plaintext".into())])
        );
        for flags in [&["nokey"][..], &["linger.ms=5"], &["security.protocol=tls"]] {
            let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
            let mut err = Vec::new();
            assert_eq!(security_properties(&flags, &mut err), Err(exit::USAGE));
            let err = String::from_utf8_lossy(&err);
            assert!(err.starts_with("error: --kafka-property "), "{err}");
        }
        assert!(err.is_empty());
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
