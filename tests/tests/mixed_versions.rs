//! Rolling upgrades: znodes written by a newer version, with fields this
//! version does not know, in the context, control, instance and core nodes.
//! Every process keeps working: the Core resumes from such a context and
//! replicates every row once, the Server shows the newer instance and core
//! (not `UNKNOWN`), the Monitor raises nothing for them. Only a task config
//! keeps rejecting unknown fields (tested with the config).

mod monitor_support;
mod server_support;
mod support;

use monitor_support::start_monitor;
use replicator_tests::shared_stack;
use serde_json::{json, Value};
use server_support::ServerProc;
use std::time::Duration;
use support::{exactly_once, Scenario};
use zookeeper_client::CreateMode;

async fn insert(s: &Scenario, ids: std::ops::RangeInclusive<i64>) {
    for id in ids {
        s.stack
            .sql(&format!(
                "INSERT INTO `{}`.`{}` (id, v, txn, note) VALUES ({id}, 0, {id}, 'row {id}')",
                s.db, s.table
            ))
            .await;
    }
}

async fn rewrite(s: &Scenario, path: &str, f: impl FnOnce(&mut Value)) {
    let (data, version) = s.zk.get(path).await.unwrap().expect("node exists");
    let mut v: Value = if data.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&data).unwrap()
    };
    f(&mut v);
    s.zk.client()
        .set_data(path, v.to_string().as_bytes(), Some(version))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_of_a_newer_version_keep_every_process_working() {
    let stack = shared_stack!();
    let s = Scenario::new(stack, "mixed").await;
    let task = s.task_ref();
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    insert(&s, 1..=3).await;
    s.wait_messages(3, Duration::from_secs(30)).await;
    core.stop().await;

    // A newer version wrote the context and control nodes.
    rewrite(&s, &s.layout.context(&task), |v| {
        v["format_version"] = json!(2);
        v["resume_token"] = json!({"table": "x.y", "last_key": [7]});
    })
    .await;
    rewrite(&s, &s.layout.control(&task), |v| {
        v["maintenance_window"] = json!("sun 02:00");
    })
    .await;

    // This version resumes from them.
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    s.running_host(Duration::from_secs(10)).await;

    // A newer Core joins as a standby and announces itself.
    let now = replicator_common::now_ms();
    let prefix = format!("{}/newer-", s.layout.instances(&task));
    let newer = json!({"host": "newer", "pid": 42, "state": "STANDBY", "since_ms": now,
                       "zone": "eu-1", "build": {"version": "9.9.9"}});
    s.zk.client()
        .create(
            &prefix,
            newer.to_string().as_bytes(),
            &s.zk.options(CreateMode::EphemeralSequential),
        )
        .await
        .unwrap();
    let core_node = json!({"host": "newer", "pid": 42, "version": "9.9.9", "groups": [],
                           "tasks": [], "load": 0, "heartbeat_ms": now, "features": ["snapshots"]});
    s.zk.ensure_path(&s.layout.cores()).await.unwrap();
    s.zk.client()
        .create(
            &s.layout.core("newer").unwrap(),
            core_node.to_string().as_bytes(),
            &s.zk.options(CreateMode::Ephemeral),
        )
        .await
        .unwrap();

    insert(&s, 4..=6).await;
    let msgs = s.wait_messages(6, Duration::from_secs(30)).await;
    let problems = exactly_once(&msgs, 6);
    assert!(problems.is_empty(), "{problems:#?}\n{}", core.tail(30));
    assert!(
        core.log_lines_matching("ERROR").is_empty(),
        "{}",
        core.tail(30)
    );

    // The Server reads every node.
    let server = ServerProc::start(stack, &s.root, None, &[], &[]).await;
    let a = server.call("GET", &format!("/api/v1/tasks/{}", s.task), None);
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "running", "{}", a.text);
    let states: Vec<&str> = a.body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["RUNNING", "STANDBY"], "{}", a.text);
    assert!(
        a.body["progress"]["events"].as_u64().unwrap() >= 6,
        "{}",
        a.text
    );
    let cores = server.call("GET", "/api/v1/cores", None);
    assert!(cores.text.contains("newer"), "{}", cores.text);

    // The Monitor raises nothing about them.
    let monitor = start_monitor(stack, &s.root, "m1", &[], &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = monitor.alerts().await;
    assert!(alerts.is_empty(), "{alerts:#?}");
    core.stop().await;
}
