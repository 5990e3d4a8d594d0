//! Transient broker trouble: the broker process is frozen (SIGSTOP) while a
//! task streams. Within the retry budget (`delivery.timeout.ms`) the
//! producer resends the same batches on a new connection and the pipeline
//! never restarts; past it the task stops with a transient error and
//! resumes from its context. Either way every row arrives exactly once.
//! Runs on a private stack: it freezes the broker.

mod support;

use replicator_tests::{Server, Stack};
use serde_json::json;
use std::time::Duration;
use support::{exactly_once, Scenario, Writer};

const RESTART: &str = "transient error; retrying from the context";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_is_waited_out_within_the_budget_and_restarts_past_it() {
    let Some(stack) = Stack::start_or_skip() else {
        return;
    };
    let stack: &'static Stack = Box::leak(Box::new(stack));
    // Given a task with a 3 s delivery budget (request timeout 1 s: 2/3 of
    // the 1.5 s session) and a writer committing continuously
    let s = Scenario::new(stack, "retry").await;
    let mut cfg = s.config();
    cfg["sink"]["properties"] = json!({"delivery.timeout.ms": "3000", "retry.backoff.ms": "100"});
    s.put_config(cfg).await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // When the broker freezes for 1.8 s (a request times out, the resend
    // is answered once the broker is back)
    stack.pause(Server::Tansu);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stack.resume(Server::Tansu);
    tokio::time::sleep(Duration::from_millis(2000)).await;

    // Then the producer resent and the pipeline did not restart
    let resent = core.log_lines_matching("resending").len();
    assert!(resent > 0, "a request was resent:\n{}", core.tail(30));
    assert!(
        core.log_lines_matching(RESTART).is_empty(),
        "no pipeline restart within the budget:\n{}",
        core.tail(30)
    );
    // When the broker freezes for 8 s, past the budget
    stack.pause(Server::Tansu);
    tokio::time::sleep(Duration::from_millis(8000)).await;
    stack.resume(Server::Tansu);

    // Then the task stopped with a transient error, resumed, and every row
    // is in Kafka exactly once
    core.wait_for_log(RESTART, Duration::from_secs(20)).await;
    core.wait_for_log("fenced every partition", Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let n = writer.finish().await;
    let msgs = s.wait_messages(n as usize, Duration::from_secs(60)).await;
    let problems = exactly_once(&msgs, n);
    assert!(
        problems.is_empty(),
        "{n} rows: {problems:#?}\n{}",
        core.tail(40)
    );
    eprintln!(
        "{n} rows; resends in the short freeze: {resent}; gave up: {}",
        core.log_lines_matching("gave up after").len()
    );
    core.stop().await;
}
