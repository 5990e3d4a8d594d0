//! Reads the tail of a topic to learn the last position this task delivered
//! to each partition (see [`super::dedupe`]).
//!
//! Brokers may report an end offset that lags the true end by the last record
//! batch (Tansu does), so each partition is read from a window before the
//! reported end until the consumer has been idle for a while. When the window
//! holds no message of this task, it widens towards the start of the log.
//!
//! A partition has reached its end when the consumer's position is at the
//! reported end or when a fetch answered "end of partition" for it. The
//! second case is the only one an empty partition (or a window that holds no
//! message at all) ever gives: its position stays unknown because nothing is
//! consumed from it. Reaching the end is bounded by [`CATCH_UP_TIMEOUT`];
//! the error names the partitions that did not get there (and the task's
//! status shows it): a partition is never taken as read short of its
//! reported end, since a tail read cut short would send duplicates.
//! Blocking: call from `block_in_place`.

use super::dedupe::{MsgPos, GTID_HEADER, POSITION_HEADER, SNAPSHOT_KEY_HEADER, TASK_HEADER};
use crate::error::{TaskError, TransientError};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Messages read back from the reported end first.
const FIRST_WINDOW: i64 = 256;
/// Longest wait to reach the reported end of every partition.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed tail-read `step` on `topic` (and `partition`).
fn tail_error(
    step: &'static str,
    topic: &str,
    partition: Option<i32>,
    source: KafkaError,
) -> TaskError {
    TransientError::Tail {
        step,
        topic: topic.to_string(),
        partition,
        source: Box::new(source),
    }
    .into()
}

/// The last position of `task` in each partition of `topic`.
pub fn read_tails(
    mut cfg: ClientConfig,
    topic: &str,
    task: &str,
    partitions: u32,
    idle: Duration,
) -> Result<Vec<Option<MsgPos>>, TaskError> {
    cfg.set("group.id", format!("replicator-tail-{task}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "20");
    let consumer: BaseConsumer<TailContext> = cfg
        .create_with_context(TailContext)
        .map_err(|e| tail_error("tail consumer of", topic, None, e))?;

    let mut bounds = Vec::with_capacity(partitions as usize);
    for p in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| tail_error("watermarks of", topic, Some(p), e))?;
        bounds.push((low, high));
    }
    let mut result: Vec<Option<MsgPos>> = vec![None; partitions as usize];
    let mut window = FIRST_WINDOW;
    let mut todo: Vec<i32> = (0..partitions as i32).collect();
    loop {
        let mut tpl = TopicPartitionList::new();
        let mut starts = Vec::new();
        for &p in &todo {
            let (low, high) = bounds[p as usize];
            let start = (high - window).max(low);
            tpl.add_partition_offset(topic, p, Offset::Offset(start))
                .map_err(|e| tail_error("assign", topic, Some(p), e))?;
            starts.push((p, start, low));
        }
        consumer
            .assign(&tpl)
            .map_err(|e| tail_error("assign", topic, None, e))?;
        // First reach the reported end of every partition (the consumer's
        // position is known only after its first fetch answered), then wait
        // for quiet: the true end may lie one batch beyond the reported one.
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        let mut at_end = vec![false; partitions as usize];
        let mut caught_up = false;
        let mut last_msg = Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(20)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(flag) = at_end.get_mut(p as usize) {
                        *flag = true;
                    }
                }
                Some(Err(e)) => return Err(tail_error("reading", topic, None, e)),
                Some(Ok(m)) => {
                    last_msg = Instant::now();
                    if let Some(pos) = own_position(&m, task) {
                        result[m.partition() as usize] = Some(pos);
                    }
                }
            }
            if !caught_up {
                mark_positions_at_end(&consumer, topic, &todo, &bounds, &mut at_end);
                caught_up = todo.iter().all(|&p| at_end[p as usize]);
                if caught_up {
                    last_msg = Instant::now();
                } else if Instant::now() > deadline {
                    return Err(TransientError::TailBehind {
                        topic: topic.to_string(),
                        partitions: todo
                            .iter()
                            .copied()
                            .filter(|&p| !at_end[p as usize])
                            .collect(),
                        waited_s: CATCH_UP_TIMEOUT.as_secs(),
                    }
                    .into());
                }
            } else if last_msg.elapsed() >= idle {
                break;
            }
        }
        // Widen where nothing of ours was found and older messages exist.
        todo = starts
            .into_iter()
            .filter(|(p, start, low)| result[*p as usize].is_none() && start > low)
            .map(|(p, _, _)| p)
            .collect();
        if todo.is_empty() {
            // Closing a consumer waits for its broker threads (up to ~100 ms
            // here): let it close off the takeover path.
            super::close_off_runtime(consumer);
            return Ok(result);
        }
        window = window.saturating_mul(16);
    }
}

/// Keeps librdkafka's end-of-partition events out of the error log: here
/// they are the expected answer (see [`read_tails`]).
struct TailContext;

impl ClientContext for TailContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::error!(target: "librdkafka", "librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for TailContext {}

/// Marks the partitions of `parts` whose next offset is at least the reported end.
fn mark_positions_at_end(
    consumer: &BaseConsumer<TailContext>,
    topic: &str,
    parts: &[i32],
    bounds: &[(i64, i64)],
    at_end: &mut [bool],
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for &p in parts {
        let high = bounds[p as usize].1;
        if let Some(Offset::Offset(o)) = positions.find_partition(topic, p).map(|e| e.offset()) {
            if o >= high {
                at_end[p as usize] = true;
            }
        }
    }
}

fn own_position<M: Message>(m: &M, task: &str) -> Option<MsgPos> {
    let headers = m.headers()?;
    let mut is_ours = false;
    let mut pos: Option<MsgPos> = None;
    let mut gtid = None;
    let mut snap_key = None;
    for h in headers.iter() {
        match h.key {
            TASK_HEADER => is_ours = h.value == Some(task.as_bytes()),
            POSITION_HEADER => {
                pos = h
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(MsgPos::parse_header)
            }
            GTID_HEADER => {
                gtid = h
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse().ok())
            }
            SNAPSHOT_KEY_HEADER => {
                snap_key = h
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .map(str::to_string)
            }
            _ => {}
        }
    }
    if is_ours {
        pos.map(|mut p| {
            p.gtid = gtid;
            if p.chunk.is_some() {
                p.snap_key = snap_key;
            }
            p
        })
    } else {
        None
    }
}
