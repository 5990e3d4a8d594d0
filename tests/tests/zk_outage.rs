//! Fencing when ZooKeeper goes away: the RUNNING Core must stop producing
//! within 2/3 of its session timeout (its lease lapses), and after
//! ZooKeeper comes back (sessions expired meanwhile) it rejoins and resumes
//! with nothing lost or duplicated. Runs on a private stack: it freezes the
//! ZooKeeper server.

mod support;

use replicator_tests::{Server, Stack};
use std::time::Duration;
use support::{counter_in_order, exactly_once, Scenario, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_core_stops_producing_while_zookeeper_is_unreachable() {
    let Some(stack) = Stack::start_or_skip() else {
        return;
    };
    let stack: &'static Stack = Box::leak(Box::new(stack));
    let s = Scenario::new(stack, "zkout").await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // When ZooKeeper freezes for longer than the session timeout
    stack.pause(Server::ZooKeeper);
    // the lease (2/3 of 1.5 s) lapses within a second; give in-flight
    // messages a moment to land, then nothing more may arrive
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during_a = stack.read_topic(&s.topic).await.len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let during_b = stack.read_topic(&s.topic).await.len();
    assert_eq!(
        during_a, during_b,
        "the Core produced while it could not reach ZooKeeper"
    );
    // (whichever comes first: the lease lapsing, or a context write or the
    // session failing)
    let said = ["lease lost", "writing context", "session is over"]
        .iter()
        .any(|p| !core.log_lines_matching(p).is_empty());
    assert!(said, "the Core must say why it stopped:\n{}", core.tail(20));

    // Then when ZooKeeper is back it rejoins and catches up exactly once
    stack.resume(Server::ZooKeeper);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let n = writer.finish().await;
    let msgs = s.wait_messages(n as usize, Duration::from_secs(60)).await;
    let updates = msgs
        .iter()
        .filter(|m| m.value_json()["type"] == "update")
        .count() as i64;
    let mut problems = exactly_once(&msgs, n);
    problems.extend(counter_in_order(&msgs, updates));
    assert!(problems.is_empty(), "{problems:#?}\n{}", core.tail(30));
    assert!(
        updates >= n / 3,
        "every transaction's counter update arrived"
    );
    core.stop().await;
}
