//! The Core's own Kafka producer against the real broker: records, keys and
//! headers arrive as sent and in order; and a writer that started later
//! fences an earlier one at the broker, so records the earlier one still
//! held (as a frozen process would) never land.

use replicator_common::producer::ProducerSettings;
use replicator_core::sink::kafka::conn::Client;
use replicator_core::sink::kafka::{no_guard, transactional_id, Producer, WireGuard};
use replicator_core::sink::tracker::Tracker;
use replicator_tests::{shared_stack, unique_name, Stack};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn producer(stack: &Stack, task: &str, linger_ms: u64) -> (Producer, Arc<Tracker>) {
    guarded_producer(stack, task, linger_ms, no_guard()).await
}

async fn guarded_producer(
    stack: &Stack,
    task: &str,
    linger_ms: u64,
    guard: WireGuard,
) -> (Producer, Arc<Tracker>) {
    let tracker = Arc::new(Tracker::default());
    let settings = ProducerSettings {
        linger: Duration::from_millis(linger_ms),
        ..ProducerSettings::default()
    };
    let p = Producer::start(
        stack.kafka_bootstrap(),
        &transactional_id(task),
        settings,
        Client::plaintext("fence-test", TIMEOUT),
        tracker.clone(),
        guard,
    )
    .await
    .unwrap_or_else(|e| panic!("start producer for {task}: {e}"));
    (p, tracker)
}

/// Where records go: a topic with `partitions` partitions, all led by `leader`.
struct Target {
    leader: Arc<str>,
    topic: Arc<str>,
    partitions: usize,
}

