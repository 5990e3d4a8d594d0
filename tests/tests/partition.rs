//! Network partitions between the RUNNING Core and ZooKeeper or Kafka,
//! with Linux network namespaces ([`replicator_tests::Netns`]): the Core
//! runs in a namespace of its own, joined to the host by one veth link per
//! server (ZooKeeper, Kafka, MariaDB); the test cuts one link and restores
//! it. Each test runs on a private stack whose servers listen on every
//! address (Tansu advertises its address on the Kafka link, the one every
//! client reaches it at). Each prints its figures (recovery time, rows,
//! lost, duplicated).
//!
//! Needs root (network namespaces). `REPLICATOR_TEST_SKIP_NETNS=1` skips
//! them; otherwise a namespace that cannot be created fails the test.

mod monitor_support;
mod support;

use monitor_support::monitor_with_hook;
use replicator_common::nodes::{AlertState, InstanceState};
use replicator_tests::{bin_path, skip_netns_tests, Netns, Process, ServerOptions, Stack};
use std::time::{Duration, Instant};
use support::faults::{now_ms, position, print_figures, recover_from, tally, wait_recovered};
use support::{counter_in_order, exactly_once, old_epoch_after_new, Scenario, Writer};

/// A namespace with links `zk`, `kafka` and `mysql`, and a private stack
/// reachable through them; `None` when the stack or netns tests are skipped.
fn partitioned_stack() -> Option<(Netns, &'static Stack)> {
    if replicator_tests::skip_stack_tests() || skip_netns_tests() {
        return None;
    }
    let ns = Netns::create(&["zk", "kafka", "mysql"]).unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::start_with(&ServerOptions {
        listen_all: true,
        kafka_host: Some(ns.host_addr("kafka").to_string()),
        mysql_host: Some(ns.host_addr("mysql").to_string()),
    });
    Some((ns, Box::leak(Box::new(stack))))
}

