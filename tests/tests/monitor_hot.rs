//! Monitor rules caused for real on hot tasks with real Cores:
//! `no_standby`, `failover`, `core_lost` and `task_not_running` fire once
//! each, reach the webhook, and resolve.

mod monitor_support;
mod support;

use monitor_support::{monitor_with_hook, record_latency, SESSION_MS};
use replicator_common::nodes::{AlertState, Control, Desired};
use replicator_common::now_ms;
use replicator_tests::shared_stack;
use serde_json::json;
use std::time::Duration;
use support::Scenario;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_standby_failover_and_core_lost_fire_once_and_resolve() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "mon_hot").await;
    let (hook, mut monitor) = monitor_with_hook(stack, &s.root, &[], &[]).await;

    // Given one Core on a task whose redundancy is 2
    let t0 = now_ms();
    let mut h1 = s.core("h1", SESSION_MS);
    s.running_host(WAIT).await;
    // Then no_standby fires (after its 1 s grace)
    let fired = hook
        .wait_rule_timed(
            "no_standby",
            AlertState::Firing,
            t0,
            WAIT,
            "core start to notification, grace 1000 ms",
        )
        .await;
    assert_eq!(fired.alert.task.as_deref(), Some(s.task.as_str()));

    // When a second Core joins, it resolves
    let t1 = now_ms();
    let mut h2 = s.core("h2", SESSION_MS);
    let resolved = hook
        .wait_rule("no_standby", AlertState::Resolved, t1, WAIT)
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);

    // When the task is switched over, failover fires (informational) and resolves after its hold
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t2 = now_ms();
    s.switchover().await;
    let f1 = hook
        .wait_rule_timed(
            "failover",
            AlertState::Firing,
            t2,
            WAIT,
            "switchover to notification",
        )
        .await;
    assert_eq!(f1.alert.severity, replicator_common::nodes::Severity::Info);
    assert!(f1.alert.message.contains("h2"), "{}", f1.alert.message);
    hook.wait_rule("failover", AlertState::Resolved, t2, WAIT)
        .await;
    assert_eq!(s.running_host(WAIT).await, "h2");

    // When the RUNNING Core is killed, core_lost and failover fire
    let t3 = now_ms();
    h2.kill();
    let lost = hook
        .wait("core_lost h2", t3, WAIT, |a| {
            a.rule == "core_lost"
                && a.state == AlertState::Firing
                && a.core.as_deref() == Some("h2")
        })
        .await;
    record_latency(
        "core_lost",
        "SIGKILL to notification, session 1500 ms",
        lost.at_ms - t3,
    );
    let f2 = hook
        .wait_rule_timed(
            "failover",
            AlertState::Firing,
            t3,
            WAIT,
            "SIGKILL of the leader to notification, session 1500 ms",
        )
        .await;
    assert_ne!(f2.alert.since_ms, f1.alert.since_ms);
    hook.wait_rule("no_standby", AlertState::Firing, t3, WAIT)
        .await;

    // And when it comes back, core_lost and no_standby resolve
    let t4 = now_ms();
    let mut h2 = s.core("h2", SESSION_MS);
    let back = hook
        .wait_rule("core_lost", AlertState::Resolved, t4, WAIT)
        .await;
    assert_eq!(back.alert.id, lost.alert.id);
    hook.wait_rule("no_standby", AlertState::Resolved, t4, WAIT)
        .await;
    hook.wait_rule("failover", AlertState::Resolved, t3, WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Then every alert was notified once, and nothing is left active
    hook.assert_no_duplicates();
    assert!(
        monitor.alerts().await.is_empty(),
        "{:?}",
        monitor.alerts().await
    );
    monitor.process.stop().await;
    h1.stop().await;
    h2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_not_running_fires_after_its_grace_and_spares_paused_tasks() {
    let stack = shared_stack!();
    let s = Scenario::single_core(stack, "mon_down").await;
    let (hook, mut monitor) = monitor_with_hook(stack, &s.root, &[], &[]).await;
    let mut h1 = s.core("h1", SESSION_MS);
    s.running_host(WAIT).await;
    h1.wait_for_log("replication starts", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // When its only Core stops, task_not_running fires after the 1 s grace
    let t0 = now_ms();
    h1.stop().await;
    let fired = hook
        .wait_rule_timed(
            "task_not_running",
            AlertState::Firing,
            t0,
            WAIT,
            "SIGTERM to notification, grace 1000 ms",
        )
        .await;
    assert_eq!(
        fired.alert.severity,
        replicator_common::nodes::Severity::Critical
    );
    // the stored alert is what the Server lists
    let stored = s.zk.children(&s.layout.alerts()).await.unwrap();
    assert!(stored.contains(&fired.alert.id), "{stored:?}");

    // When a Core runs it again, it resolves
    let t1 = now_ms();
    let mut h1 = s.core("h1", SESSION_MS);
    let resolved = hook
        .wait_rule_timed(
            "task_not_running",
            AlertState::Resolved,
            t1,
            WAIT,
            "restart to resolved notification",
        )
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);

    // When the task is paused and its Core stops, nothing fires
    let control = s.layout.control(&s.task_ref());
    let paused = Control {
        desired: Desired::Paused,
        switchover: 0,
        accept_gap: 0,
        snapshot: None,
    };
    s.zk.client()
        .set_data(&control, &serde_json::to_vec(&paused).unwrap(), None)
        .await
        .unwrap();
    h1.wait_for_log("paused", WAIT).await;
    let t2 = now_ms();
    h1.stop().await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        hook.of("task_not_running", AlertState::Firing)
            .iter()
            .all(|r| r.at_ms < t2),
        "a paused task must not raise task_not_running: {:#?}",
        hook.all()
    );
    hook.assert_no_duplicates();
    monitor.process.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_task_without_a_core_is_not_running_too() {
    let stack = shared_stack!();
    // Given a cold task of group g, claimed by the only Core of the group
    let s = Scenario::new(stack, "mon_cold").await;
    let group = "g1";
    let cold = replicator_common::paths::TaskRef::cold(group, &s.task).unwrap();
    // (the scenario's hot task node is not wanted here)
    s.zk.delete_recursive(&s.layout.task(&s.task_ref()))
        .await
        .unwrap();
    let mut cfg = s.config();
    cfg["group"] = json!(group);
    let path = s.layout.task(&cold);
    s.zk.ensure_path(&path).await.unwrap();
    s.zk.client()
        .set_data(&path, cfg.to_string().as_bytes(), None)
        .await
        .unwrap();
    let (hook, mut monitor) = monitor_with_hook(stack, &s.root, &[], &[]).await;
    let session = SESSION_MS.to_string();
    let args = [
        "--group",
        group,
        "--scan-interval-ms",
        "200",
        "--zk-session-timeout-ms",
        &session,
    ];
    let core = |host: &str| stack.core(&s.root, host, &args, &[]);
    let mut c1 = core("c1");
    c1.wait_for_log("replication starts", WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // When the Core dies, task_not_running fires for group/task (no no_standby: cold tasks have none)
    let t0 = now_ms();
    c1.kill();
    let fired = hook
        .wait_rule_timed(
            "task_not_running",
            AlertState::Firing,
            t0,
            WAIT,
            "SIGKILL of a cold task's core to notification, session 1500 ms + grace 1000 ms",
        )
        .await;
    assert_eq!(fired.alert.task.as_deref(), Some(cold.to_string().as_str()));

    // When another Core of the group claims it, it resolves
    let mut c2 = core("c2");
    let resolved = hook
        .wait_rule("task_not_running", AlertState::Resolved, t0, WAIT)
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);
    assert!(hook.of("no_standby", AlertState::Firing).is_empty());
    hook.assert_no_duplicates();
    monitor.process.stop().await;
    c2.stop().await;
}