/// Sends `n` records numbered from `first`, record i to partition `i % partitions`.
async fn send(
    p: &mut Producer,
    tracker: &Tracker,
    to: &Target,
    writer: &str,
    first: usize,
    n: usize,
) {
    let txn = tracker.begin();
    for i in first..first + n {
        tracker.add_pending(txn);
        let key = format!("[{i}]");
        let value = format!(r#"{{"writer":"{writer}","n":{i}}}"#);
        let headers: [(&str, &[u8]); 2] = [("writer", writer.as_bytes()), ("n", key.as_bytes())];
        let partition = (i % to.partitions) as i32;
        p.send(
            &to.leader,
            &to.topic,
            partition,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &headers,
            txn,
        )
        .await
        .unwrap_or_else(|e| panic!("send {i} by {writer}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_keys_and_headers_arrive_as_sent_in_partition_order() {
    let stack = shared_stack!();
    let topic: Arc<str> = unique_name("own-producer").into();
    stack.create_topic(&topic, 3).await;
    let to = Target {
        leader: stack.kafka_bootstrap().into(),
        topic: topic.clone(),
        partitions: 3,
    };
    let (mut p, tracker) = producer(stack, &unique_name("task"), 5).await;

    send(&mut p, &tracker, &to, "a", 0, 3000).await;
    p.flush(TIMEOUT).await.expect("flush");
    assert_eq!(p.in_flight(), 0);
    assert!(tracker.failure().is_none(), "{:?}", tracker.failure());

    let msgs = stack.read_topic(&topic).await;
    assert_eq!(msgs.len(), 3000);
    for part in 0..3 {
        let ns: Vec<usize> = msgs
            .iter()
            .filter(|m| m.partition == part)
            .map(|m| m.value_json()["n"].as_u64().unwrap() as usize)
            .collect();
        let want: Vec<usize> = (0..3000).filter(|i| i % 3 == part as usize).collect();
        assert_eq!(
            ns, want,
            "partition {part} holds its records once, in order"
        );
    }
    for m in &msgs {
        let n = m.value_json()["n"].as_u64().unwrap();
        assert_eq!(m.key_json(), serde_json::json!([n]));
        assert_eq!(m.header("writer"), Some(&b"a"[..]));
        assert_eq!(m.header("n"), Some(format!("[{n}]").as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_writer_fences_what_an_earlier_one_still_holds() {
    let stack = shared_stack!();
    let topic: Arc<str> = unique_name("fence").into();
    stack.create_topic(&topic, 2).await;
    let to = Target {
        leader: stack.kafka_bootstrap().into(),
        topic: topic.clone(),
        partitions: 2,
    };
    let task = unique_name("task");

    // Given writer A delivered 10 records, then queued 5 more it has not
    // sent yet (a long linger stands in for a frozen process)
    let (mut a, a_tracker) = producer(stack, &task, 60_000).await;
    send(&mut a, &a_tracker, &to, "a", 0, 10).await;
    a.flush(TIMEOUT).await.expect("A's first records");
    send(&mut a, &a_tracker, &to, "a", 10, 5).await;
    assert_eq!(a.in_flight(), 5, "held by A");

    // When writer B of the same task starts and writes
    let (mut b, b_tracker) = producer(stack, &task, 5).await;
    assert_eq!(b.producer_id().id, a.producer_id().id, "same producer id");
    assert!(b.producer_id().epoch > a.producer_id().epoch, "newer epoch");
    send(&mut b, &b_tracker, &to, "b", 100, 10).await;
    b.flush(TIMEOUT).await.expect("B's records");

    // Then A's held records are refused by the broker when A sends them
    let err = a.flush(TIMEOUT).await.expect_err("A is fenced").to_string();
    assert!(err.contains("PRODUCER_FENCED"), "{err}");
    assert!(a_tracker.failure().is_some());
    let later = send_one(&mut a, &to).await;
    assert!(later.is_err(), "a fenced producer accepts nothing more");

    // And the topic holds A's first 10 and B's 10, nothing else
    let mut got: Vec<(String, u64)> = stack
        .read_topic(&topic)
        .await
        .iter()
        .map(|m| {
            let v = m.value_json();
            (
                v["writer"].as_str().unwrap().to_string(),
                v["n"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, u64)> = (0..10)
        .map(|n| ("a".to_string(), n))
        .chain((100..110).map(|n| ("b".to_string(), n)))
        .collect();
    assert_eq!(got, want);
}

/// The self-fence: records queued while the lease was valid are not put
/// on the wire once it expired (a process resuming from a freeze).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_stops_requests_right_before_the_wire() {
    let stack = shared_stack!();
    let topic: Arc<str> = unique_name("selffence").into();
    stack.create_topic(&topic, 2).await;
    let to = Target {
        leader: stack.kafka_bootstrap().into(),
        topic: topic.clone(),
        partitions: 2,
    };
    let lease = Arc::new(AtomicBool::new(true));
    let valid = lease.clone();
    let guard: WireGuard = Arc::new(move || valid.load(Ordering::Acquire));
    // Given a writer that delivered 10 records and queued 5 more (a long
    // linger holds them, as a freeze would)
    let (mut a, tracker) = guarded_producer(stack, &unique_name("task"), 60_000, guard).await;
    send(&mut a, &tracker, &to, "a", 0, 10).await;
    a.flush(TIMEOUT).await.expect("first records");
    send(&mut a, &tracker, &to, "a", 10, 5).await;
    assert_eq!(a.in_flight(), 5);

    // When its lease expires before the queued request is sent
    lease.store(false, Ordering::Release);
    let err = a.flush(TIMEOUT).await.expect_err("self-fenced").to_string();

    // Then nothing more went on the wire, and the producer says why
    assert!(err.contains("self-fenced"), "{err}");
    assert!(a.lease_expired());
    assert!(send_one(&mut a, &to).await.is_err(), "accepts nothing more");
    let n = stack.read_topic(&topic).await.len();
    assert_eq!(n, 10, "only what was sent while the lease was valid");
}

async fn send_one(
    p: &mut Producer,
    to: &Target,
) -> Result<(), replicator_core::sink::kafka::ProducerError> {
    p.send(&to.leader, &to.topic, 0, Some(b"[0]"), Some(b"{}"), &[], 0)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_a_clear_error() {
    let tracker = Arc::new(Tracker::default());
    let err = Producer::start(
        "127.0.0.1:1",
        &transactional_id("t"),
        ProducerSettings::default(),
        Client::plaintext("fence-test", Duration::from_secs(2)),
        tracker,
        no_guard(),
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!err.is_definite(), "a broker may come back: transient");
}
