//! A 3-server ZooKeeper ensemble under continuous writes: its leader is
//! SIGKILLed twice (and restarted each time), then all three are stopped
//! and restarted. The task keeps or regains exactly one RUNNING instance
//! and every row arrives exactly once. Prints its figures (recovery time
//! per fault, rows, lost, duplicated).
//!
//! ZooKeeper is an ensemble of the test's own; MariaDB and Kafka are the
//! shared stack's (nothing here stops them).

mod support;

use replicator_tests::{Stack, ZkEnsemble};
use std::time::{Duration, Instant};
use support::faults::{now_ms, position, print_figures, tally, wait_recovered};
use support::{counter_in_order, exactly_once, Scenario, Writer};

/// Session timeout of the Cores: the lease lapses after 2/3 of it.
const SESSION_MS: u64 = 6000;
const RECOVERY: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_survives_leader_kills_and_a_full_ensemble_restart() {
    let Some(shared) = Stack::shared_or_skip() else {
        return;
    };
    // Given a 3-server ensemble, two Cores of one task and a writer
    let mut ensemble = ZkEnsemble::start(3);
    let stack: &'static Stack = Box::leak(Box::new(shared.with_zk(&ensemble.connect_string())));
    let s = Scenario::new(stack, "zkens").await;
    let mut a = s.core("a", SESSION_MS);
    a.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let mut b = s.core("b", SESSION_MS);
    b.wait_for_log("STANDBY", Duration::from_secs(30)).await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut recoveries = Vec::new();
    // When the leader is SIGKILLed, twice (restarted after each recovery)
    for round in 1..=2 {
        let leader = ensemble.wait_leader(Duration::from_secs(30));
        let before = position(&s, &s.zk).await;
        let (fault_at, fault_ms) = (Instant::now(), now_ms());
        ensemble.kill(leader);
        let (took, host) = wait_recovered(&s, &s.zk, fault_at, fault_ms, before, RECOVERY).await;
        let new_leader = ensemble.wait_leader(Duration::from_secs(30));
        eprintln!(
            "leader kill {round}: ZooKeeper {} killed, {} leads now; task produces again after {} ms, RUNNING on {host}",
            leader + 1,
            new_leader + 1,
            took.as_millis()
        );
        recoveries.push(took);
        ensemble.restart(leader);
        ensemble.wait_serving(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // When all three stop for longer than the session timeout, then restart
    let before = position(&s, &s.zk).await;
    let (fault_at, fault_ms) = (Instant::now(), now_ms());
    ensemble.kill_all();
    tokio::time::sleep(Duration::from_millis(SESSION_MS + 2000)).await;
    ensemble.restart_all();
    ensemble.wait_serving(Duration::from_secs(60));
    // the test's own session may have expired meanwhile: open a new one
    let zk = stack.zk(&s.root).await;
    let (took, host) = wait_recovered(&s, &zk, fault_at, fault_ms, before, RECOVERY).await;
    eprintln!(
        "full ensemble restart: down {} ms, task produces again after {} ms, RUNNING on {host}",
        SESSION_MS + 2000,
        took.as_millis()
    );
    recoveries.push(took);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Then every row arrives exactly once, the counter in commit order
    let txns_floor = writer.txns();
    let n = writer.finish().await;
    let msgs = s.wait_messages(n as usize, Duration::from_secs(90)).await;
    let updates = msgs
        .iter()
        .filter(|m| m.value_json()["type"] == "update")
        .count() as i64;
    let figures = tally(&msgs, n);
    print_figures(
        "zookeeper-leader-kill-x2-then-full-restart",
        &recoveries,
        figures,
    );
    let mut problems = exactly_once(&msgs, n);
    problems.extend(counter_in_order(&msgs, updates));
    assert!(
        problems.is_empty(),
        "{problems:#?}\n--- a ---\n{}\n--- b ---\n{}",
        a.tail(30),
        b.tail(30)
    );
    assert!(
        updates >= txns_floor,
        "every transaction's counter update arrived"
    );
    assert_eq!(figures.lost + figures.duplicated, 0);
    a.stop().await;
    b.stop().await;
}
