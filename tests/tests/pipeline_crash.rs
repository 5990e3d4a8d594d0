//! Core pipeline against the real stack: SIGKILL the only Core several times
//! mid-stream while a writer commits multi-row transactions; every row must
//! reach Kafka exactly once, positions growing in every partition.

mod support;

use replicator_tests::shared_stack;
use std::time::Duration;
use support::{exactly_once, Scenario, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_loses_and_duplicates_nothing() {
    let stack = shared_stack!();
    // Given a task and a Core replicating it
    let s = Scenario::new(stack, "crash").await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;

    // When a writer commits 7-row transactions while the Core is killed 4 times
    let writer = Writer::start(stack, &s.db, &s.table, 7, Duration::from_millis(5));
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(700 + round * 150)).await;
        core.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        core = s.core("h1", 1500);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let n = writer.finish().await;
    assert!(n > 100, "writer wrote only {n} rows");

    // Then every row arrives exactly once
    let msgs = s.wait_messages(n as usize, Duration::from_secs(60)).await;
    let problems = exactly_once(&msgs, n);
    assert!(
        problems.is_empty(),
        "{n} rows, {} messages: {problems:#?}\n{}",
        msgs.len(),
        core.tail(40)
    );
    let skipped = core.log_lines_matching("read topic tail");
    assert!(
        !skipped.is_empty(),
        "a restart after SIGKILL must read the topic tail"
    );
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_advances_and_graceful_stop_is_clean() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "ctx").await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let n = writer.finish().await;
    s.wait_messages(n as usize, Duration::from_secs(30)).await;
    core.stop().await;
    let ctx = s.context().await.expect("context written");
    assert_eq!(ctx["clean"], true, "{ctx}");
    // every row message counts: n inserts, the counter row and its n/3 updates
    assert_eq!(
        ctx["events"].as_u64(),
        Some((n + 1 + n / 3) as u64),
        "{ctx}"
    );
    // a restart after a clean stop needs no tail read and sends nothing again
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.t VALUES ({}, 0, 0, 'after')",
            s.db,
            n + 1
        ))
        .await;
    let msgs = s
        .wait_messages(n as usize + 1, Duration::from_secs(30))
        .await;
    assert!(exactly_once(&msgs, n + 1).is_empty());
    assert!(
        core.log_lines_matching("read topic tail").is_empty(),
        "clean context: no tail read"
    );
    core.stop().await;
}
