//! Bad input and definite errors against the real stack: a purged binlog
//! position, a wrong password, a clashing server_id, a task node edited into
//! garbage; each is reported in the instance node (and the Core keeps
//! running, ready for a fixed config). Also: starting from a MariaDB GTID.

mod support;

use replicator_tests::shared_stack;
use std::time::{Duration, Instant};
use support::{exactly_once, Scenario};

async fn instance_error(s: &Scenario, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(e) = s.instances().await.into_iter().find_map(|(_, i)| i.error) {
            return e;
        }
        assert!(Instant::now() < deadline, "no instance reported an error");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definite_errors_are_reported_in_the_instance_node() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "errs").await;
    let mut core = s.core("h1", 1500);

    // a binlog file that does not exist (purged)
    let mut cfg = s.config();
    cfg["source"]["start"] = serde_json::json!({"file": "mysql-bin.999999", "pos": 4});
    s.put_config(cfg).await;
    let e = instance_error(&s, Duration::from_secs(20)).await;
    assert!(
        e.contains("1236") || e.contains("binlog position is gone"),
        "{e}"
    );
    assert_eq!(
        core.log_lines_matching("task stopped").len(),
        1,
        "logged once:\n{}",
        core.tail(20)
    );

    // a wrong password: access denied, and the password is not shown
    let mut cfg = s.config();
    cfg["source"]["password"] = serde_json::json!("wrong-secret-xyz");
    s.put_config(cfg).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = instance_error(&s, Duration::from_secs(20)).await;
        if e.contains("ccess denied") || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(e.contains("ccess denied"), "{e}");
    assert!(!e.contains("wrong-secret-xyz") && !core.log().contains("wrong-secret-xyz"));

    // the source's own server_id: preflight says so
    let mut cfg = s.config();
    cfg["source"]["server_id"] = serde_json::json!(1);
    s.put_config(cfg).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = instance_error(&s, Duration::from_secs(20)).await;
        if e.contains("server_id") || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(e.contains("server_id 1"), "{e}");

    // garbage edited into the task node by hand
    let path = s.layout.task(&s.task_ref());
    s.zk.client()
        .set_data(&path, b"{\"name\": 42, \"colour\": 1}", None)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = instance_error(&s, Duration::from_secs(20)).await;
        if e.contains("invalid task config") || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(e.contains("colour") && e.contains("name"), "{e}");

    // a good config again, and the context of the purged position reset (the
    // context wins over `start`, so an operator deletes it to start over)
    let mark = core.log_mark();
    s.zk.delete_recursive(&s.layout.context(&s.task_ref()))
        .await
        .unwrap();
    s.put_config(s.config()).await;
    core.wait_for_log_after(mark, "replication starts", Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack
        .sql(&format!("INSERT INTO `{}`.t VALUES (1, 0, 0, 'ok')", s.db))
        .await;
    let msgs = s.wait_messages(1, Duration::from_secs(20)).await;
    assert!(exactly_once(&msgs, 1).is_empty());
    assert!(s.instances().await.iter().all(|(_, i)| i.error.is_none()));
    assert!(core.is_running());
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_from_a_mariadb_gtid() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "gtid").await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.t VALUES (1, 0, 0, 'before')",
            s.db
        ))
        .await;
    let gtid = stack.gtid_position().await;
    let mut cfg = s.config();
    cfg["source"]["start"] = serde_json::json!({ "gtid": gtid });
    cfg["source"]["snapshot"] = serde_json::json!("never");
    s.put_config(cfg).await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.t VALUES (2, 0, 0, 'after')",
            s.db
        ))
        .await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let msgs = s.wait_messages(1, Duration::from_secs(20)).await;
    let ids: Vec<i64> = msgs
        .iter()
        .map(|m| m.value_json())
        .filter(|v| v["type"] == "insert")
        .map(|v| v["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2], "only what follows the GTID");
    // the context records file/pos once the first transaction committed
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ctx = s.context().await.unwrap();
    assert!(ctx["file"].as_str().is_some_and(|f| !f.is_empty()), "{ctx}");
    assert!(ctx["gtid"].as_str().is_some(), "{ctx}");
    core.stop().await;
}
