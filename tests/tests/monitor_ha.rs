//! Monitor HA: two monitors, the lowest sequence leads and alone notifies;
//! the leader is killed while an alert is active; the new leader adopts it
//! from `/alerts` without notifying it again, and notifies its resolution
//! once. Also the HTTP endpoints of leader and follower, and the Kafka alert
//! topic (created by the monitor).

mod monitor_support;
mod support;

use monitor_support::{http_get, record_latency, start_monitor, WebhookReceiver, SESSION_MS};
use replicator_common::nodes::{Alert, AlertState};
use replicator_common::now_ms;
use replicator_tests::{shared_stack, unique_name};
use serde_json::json;
use std::time::Duration;
use support::Scenario;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_adopts_active_alerts_without_notifying_twice() {
    let stack = shared_stack!();
    // Given a task with no Core and two monitors, m1 first (the leader)
    let s = Scenario::new(stack, "mon_ha").await;
    let mut cfg = s.config();
    cfg["redundancy"] = json!(1);
    s.put_config(cfg).await;
    let hook = WebhookReceiver::start().await;
    let topic = unique_name("alerts");
    let channels = [
        "--webhook",
        &hook.url(),
        "--alert-topic",
        &topic,
        "--brokers",
        stack.kafka_bootstrap(),
    ];
    let mut m1 = start_monitor(stack, &s.root, "m1", &[], &channels).await;
    m1.process.wait_for_log("monitor LEADER", WAIT).await;
    let mut m2 = start_monitor(stack, &s.root, "m2", &[], &channels).await;
    m2.process.wait_for_log("monitor follower", WAIT).await;

    // Then task_not_running fires once, from the leader
    let fired = hook
        .wait_rule("task_not_running", AlertState::Firing, 0, WAIT)
        .await;
    let id = fired.alert.id.clone();
    // both monitors show it; only the leader says it leads
    replicator_tests::wait_until(WAIT, "the follower to show the alert", || async {
        m2.alerts().await.iter().any(|a| a.id == id)
    })
    .await;
    assert!(m1.alerts().await.iter().any(|a| a.id == id));
    let metrics = m1.metrics().await;
    assert!(metrics.contains("replicator_monitor_leader 1"), "{metrics}");
    assert!(
        metrics.contains("replicator_alerts_firing{rule=\"task_not_running\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "replicator_task_state{{task=\"{}\",state=\"not_running\"}} 1",
            s.task
        )),
        "{metrics}"
    );
    assert!(m2.metrics().await.contains("replicator_monitor_leader 0"));
    let (status, body) = http_get(&m1.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");

    // When the leader is killed while the alert is active
    let mark = m2.process.log_mark();
    let t0 = now_ms();
    m1.process.kill();
    // Then m2 leads after the session timeout and adopts the alert
    m2.process
        .wait_for_log_after(mark, "adopted the active alerts", WAIT)
        .await;
    record_latency(
        "monitor_failover",
        "SIGKILL of the leader monitor to the new leader adopting, session 1500 ms",
        now_ms() - t0,
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hook.of("task_not_running", AlertState::Firing).len(),
        1,
        "the new leader must not notify an adopted alert again: {:#?}",
        hook.all()
    );
    assert!(m2.metrics().await.contains("replicator_monitor_leader 1"));

    // When a Core runs the task, the new leader resolves it, once
    let t1 = now_ms();
    let mut h1 = s.core("h1", SESSION_MS);
    let resolved = hook
        .wait_rule("task_not_running", AlertState::Resolved, t1, WAIT)
        .await;
    assert_eq!(resolved.alert.id, id);
    // the Server sees it resolved in /alerts for a while
    let (data, _) =
        s.zk.get(&s.layout.alert(&id).unwrap())
            .await
            .unwrap()
            .expect("resolved alert lingers");
    let stored: Alert = serde_json::from_slice(&data).unwrap();
    assert_eq!(stored.state, AlertState::Resolved);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mine: Vec<_> = hook
        .all()
        .into_iter()
        .filter(|r| r.alert.id == id)
        .collect();
    assert_eq!(mine.len(), 2, "one firing, one resolved: {mine:#?}");
    hook.assert_no_duplicates();

    // And the Kafka alert topic got the same two notifications
    let msgs = stack.read_topic_until(&topic, 2, WAIT).await;
    let states: Vec<String> = msgs
        .iter()
        .map(|m| m.value_json())
        .filter(|v| v["id"] == id.as_str())
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["firing", "resolved"], "{msgs:#?}");
    assert_eq!(msgs[0].key.as_deref(), Some(id.as_bytes()));

    m2.process.stop().await;
    h1.stop().await;
}
