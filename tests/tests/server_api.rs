//! The Server's API against real Cores: a hot task created over HTTP is
//! replicated by two Cores; its include filter changes live; pause holds
//! rows back and resume delivers them exactly once; switchover moves the
//! RUNNING instance; delete stops every instance and removes the znodes.

mod server_support;

use replicator_tests::{shared_stack, unique_root, wait_for, Message, Process, Stack};
use serde_json::{json, Value};
use server_support::{table_regex, task_config, task_name, Answer, ServerProc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn core(stack: &Stack, root: &str, task: &str, host: &str) -> Process {
    let args = ["--task", task, "--zk-session-timeout-ms", "3000"];
    stack.core(root, host, &args, &[])
}

async fn insert(stack: &Stack, db: &str, table: &str, ids: std::ops::RangeInclusive<i64>) {
    let values: Vec<String> = ids.map(|i| format!("({i}, {})", i * 10)).collect();
    stack
        .sql(&format!(
            "INSERT INTO `{db}`.`{table}` (id, v) VALUES {}",
            values.join(",")
        ))
        .await;
}

/// Inserted ids in a topic and how often each arrived.
fn inserted(messages: &[Message]) -> BTreeMap<i64, usize> {
    let mut seen = BTreeMap::new();
    for m in messages {
        let v = m.value_json();
        if v["type"] == "insert" {
            *seen
                .entry(v["after"]["id"].as_i64().expect("id"))
                .or_default() += 1;
        }
    }
    seen
}

fn exactly(ids: std::ops::RangeInclusive<i64>) -> BTreeMap<i64, usize> {
    ids.map(|i| (i, 1)).collect()
}

/// Polls `GET /tasks/{name}` until `ok` holds for its answer.
async fn status_until(
    server: &ServerProc,
    name: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/tasks/{name}");
    wait_for(WAIT, what, || async {
        let a = server.call("GET", &path, None);
        (a.status == 200 && ok(&a.body)).then_some(a.body)
    })
    .await
}

fn running_host(status: &Value) -> Option<String> {
    status["instances"]
        .as_array()?
        .iter()
        .find(|i| i["state"] == "RUNNING")
        .and_then(|i| i["host"].as_str().map(str::to_string))
}

fn ok(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_config_pause_resume_switchover_and_delete_through_the_api() {
    let stack = shared_stack!();
    let root = unique_root();
    let server = ServerProc::start(stack, &root, None, &[], &[]).await;
    let db = stack.create_database("api").await;
    for t in ["a", "b"] {
        stack
            .sql(&format!(
                "CREATE TABLE `{db}`.`{t}` (id BIGINT PRIMARY KEY, v INT NOT NULL)"
            ))
            .await;
    }
    let (topic_a, topic_b) = (format!("{db}.a"), format!("{db}.b"));
    let name = task_name("api");

    // Given a hot task created through the API, replicating table a
    let mut cfg = task_config(stack, &name, &[table_regex(&db, "a")]);
    ok(&server.call_json("POST", "/api/v1/tasks", &cfg), 201);
    // and two Cores serving it
    let mut h1 = core(stack, &root, &name, "h1");
    h1.wait_for_log("replication starts", WAIT).await;
    let mut h2 = core(stack, &root, &name, "h2");
    h2.wait_for_log("STANDBY", WAIT).await;
    let status = status_until(&server, &name, "h1 RUNNING and h2 STANDBY", |s| {
        s["state"] == "running"
            && running_host(s).as_deref() == Some("h1")
            && s["instances"]
                .as_array()
                .is_some_and(|i| i.len() == 2 && i[1]["state"] == "STANDBY" && i[1]["host"] == "h2")
    })
    .await;
    assert_eq!(status["desired"], "running");
    assert!(status["instances"][0]["pid"].as_u64().is_some());

    // When rows go into both tables
    insert(stack, &db, "a", 1..=5).await;
    insert(stack, &db, "b", 1..=5).await;
    // Then only a's arrive
    let msgs = stack.read_topic_until(&topic_a, 5, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(1..=5));
    let status = status_until(&server, &name, "progress with events", |s| {
        s["progress"]["events"].as_u64().is_some_and(|e| e >= 5)
    })
    .await;
    assert!(status["progress"]["lag_ms"].as_i64().is_some(), "{status}");
    assert!(status["progress"]["position"]
        .as_str()
        .unwrap()
        .contains(':'));
    let (code, out, err) = server_support::ctl(&server, &["task", "show", &name], &[]);
    assert_eq!(code, 0, "{err}");
    eprintln!("replicatorctl task show:\n{out}");
    assert!(out.contains("RUNNING") && out.contains("STANDBY"), "{out}");
    assert!(
        out.contains("Event time:") && out.contains("(lag "),
        "{out}"
    );
    let (code, out, _) = server_support::ctl(&server, &["task", "list"], &[]);
    assert_eq!(code, 0);
    eprintln!("replicatorctl task list:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&name) && l.contains(" running ") && l.contains(" h1 ")),
        "{out}"
    );

    // When the include filter changes to b through PUT with the current version
    let version = server
        .call("GET", &format!("/api/v1/tasks/{name}"), None)
        .body["version"]
        .as_i64()
        .unwrap();
    cfg["source"]["include"] = json!([table_regex(&db, "b")]);
    let mark = h1.log_mark();
    let t = Instant::now();
    let put = server_support::request(
        &server.base,
        "PUT",
        &format!("/api/v1/tasks/{name}"),
        &[("If-Match", &format!("\"{version}\""))],
        Some(cfg.to_string().as_bytes()),
    );
    ok(&put, 200);
    assert_eq!(put.body["version"].as_i64(), Some(version + 1));
    // the running Core restarts its pipeline with it, without a process restart
    h1.wait_for_log_after(mark, "task config changed", WAIT)
        .await;
    h1.wait_for_log_after(mark, "replication starts", WAIT)
        .await;
    let live_config = t.elapsed();
    assert!(h1.is_running() && h2.is_running());
    insert(stack, &db, "a", 6..=10).await;
    insert(stack, &db, "b", 6..=10).await;
    // Then b's new rows arrive and a's stop
    let msgs = stack.read_topic_until(&topic_b, 5, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(6..=10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(inserted(&stack.read_topic(&topic_a).await), exactly(1..=5));

    // When the task is paused
    let mark = h1.log_mark();
    let t = Instant::now();
    let paused = server.call("POST", &format!("/api/v1/tasks/{name}/pause"), None);
    ok(&paused, 200);
    assert_eq!(paused.body["desired"], "paused");
    h1.wait_for_log_after(mark, "paused", WAIT).await;
    let pause = t.elapsed();
    insert(stack, &db, "b", 11..=20).await;
    // Then nothing arrives while rows are inserted
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        inserted(&stack.read_topic(&topic_b).await),
        exactly(6..=10),
        "rows arrived while paused"
    );
    let status = server
        .call("GET", &format!("/api/v1/tasks/{name}"), None)
        .body;
    assert_eq!(status["state"], "paused");

    // When it resumes, they all arrive, exactly once
    let t = Instant::now();
    let resumed = server.call("POST", &format!("/api/v1/tasks/{name}/resume"), None);
    ok(&resumed, 200);
    assert_eq!(resumed.body["desired"], "running");
    let msgs = stack.read_topic_until(&topic_b, 15, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(6..=20));
    let resume = t.elapsed();

    // When switched over, the RUNNING instance moves to h2
    let t = Instant::now();
    let sw = server.call("POST", &format!("/api/v1/tasks/{name}/switchover"), None);
    ok(&sw, 200);
    assert_eq!(sw.body["switchover"], 1);
    status_until(&server, &name, "h2 RUNNING after the switchover", |s| {
        running_host(s).as_deref() == Some("h2") && s["state"] == "running"
    })
    .await;
    let switchover = t.elapsed();
    insert(stack, &db, "b", 21..=25).await;
    let msgs = stack.read_topic_until(&topic_b, 20, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(6..=25));

    eprintln!(
        "timings: PUT to pipeline restarted {live_config:?}; pause to stopped {pause:?}; \
         resume to 10 held rows in Kafka {resume:?}; switchover to h2 RUNNING {switchover:?}"
    );

    // When the task is deleted
    let del = server.call("DELETE", &format!("/api/v1/tasks/{name}"), None);
    ok(&del, 200);
    assert!(del.body["znodes"].as_u64().unwrap() >= 4, "{}", del.text);
    // Then its znodes and instances are gone, and stay gone while the Cores run on
    ok(
        &server.call("GET", &format!("/api/v1/tasks/{name}"), None),
        404,
    );
    let zk = stack.zk(&root).await;
    let task_path = format!("{root}/tasks/{name}");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            zk.get(&task_path).await.unwrap().is_none(),
            "the task node came back"
        );
    }
    assert!(h1.is_running(), "{}", h1.tail(20));
    assert!(h2.is_running(), "{}", h2.tail(20));
    let list = server.call("GET", "/api/v1/tasks", None);
    assert_eq!(list.body["tasks"], json!([]), "{}", list.text);
    // and nothing more is replicated
    insert(stack, &db, "b", 26..=30).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(inserted(&stack.read_topic(&topic_b).await), exactly(6..=25));
    h1.stop().await;
    h2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_registered_by_a_core_is_configured_by_create() {
    let stack = shared_stack!();
    let root = unique_root();
    let server = ServerProc::start(stack, &root, None, &[], &[]).await;
    let db = stack.create_database("reg").await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.t (id BIGINT PRIMARY KEY, v INT NOT NULL)"
        ))
        .await;
    let name = task_name("reg");

    // Given a Core started for a task nobody created yet
    let mut h1 = core(stack, &root, &name, "h1");
    let status = status_until(&server, &name, "the Core registered the task", |s| {
        s["instances"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(status["state"], "unconfigured", "{status}");
    assert!(status["config"].is_null());
    assert!(status["config_error"]
        .as_str()
        .unwrap()
        .contains("not configured"));

    // When the task is created through the API
    let cfg = task_config(stack, &name, &[table_regex(&db, "t")]);
    let created = server.call_json("POST", "/api/v1/tasks", &cfg);
    ok(&created, 201);
    assert!(created.body["version"].as_i64().unwrap() >= 1);
    // Then the Core picks the config up and replicates
    h1.wait_for_log("replication starts", WAIT).await;
    insert(stack, &db, "t", 1..=3).await;
    let msgs = stack.read_topic_until(&format!("{db}.t"), 3, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(1..=3));
    // and creating it again is a conflict
    ok(&server.call_json("POST", "/api/v1/tasks", &cfg), 409);
    h1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_task_created_through_the_api_runs_on_a_group_core() {
    let stack = shared_stack!();
    let root = unique_root();
    let server = ServerProc::start(stack, &root, None, &[], &[]).await;
    let db = stack.create_database("cold").await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.t (id BIGINT PRIMARY KEY, v INT NOT NULL)"
        ))
        .await;
    let name = task_name("cold");
    let group = task_name("g");

    // Given a cold task of a group created through the API, and a Core of that group
    let mut cfg = task_config(stack, &name, &[table_regex(&db, "t")]);
    cfg["group"] = json!(group);
    ok(&server.call_json("POST", "/api/v1/tasks", &cfg), 201);
    let args = [
        "--group",
        &group,
        "--scan-interval-ms",
        "300",
        "--zk-session-timeout-ms",
        "3000",
    ];
    let mut c1 = stack.core(&root, "c1", &args, &[]);
    // Then the Core claims and runs it, and the API finds it by name
    let status = status_until(&server, &name, "c1 RUNNING the cold task", |s| {
        running_host(s).as_deref() == Some("c1")
    })
    .await;
    assert_eq!(status["group"], group.as_str());
    c1.wait_for_log("replication starts", WAIT).await;
    insert(stack, &db, "t", 1..=3).await;
    let msgs = stack.read_topic_until(&format!("{db}.t"), 3, WAIT).await;
    assert_eq!(inserted(&msgs), exactly(1..=3));
    let in_group = server.call("GET", &format!("/api/v1/tasks/{name}?group={group}"), None);
    ok(&in_group, 200);
    ok(
        &server.call("GET", &format!("/api/v1/tasks/{name}?group=other"), None),
        404,
    );

    // When it is deleted, its znodes go and the Core lets it go
    ok(
        &server.call("DELETE", &format!("/api/v1/tasks/{name}"), None),
        200,
    );
    let zk = stack.zk(&root).await;
    let path = format!("{root}/task-groups/{group}/{name}");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(zk.get(&path).await.unwrap().is_none(), "the task came back");
    }
    assert!(c1.is_running(), "{}", c1.tail(20));
    c1.stop().await;
}