/// A Core of the scenario's task inside the namespace, reaching ZooKeeper
/// through the `zk` link.
fn core_in_ns(ns: &Netns, s: &Scenario, host: &str, session_ms: u64) -> Process {
    let zk = format!(
        "{}:{}",
        ns.host_addr("zk"),
        s.stack.zk_port().expect("owned stack")
    );
    let mut cmd = ns.command(bin_path("replicator-core"));
    cmd.args(["--zk", &zk, "--root", &s.root, "--host-id", host])
        .args(["--task", &s.task])
        .args(["--zk-session-timeout-ms", &session_ms.to_string()])
        .env(
            "RUST_LOG",
            std::env::var("PARTITION_CORE_LOG").unwrap_or("info".into()),
        );
    Process::spawn_command("replicator-core", cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_cut_off_from_zookeeper_stops_then_rejoins_as_standby() {
    const SESSION_MS: u64 = 4000;
    let Some((ns, stack)) = partitioned_stack() else {
        return;
    };
    // Given the RUNNING Core `a` in the namespace, a STANDBY `b` on the host
    let s = Scenario::new(stack, "part_zk").await;
    let mut a = core_in_ns(&ns, &s, "a", SESSION_MS);
    a.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let mut b = s.core("b", SESSION_MS);
    b.wait_for_log("STANDBY", Duration::from_secs(30)).await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old_epoch = s.epoch().await;

    // When its link to ZooKeeper is cut for longer than the session timeout
    // Then it stops producing (its lease lapses) and `b` takes over
    let cut = async { ns.cut("zk") };
    let ((), took, host) = recover_from(&s, Duration::from_secs(60), cut).await;
    assert_eq!(host, "b", "the standby takes over");
    eprintln!(
        "zk partition: b produces {} ms after the cut (session {SESSION_MS} ms)",
        took.as_millis()
    );
    // and says why (it has had the time: b took over after its session expired)
    a.wait_for_log(
        "lease lost|writing context|session is over",
        Duration::from_secs(2),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2 * SESSION_MS)).await;

    // When the link comes back, `a` rejoins as STANDBY
    let mark = a.log_mark();
    ns.restore("zk");
    a.wait_for_log_after(mark, "STANDBY", Duration::from_secs(60))
        .await;
    let instances = s.instances().await;
    let states: Vec<_> = instances
        .iter()
        .map(|(_, i)| (i.host.as_str(), i.state))
        .collect();
    assert_eq!(
        states,
        [("b", InstanceState::Running), ("a", InstanceState::Standby)],
        "b RUNNING, a STANDBY after the partition"
    );

    // Then every row arrived exactly once, and nothing of a's epoch follows b's
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = writer.finish().await;
    let msgs = s
        .wait_messages_with_fences(n as usize, Duration::from_secs(60))
        .await;
    let figures = tally(&msgs, n);
    print_figures("zookeeper-partition", &[took], figures);
    let updates = msgs
        .iter()
        .filter(|m| !m.is_fence() && m.value_json()["type"] == "update")
        .count() as i64;
    let data: Vec<_> = msgs.iter().filter(|m| !m.is_fence()).cloned().collect();
    let mut problems = exactly_once(&data, n);
    problems.extend(counter_in_order(&data, updates));
    problems.extend(old_epoch_after_new(&msgs, old_epoch));
    assert!(
        problems.is_empty(),
        "{problems:#?}\n--- a ---\n{}\n--- b ---\n{}",
        a.tail(30),
        b.tail(30)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_cut_off_from_kafka_stalls_alerts_and_resumes() {
    const SESSION_MS: u64 = 4000;
    const CUT: Duration = Duration::from_secs(30);
    let Some((ns, stack)) = partitioned_stack() else {
        return;
    };
    // Given the RUNNING Core in the namespace, a Monitor and a writer
    let s = Scenario::single_core(stack, "part_kafka").await;
    let (hook, mut monitor) = monitor_with_hook(
        stack,
        &s.root,
        &[("--lag-ms", "600000"), ("--stalled-ms", "5000")],
        &[],
    )
    .await;
    let mut a = core_in_ns(&ns, &s, "a", SESSION_MS);
    a.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.of("stalled", AlertState::Firing).is_empty());

    // When its link to Kafka (only) is cut for 30 s
    let before = position(&s, &s.zk).await;
    let (fault_at, fault_ms) = (Instant::now(), now_ms());
    ns.cut("kafka");
    // Then the task stalls and the Monitor raises `stalled`
    let fired = hook
        .wait_rule("stalled", AlertState::Firing, fault_ms, CUT)
        .await;
    eprintln!(
        "kafka partition: stalled fired {} ms after the cut",
        fired.at_ms - fault_ms
    );
    let rows_in_cut = writer.written();
    tokio::time::sleep(CUT.saturating_sub(fault_at.elapsed())).await;
    // and the task stays with its RUNNING instance (ZooKeeper is reachable)
    let running = s.running_host(Duration::from_secs(5)).await;
    assert_eq!(running, "a");

    // When the link comes back, it resumes and the alert resolves
    let restored_at = Instant::now();
    let restored_ms = now_ms();
    ns.restore("kafka");
    let (took, _) = wait_recovered(
        &s,
        &s.zk,
        restored_at,
        restored_ms,
        before,
        Duration::from_secs(90),
    )
    .await;
    eprintln!(
        "kafka partition: produces again {} ms after the link is restored ({rows_in_cut} rows written when stalled fired)",
        took.as_millis()
    );
    hook.wait_rule(
        "stalled",
        AlertState::Resolved,
        restored_ms,
        Duration::from_secs(60),
    )
    .await;

    // Then every row arrived exactly once
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = writer.finish().await;
    let msgs = s.wait_messages(n as usize, Duration::from_secs(90)).await;
    let figures = tally(&msgs, n);
    print_figures("kafka-partition-30s", &[took], figures);
    let updates = msgs
        .iter()
        .filter(|m| m.value_json()["type"] == "update")
        .count() as i64;
    let mut problems = exactly_once(&msgs, n);
    problems.extend(counter_in_order(&msgs, updates));
    assert!(problems.is_empty(), "{problems:#?}\n{}", a.tail(40));
    a.stop().await;
    monitor.process.stop().await;
}

/// When the Core's own interface to ZooKeeper goes down, every connection
/// attempt fails at once (ENETUNREACH) and zookeeper-client 0.11.2 retries
/// in a loop that never ends once its reconnection deadline has passed (its
/// `biased` select never polls the deadline when the connect fails
/// synchronously, so `Deadline::elapsed` stays false and the backoff is
/// capped at the 0 ms left): the client never reports the session expired.
/// The Core's watchdog (`replicator_common::zk_watchdog`) ends the session
/// itself after a whole session timeout without a reply, drops the client
/// (its runtime and the spinning task with it) and opens a fresh session
/// once the interface is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_whose_interface_to_zookeeper_goes_down_ends_its_session() {
    const SESSION_MS: u64 = 4000;
    let Some((ns, stack)) = partitioned_stack() else {
        return;
    };
    let s = Scenario::new(stack, "part_if").await;
    let mut a = core_in_ns(&ns, &s, "a", SESSION_MS);
    a.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let writer = Writer::start(stack, &s.db, &s.table, 3, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // When the namespace's own interface towards ZooKeeper goes down
    ns.cut_local("zk");
    // Then the Core ends its session within a few session timeouts
    let cut_at = std::time::Instant::now();
    let line = a
        .wait_for_log(
            "no ZooKeeper reply for a whole session timeout",
            Duration::from_millis(3 * SESSION_MS + 2000),
        )
        .await;
    eprintln!(
        "session given up {} ms after the interface went down: {line}",
        cut_at.elapsed().as_millis()
    );

    // and when the interface comes back it runs the task again, exactly once
    ns.restore_local("zk");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = writer.finish().await;
    let msgs = s.wait_messages(n as usize, Duration::from_secs(60)).await;
    let problems = exactly_once(&msgs, n);
    assert!(problems.is_empty(), "{problems:#?}\n{}", a.tail(30));
    a.stop().await;
}
