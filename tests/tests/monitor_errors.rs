//! Monitor rules about broken tasks, caused for real: `config_invalid`
//! (garbage written into a task node with a plain ZooKeeper client),
//! `task_error` (the replication user loses its privileges), `stalled`
//! (a frozen Core while the source keeps writing) and `task_retrying` (a
//! task whose broker is unreachable, also as the Server and `replicatorctl`
//! show it).

mod monitor_support;
mod server_support;
mod support;

use monitor_support::{monitor_with_hook, SESSION_MS};
use mysql_async::prelude::Queryable;
use replicator_common::nodes::{AlertState, Control, Desired, InstanceState, Retrying};
use replicator_common::now_ms;
use replicator_tests::{shared_stack, unique_name};
use serde_json::{json, Value};
use server_support::{ctl, ServerProc};
use std::time::Duration;
use support::{Scenario, Writer};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn config_invalid_fires_for_garbage_and_resolves_when_fixed() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "mon_cfg").await;
    // paused, so that no Core is needed and task_not_running stays quiet
    let control = s.layout.control(&s.task_ref());
    let paused = Control {
        desired: Desired::Paused,
        switchover: 0,
        accept_gap: 0,
        snapshot: None,
    };
    s.zk.create_if_absent(&control, &serde_json::to_vec(&paused).unwrap())
        .await
        .unwrap();
    let (hook, mut monitor) = monitor_with_hook(stack, &s.root, &[], &[]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(hook.all().is_empty(), "{:#?}", hook.all());

    // When someone writes garbage into the task node by hand
    let raw = stack.zk_client().await;
    let node = s.layout.task(&s.task_ref());
    let t0 = now_ms();
    raw.set_data(&node, b"{\"name\": \"oops\", garbage", None)
        .await
        .unwrap();
    // Then config_invalid fires, naming the problem
    let fired = hook
        .wait_rule_timed(
            "config_invalid",
            AlertState::Firing,
            t0,
            WAIT,
            "setData to notification",
        )
        .await;
    assert!(
        fired.alert.message.contains("not valid JSON"),
        "{}",
        fired.alert.message
    );
    assert_eq!(monitor.alerts().await.len(), 1);
    // and a config that parses but names a field that does not exist is invalid too
    let mut cfg = s.config();
    cfg["colour"] = json!("blue");
    raw.set_data(&node, cfg.to_string().as_bytes(), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    // When the config is fixed, it resolves
    let t1 = now_ms();
    raw.set_data(&node, s.config().to_string().as_bytes(), None)
        .await
        .unwrap();
    let resolved = hook
        .wait_rule_timed(
            "config_invalid",
            AlertState::Resolved,
            t1,
            WAIT,
            "fix to resolved notification",
        )
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);
    assert_eq!(hook.of("config_invalid", AlertState::Firing).len(), 1);
    hook.assert_no_duplicates();
    // the resolved alert lingers in /alerts as resolved, then goes
    let path = s.layout.alert(&fired.alert.id).unwrap();
    replicator_tests::wait_until(WAIT, "the resolved alert node to go", || async {
        s.zk.get(&path).await.unwrap().is_none()
    })
    .await;
    monitor.process.stop().await;
}

