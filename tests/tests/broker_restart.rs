//! A broker restart mid-stream, on a storage that survives it (Tansu on S3,
//! see `replicator_tests::s3_kafka`): a writer commits multi-row
//! transactions throughout; the broker is stopped (SIGTERM) and started
//! again on the same port and data. Every row must arrive exactly once and
//! the counter row's updates in commit order. Prints how long the broker
//! was away, how many requests the producer resent and whether the pipeline
//! had to restart from its context.
//!
//! Ignored: no broker that runs here keeps its data through a restart
//! reliably. Tansu 0.6.0's prebuilt binary stores only in memory or S3; on
//! S3 (moto, `pip install 'moto[server]'`) a batch in flight at SIGTERM can
//! be lost while the restarted broker answers its resend with
//! `DUPLICATE_SEQUENCE_NUMBER` (this test caught it as lost rows: the
//! producer no longer takes that answer on trust from a broker that
//! refused a connection in between), and a tail read after the restart can
//! get no records below the reported end, so the task stops with a
//! reported "did not reach their end" error instead of guessing. Runs here:
//! before that change 3 of 5 passed and 2 lost rows; with it 3 of 8 passed
//! (one of them through a pipeline restart, still exactly once) and 5
//! stalled, visibly, in the tail read. Run it with `--ignored`.

mod support;

use replicator_tests::s3_kafka::S3Kafka;
use replicator_tests::{shared_stack, Stack};
use std::time::Duration;
use support::{counter_in_order, exactly_once, Scenario, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "Tansu 0.6 on S3 loses an in-flight batch across a restart and may not serve a tail read after it (see the module doc)"]
async fn a_broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let base = shared_stack!();
    let mut kafka = S3Kafka::start();
    let stack: &'static Stack = Box::leak(Box::new(kafka.stack(base)));
    let s = Scenario::new(stack, "brestart").await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;

    let writer = Writer::start(stack, &s.db, &s.table, 5, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let away = kafka.restart().await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let n = writer.finish().await;
    // every transaction inserts 5 rows and bumps the counter row once
    let txns = n / 5;

    let msgs = s.wait_messages(n as usize, Duration::from_secs(90)).await;
    let mut problems = exactly_once(&msgs, n);
    problems.extend(counter_in_order(&msgs, txns));
    let resends = core.log_lines_matching("resending").len();
    let restarts = core
        .log_lines_matching("transient error; retrying from the context")
        .len();
    assert!(
        problems.is_empty(),
        "{n} rows, {} messages: {problems:#?}\n{}",
        msgs.len(),
        core.tail(40)
    );
    println!(
        "broker restart: away {} ms, rows {n}, lost 0, duplicated 0, resent requests {resends}, pipeline restarts {restarts}",
        away.as_millis()
    );
    core.stop().await;
    kafka.stop();
}
