//! `replication_lag` caused for real: the source MariaDB of a private stack
//! is frozen (SIGSTOP), its heartbeats stop, the task's event time stops
//! advancing and lag grows past the threshold; after SIGCONT the
//! heartbeats resume and the alert resolves. An idle but healthy source
//! raises nothing (heartbeats advance the event time).

mod monitor_support;
mod support;

use monitor_support::{monitor_with_hook, SESSION_MS};
use replicator_common::nodes::AlertState;
use replicator_common::now_ms;
use replicator_tests::{Server, Stack};
use std::time::Duration;
use support::Scenario;

const WAIT: Duration = Duration::from_secs(30);
const LAG_MS: i64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_lag_fires_while_the_source_is_frozen() {
    let Some(stack) = Stack::start_or_skip() else {
        return;
    };
    // a private stack: it is frozen below; leaked so that the scenario can
    // borrow it for the whole test (its servers die with the test process)
    let stack: &'static Stack = Box::leak(Box::new(stack));
    let s = Scenario::single_core(stack, "mon_lag").await;
    let (hook, mut monitor) =
        monitor_with_hook(stack, &s.root, &[("--lag-ms", &LAG_MS.to_string())], &[]).await;
    let mut h1 = s.running_core("h1", SESSION_MS, WAIT).await;
    // Given an idle source: heartbeats keep the event time current, no lag
    stack
        .sql(&format!("INSERT INTO `{}`.t VALUES (1, 1, 1, 'x')", s.db))
        .await;
    tokio::time::sleep(Duration::from_millis(2 * LAG_MS as u64)).await;
    assert!(
        hook.of("replication_lag", AlertState::Firing).is_empty(),
        "an idle source is not lag: {:#?}",
        hook.all()
    );

    // When the source freezes
    let t0 = now_ms();
    stack.pause(Server::MariaDb);
    let fired = hook
        .wait_rule_timed(
            "replication_lag",
            AlertState::Firing,
            t0,
            WAIT,
            "SIGSTOP of the source to notification, threshold 3000 ms",
        )
        .await;
    stack.resume(Server::MariaDb);
    assert!(
        fired.at_ms - t0 >= LAG_MS - 1000,
        "fired after {} ms, before the lag could reach {LAG_MS} ms",
        fired.at_ms - t0
    );

    // Then after SIGCONT it resolves
    let resolved = hook
        .wait_rule("replication_lag", AlertState::Resolved, t0, WAIT)
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);
    hook.assert_no_duplicates();
    monitor.process.stop().await;
    h1.stop().await;
}