async fn kill_connections_of(stack: &replicator_tests::Stack, user: &str) {
    let ids: Vec<u64> = stack
        .query(&format!(
            "SELECT id FROM information_schema.processlist WHERE user = '{user}'"
        ))
        .await;
    let mut conn = stack.conn().await;
    for id in ids {
        let _ = conn.query_drop(format!("KILL {id}")).await;
    }
    let _ = conn.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_error_fires_when_the_replication_user_loses_its_privileges() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "mon_err").await;
    // Given a task replicating as a user of its own
    let user = unique_name("u");
    stack
        .sql(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"
        ))
        .await;
    let mut cfg = s.config();
    cfg["redundancy"] = json!(1);
    cfg["source"]["user"] = json!(user);
    cfg["source"]["password"] = json!("pw");
    s.put_config(cfg.clone()).await;
    let (hook, mut monitor) = monitor_with_hook(stack, &s.root, &[], &[]).await;
    let mut h1 = s.running_core("h1", SESSION_MS, WAIT).await;

    // When its privileges are revoked and its connections killed
    let t0 = now_ms();
    stack
        .sql(&format!(
            "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{user}'@'%'"
        ))
        .await;
    kill_connections_of(stack, &user).await;
    // Then the Core reports a definite error and task_error fires
    let fired = hook
        .wait_rule_timed(
            "task_error",
            AlertState::Firing,
            t0,
            WAIT,
            "REVOKE + KILL to notification",
        )
        .await;
    // denied at connect, or a privilege missing at the preflight
    let msg = fired.alert.message.to_lowercase();
    assert!(
        msg.contains("denied") || msg.contains("lacks"),
        "{}",
        fired.alert.message
    );

    // When the privileges are back and the config is touched (restarts the task), it resolves
    stack
        .sql(&format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"))
        .await;
    let t1 = now_ms();
    s.put_config(cfg).await;
    let resolved = hook
        .wait_rule("task_error", AlertState::Resolved, t1, WAIT)
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);
    hook.assert_no_duplicates();
    monitor.process.stop().await;
    h1.stop().await;
    stack.sql(&format!("DROP USER '{user}'@'%'")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_fires_while_the_core_is_frozen_and_the_source_writes() {
    let stack = shared_stack!();
    let s = Scenario::single_core(stack, "mon_stall").await;
    // lag would fire too: keep it out of the way
    let (hook, mut monitor) =
        monitor_with_hook(stack, &s.root, &[("--lag-ms", "600000")], &[]).await;
    // a session long enough to outlive the freeze
    let mut h1 = s.running_core("h1", 30_000, WAIT).await;
    let writer = Writer::start(stack, &s.db, &s.table, 2, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(hook.of("stalled", AlertState::Firing).is_empty());

    // When the Core freezes while the source keeps writing
    let t0 = now_ms();
    h1.pause();
    hook.wait_rule_timed(
        "stalled",
        AlertState::Firing,
        t0,
        WAIT,
        "SIGSTOP to notification, threshold 2000 ms",
    )
    .await;

    // When it resumes, the context moves again and the alert resolves
    let t1 = now_ms();
    h1.resume();
    hook.wait_rule_timed(
        "stalled",
        AlertState::Resolved,
        t1,
        WAIT,
        "SIGCONT to resolved notification",
    )
    .await;
    let n = writer.finish().await;
    s.wait_messages(n as usize, Duration::from_secs(30)).await;
    hook.assert_no_duplicates();
    monitor.process.stop().await;
    h1.stop().await;
}

/// The retrying streak of the task's RUNNING instance, if it has one.
async fn streak(s: &Scenario) -> Option<Retrying> {
    s.instances()
        .await
        .into_iter()
        .find(|(_, i)| i.state == InstanceState::Running)
        .and_then(|(_, i)| i.retrying)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_retrying_fires_while_the_broker_is_unreachable_and_resolves_when_fixed() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "mon_retry").await;
    // Given a task whose sink names a port where nothing listens
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_broker = format!("127.0.0.1:{dead}");
    let mut good = s.config();
    good["redundancy"] = json!(1);
    let mut bad = good.clone();
    bad["sink"]["brokers"] = json!(dead_broker);
    s.put_config(bad).await;
    // stalled would fire too when the shared source moves: keep it out of the way
    let (hook, mut monitor) = monitor_with_hook(
        stack,
        &s.root,
        &[("--stalled-ms", "600000")],
        &["--retrying-threshold-ms", "2000"],
    )
    .await;
    let mut server = ServerProc::start(stack, &s.root, None, &[], &[]).await;

    // When a Core runs it
    let t0 = now_ms();
    let mut h1 = s.core("h1", SESSION_MS);

    // Then every run fails transiently and the RUNNING instance node counts them
    let first = replicator_tests::wait_for(WAIT, "a retrying streak of 2 attempts", || async {
        streak(&s).await.filter(|r| r.attempts >= 2)
    })
    .await;
    // "starting the Kafka producer: connecting to Kafka at <broker>: Connection refused"
    assert!(
        first.error.contains(&dead_broker) && first.error.contains("connecting to Kafka"),
        "{first:?}"
    );
    assert!(first.since_ms >= t0, "{first:?}");
    // and task_retrying fires once the streak is 2 s old, with the error
    let fired = hook
        .wait_rule_timed(
            "task_retrying",
            AlertState::Firing,
            t0,
            WAIT,
            "Core start to notification, threshold 2000 ms",
        )
        .await;
    let msg = &fired.alert.message;
    assert!(
        msg.starts_with(&format!("task {} keeps failing: ", s.task)) && msg.contains(&dead_broker),
        "{msg}"
    );
    assert!(fired.alert.since_ms - first.since_ms >= 2000, "{fired:?}");

    // and the Server and replicatorctl show it as retrying, with the error
    let (code, json_out, err) = ctl(&server, &["--json", "task", "show", &s.task], &[]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["state"], "retrying", "{v:#}");
    assert!(
        v["instances"][0]["retrying"]["attempts"].as_u64().unwrap() >= 2,
        "{v:#}"
    );
    assert!(v["instances"][0]["error"].is_null(), "{v:#}");
    let (code, list, err) = ctl(&server, &["task", "list"], &[]);
    assert_eq!(code, 0, "{err}");
    eprintln!("task list:\n{list}");
    assert!(list.lines().next().unwrap().ends_with("PROBLEM"), "{list}");
    let row = list.lines().find(|l| l.starts_with(&s.task)).expect(&list);
    assert!(row.contains(" retrying "), "{row}");
    assert!(
        row.contains("retrying for ") && row.contains(&dead_broker),
        "{row}"
    );
    let (code, show, err) = ctl(&server, &["task", "show", &s.task], &[]);
    assert_eq!(code, 0, "{err}");
    eprintln!("task show:\n{show}");
    let state = show.lines().find(|l| l.starts_with("State:")).expect(&show);
    assert!(state.ends_with(" retrying"), "{show}");
    let inst = show.lines().find(|l| l.starts_with("h1-")).expect(&show);
    assert!(
        inst.contains("retrying for ") && inst.contains(&dead_broker),
        "{inst}"
    );

    // When the config names the real broker and a row is written
    let t1 = now_ms();
    s.put_config(good).await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.`{}` (id, v, txn) VALUES (1, 1, 1)",
            s.db, s.table
        ))
        .await;
    // Then the row arrives, the streak is cleared and the alert resolves
    s.wait_messages(1, Duration::from_secs(30)).await;
    replicator_tests::wait_until(WAIT, "the streak to be cleared", || async {
        streak(&s).await.is_none()
    })
    .await;
    let resolved = hook
        .wait_rule_timed(
            "task_retrying",
            AlertState::Resolved,
            t1,
            WAIT,
            "fixed config to resolved notification",
        )
        .await;
    assert_eq!(resolved.alert.id, fired.alert.id);
    let (_, list, _) = ctl(&server, &["task", "list"], &[]);
    let row = list.lines().find(|l| l.starts_with(&s.task)).expect(&list);
    assert!(row.contains(" running ") && row.ends_with(" -"), "{list}");
    assert_eq!(hook.of("task_retrying", AlertState::Firing).len(), 1);
    hook.assert_no_duplicates();
    monitor.process.stop().await;
    h1.stop().await;
    server.process.stop().await;
}
