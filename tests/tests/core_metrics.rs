//! The Core's `/metrics` and `/healthz` on `--metrics-addr`: the task's
//! families appear once it runs, the lag metric has the one name every
//! process uses, and an unknown path is a 404.

mod support;

use replicator_tests::shared_stack;
use std::time::Duration;
use support::Scenario;

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent.get(url).call().expect("the metrics server answers");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

#[tokio::test]
async fn core_serves_task_metrics_and_health() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "metrics").await;
    let args = [
        "--task",
        s.task.as_str(),
        "--zk-session-timeout-ms",
        "4000",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let mut core = stack.core(&s.root, "m1", &args, &[]);
    let line = core
        .wait_for_log("metrics listening", Duration::from_secs(20))
        .await;
    let addr = line
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    // (start "current": rows count from where the stream opened)
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;

    // Given three rows replicated
    for id in 1..=3 {
        stack
            .sql(&format!(
                "INSERT INTO `{}`.t (id, v, txn) VALUES ({id}, 1, {id})",
                s.db
            ))
            .await;
    }
    s.wait_messages(3, Duration::from_secs(20)).await;

    // Then /metrics counts them (the context commit lands within a tick)
    let task = &s.task;
    let want_events = format!("replicator_core_task_events_total{{task=\"{task}\"}} 3");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = get(&format!("http://{addr}/metrics"));
        assert_eq!(status, 200, "{text}");
        if text.contains(&want_events) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains(&want_events), "{text}");
    assert!(
        text.contains(&format!(
            "replicator_core_task_running{{task=\"{task}\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("replicator_task_lag_seconds{{task=\"{task}\"}} ")),
        "{text}"
    );
    assert!(
        text.contains("# TYPE replicator_task_lag_seconds gauge"),
        "{text}"
    );
    assert_eq!(get(&format!("http://{addr}/healthz")), (200, "ok\n".into()));
    assert_eq!(get(&format!("http://{addr}/nothing")).0, 404);

    // And SIGTERM ends the process, metrics server included
    let status = core.stop().await;
    assert!(status.success(), "{status:?}\n{}", core.tail(30));
}
