//! Foundation tests: the stack the other end-to-end tests stand on works the
//! way they assume. ZooKeeper ephemeral-sequential nodes through the
//! replicator's own session helper, a SQL round trip with a binlog that a
//! replication client can read, messages through Tansu, two private stacks at
//! once, and the clean-up after a test process that never drops its stack.

use futures::StreamExt;
use replicator_common::paths::{InstanceName, TaskRef};
use replicator_tests::{
    shared_stack, unique_name, unique_root, wait_until, Process, Server, Stack,
};
use std::process::Command;
use std::time::{Duration, Instant};
use zookeeper_client::CreateMode;

const SECS_10: Duration = Duration::from_secs(10);

#[tokio::test]
async fn zk_ephemeral_sequential_nodes_vanish_with_their_session() {
    let stack = shared_stack!();
    let root = unique_root();
    let task = TaskRef::hot("orders").unwrap();

    // Given two sessions under one fresh root
    let a = stack.zk(&root).await;
    let b = stack.zk(&root).await;
    let layout = a.layout().clone();
    a.ensure_path(&layout.instances(&task)).await.unwrap();

    // When each registers instances, a first
    let mode = CreateMode::EphemeralSequential;
    let prefix_a = layout.instance_prefix(&task, "host-a").unwrap();
    let prefix_b = layout.instance_prefix(&task, "host-b").unwrap();
    let (_, seq_a) = a
        .client()
        .create(&prefix_a, b"{}", &a.options(mode))
        .await
        .unwrap();
    let (_, seq_b1) = b
        .client()
        .create(&prefix_b, b"{}", &b.options(mode))
        .await
        .unwrap();
    let (_, seq_b2) = b
        .client()
        .create(&prefix_b, b"{}", &b.options(mode))
        .await
        .unwrap();

    // Then they list in creation order, with the lowest sequence first
    let mut listed: Vec<InstanceName> = b
        .children(&layout.instances(&task))
        .await
        .unwrap()
        .iter()
        .map(|c| InstanceName::parse(c).expect("instance child name"))
        .collect();
    listed.sort_by_key(|i| i.seq);
    let seqs: Vec<i64> = listed.iter().map(|i| i.seq).collect();
    assert_eq!(
        seqs,
        vec![seq_a.into_i64(), seq_b1.into_i64(), seq_b2.into_i64()]
    );
    assert_eq!(listed[0].host, "host-a");

    // When a's session closes, its node goes at once and b's stay
    a.close().await;
    let instances = layout.instances(&task);
    wait_until(SECS_10, "host-a's node to vanish", || async {
        b.children(&instances).await.unwrap().len() == 2
    })
    .await;
    let left = b.children(&instances).await.unwrap();
    assert!(left.iter().all(|c| c.starts_with("host-b-")), "{left:?}");

    b.delete_recursive(&root).await.unwrap();
    assert!(b.get(&root).await.unwrap().is_none());
}

#[tokio::test]
async fn sql_round_trip_and_the_binlog_is_readable_as_a_replica() {
    let stack = shared_stack!();

    // Given the source is configured as the replicator needs it
    let vars: Vec<(String, String)> = stack
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
             ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata')",
        )
        .await;
    let vars: std::collections::BTreeMap<_, _> = vars.into_iter().collect();
    assert_eq!(vars["log_bin"], "ON");
    assert_eq!(vars["binlog_format"], "ROW");
    assert_eq!(vars["binlog_row_image"], "FULL");
    assert_eq!(vars["binlog_row_metadata"], "FULL");

    // When a test creates its own database and writes rows
    let db = stack.create_database("foundation").await;
    let (file, pos) = stack.binlog_position().await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20)); \
             INSERT INTO `{db}`.t VALUES (1, 12.50, 'hi'), (2, 0.5, NULL); \
             UPDATE `{db}`.t SET note = 'héllo' WHERE id = 2"
        ))
        .await;

    // Then they read back
    let rows: Vec<(i32, String, Option<String>)> = stack
        .query(&format!(
            "SELECT id, CAST(amount AS CHAR), note FROM `{db}`.t ORDER BY id"
        ))
        .await;
    assert_eq!(
        rows,
        vec![
            (1, "12.50".to_string(), Some("hi".to_string())),
            (2, "0.50".to_string(), Some("héllo".to_string())),
        ]
    );

    // And the binlog holds row events for them
    let events: Vec<mysql_async::Row> = stack
        .query(&format!("SHOW BINLOG EVENTS IN '{file}' FROM {pos}"))
        .await;
    let types: Vec<String> = events
        .iter()
        .map(|r| r.get::<String, _>("Event_type").unwrap())
        .collect();
    assert!(
        types.iter().any(|t| t.starts_with("Write_rows")),
        "{types:?}"
    );
    assert!(
        types.iter().any(|t| t.starts_with("Update_rows")),
        "{types:?}"
    );

    // And the repl user can stream it as a replica would
    let conn = stack.conn().await;
    let request = mysql_async::BinlogStreamRequest::new(4_000_000 + std::process::id() % 100_000)
        .with_filename(file.as_bytes())
        .with_pos(pos);
    let mut stream = conn.get_binlog_stream(request).await.unwrap();
    let mut seen_rows = 0;
    let deadline = Instant::now() + SECS_10;
    while seen_rows < 2 && Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
        let Ok(Some(event)) = next else { break };
        let event = event.expect("binlog event");
        let kind = event.header().event_type_raw();
        // WRITE_ROWS_EVENT (30) and UPDATE_ROWS_EVENT (31), v2
        if kind == 30 || kind == 31 || kind == 23 || kind == 24 {
            seen_rows += 1;
        }
    }
    assert_eq!(seen_rows, 2, "row events read from the binlog stream");
    let _ = stream.close().await;

    stack.sql(&format!("DROP DATABASE `{db}`")).await;
}

#[tokio::test]
async fn messages_go_through_tansu() {
    let stack = shared_stack!();
    let topic = unique_name("foundation");

    // Given a topic of three partitions (a repeat creation is fine)
    stack.create_topic(&topic, 3).await;
    stack.create_topic(&topic, 3).await;
    assert_eq!(stack.topic_partitions(&topic).await, Some(3));
    assert_eq!(stack.topic_partitions(&unique_name("nope")).await, None);
    assert!(stack.read_topic(&unique_name("nope")).await.is_empty());

    // When messages are produced to each partition, with keys and headers
    let mut sent = Vec::new();
    for i in 0..9 {
        let partition = i % 3;
        let key = format!("[{i}]");
        let value = format!(r#"{{"n":{i}}}"#);
        let (p, offset) = stack
            .produce_with_headers(
                &topic,
                Some(partition),
                Some(key.as_bytes()),
                value.as_bytes(),
                &[("n", i.to_string().as_bytes())],
            )
            .await;
        assert_eq!(p, partition);
        sent.push((p, offset, i));
    }
    stack.produce(&topic, Some(0), None, b"no key").await;

    // Then reading the topic from the beginning returns each of them once
    let messages = stack.read_topic(&topic).await;
    assert_eq!(messages.len(), 10, "{messages:#?}");
    for (partition, offset, i) in sent {
        let m = messages
            .iter()
            .find(|m| m.partition == partition && m.offset == offset)
            .unwrap_or_else(|| panic!("message {i} at {partition}/{offset} missing"));
        assert_eq!(m.topic, topic);
        assert_eq!(m.key_json(), serde_json::json!([i]));
        assert_eq!(m.value_json()["n"], i);
        assert_eq!(m.header("n"), Some(i.to_string().as_bytes()));
    }
    let last = messages.iter().find(|m| m.key.is_none()).unwrap();
    assert_eq!(last.value_str(), "no key");
    let p0: Vec<i64> = messages
        .iter()
        .filter(|m| m.partition == 0)
        .map(|m| m.offset)
        .collect();
    assert!(
        p0.windows(2).all(|w| w[0] < w[1]),
        "offsets in order: {p0:?}"
    );

    // And a reader that waits for more than there is returns what there is
    let t0 = Instant::now();
    let some = stack
        .read_topic_until(&topic, 11, Duration::from_secs(2))
        .await;
    assert_eq!(some.len(), 10);
    assert!(t0.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn two_private_stacks_run_at_once() {
    let Some((one, two)) = start_two() else {
        return;
    };
    println!(
        "private stacks up in {:.1} s and {:.1} s",
        one.startup_time().as_secs_f64(),
        two.startup_time().as_secs_f64()
    );

    // Then they listen on different ports and each serves its own data
    assert_ne!(one.zk_connect(), two.zk_connect());
    assert_ne!(one.mysql_port(), two.mysql_port());
    assert_ne!(one.kafka_bootstrap(), two.kafka_bootstrap());
    for (stack, name) in [(&one, "one"), (&two, "two")] {
        stack.sql(&format!("CREATE DATABASE only_in_{name}")).await;
        let zk = stack.zk(&format!("/only_in_{name}")).await;
        zk.ensure_path(&format!("/only_in_{name}")).await.unwrap();
        let topic = format!("only_in_{name}");
        stack.create_topic(&topic, 1).await;
        stack.produce(&topic, None, None, name.as_bytes()).await;
    }
    let dbs: Vec<String> = two.query("SHOW DATABASES LIKE 'only_in_%'").await;
    assert_eq!(dbs, vec!["only_in_two".to_string()]);
    let zk = two.zk_client().await;
    assert!(zk.check_stat("/only_in_one").await.unwrap().is_none());
    assert!(zk.check_stat("/only_in_two").await.unwrap().is_some());
    assert_eq!(one.read_topic("only_in_two").await.len(), 0);
    assert_eq!(two.read_topic("only_in_two").await[0].value_str(), "two");

    // When a private stack is dropped, its servers and files go
    let pids: Vec<u32> = [Server::ZooKeeper, Server::MariaDb, Server::Tansu]
        .iter()
        .map(|&s| one.server_pid(s).unwrap())
        .collect();
    let dir = one.dir().unwrap().to_path_buf();
    drop(one);
    for pid in pids {
        assert!(!alive(pid), "server pid {pid} survived the drop");
    }
    assert!(!dir.exists(), "{} survived the drop", dir.display());
}

/// Starts two private stacks in parallel threads.
fn start_two() -> Option<(Stack, Stack)> {
    if replicator_tests::skip_stack_tests() {
        return None;
    }
    let one = std::thread::spawn(Stack::start);
    let two = std::thread::spawn(Stack::start);
    Some((one.join().unwrap(), two.join().unwrap()))
}

#[tokio::test]
async fn private_stack_servers_can_be_paused() {
    let Some(stack) = Stack::start_or_skip() else {
        return;
    };
    stack.pause(Server::MariaDb);
    let stalled = tokio::time::timeout(Duration::from_millis(500), stack.conn()).await;
    assert!(stalled.is_err(), "a paused MariaDB must not answer");
    stack.resume(Server::MariaDb);
    let one: Vec<i64> = stack.query("SELECT 1").await;
    assert_eq!(one, vec![1]);
}

/// The process helper, on a stand-in child (no project binary needed).
#[tokio::test]
async fn process_helper_signals_and_logs() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap 'echo got TERM; exit 3' TERM; echo ready; \
         while true; do echo tick; sleep 0.1; done",
    ]);
    let mut p = Process::spawn_command("stand-in", cmd);
    p.wait_for_log("^ready$", SECS_10).await;
    assert!(p.is_running());

    // pause: no more ticks; resume: ticks again
    p.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = p.log_mark();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(p.log_mark(), mark, "a paused process logs nothing");
    p.resume();
    p.wait_for_log_after(mark, "tick", SECS_10).await;

    // stop: SIGTERM, the trap runs, exit code 3
    let status = p.stop().await;
    assert_eq!(status.code(), Some(3));
    assert!(p.log().contains("got TERM"));

    // kill: SIGKILL cannot be trapped
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' TERM; echo up; sleep 60"]);
    let mut q = Process::spawn_command("stubborn", cmd);
    q.wait_for_log("up", SECS_10).await;
    let pid = q.pid();
    let status = q.kill();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!alive(pid));
}

/// Env var that turns [`reaper_child`] into a real test for the parent test.
const REAPER_CHILD: &str = "REPLICATOR_FOUNDATION_REAPER_CHILD";

/// Run by [`servers_die_with_a_test_process_that_never_drops_its_stack`] in
/// a child process: starts a stack, leaks it, prints its PIDs and directory,
/// and exits without running any destructor.
#[test]
#[ignore = "helper run by another test in a child process"]
fn reaper_child() {
    if std::env::var_os(REAPER_CHILD).is_none() {
        return;
    }
    let stack = Box::leak(Box::new(Stack::start()));
    let pids: Vec<String> = [Server::ZooKeeper, Server::MariaDb, Server::Tansu]
        .iter()
        .map(|&s| stack.server_pid(s).unwrap().to_string())
        .collect();
    println!("REAPER-PIDS {}", pids.join(" "));
    println!("REAPER-DIR {}", stack.dir().unwrap().display());
    std::process::exit(0);
}

#[tokio::test]
async fn servers_die_with_a_test_process_that_never_drops_its_stack() {
    if replicator_tests::skip_stack_tests() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["reaper_child", "--exact", "--ignored", "--nocapture"])
        .env(REAPER_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |tag: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| {
                panic!(
                    "child printed no {tag}\nstdout:\n{stdout}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .trim()
            .to_string()
    };
    let pids: Vec<u32> = field("REAPER-PIDS ")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    let dir = std::path::PathBuf::from(field("REAPER-DIR "));
    assert_eq!(pids.len(), 3);
    wait_until(
        SECS_10,
        "the reaper to kill the child's servers",
        || async { pids.iter().all(|&p| !alive(p)) },
    )
    .await;
    wait_until(
        SECS_10,
        "the reaper to remove the child's files",
        || async { !dir.exists() },
    )
    .await;
}

/// True while `pid` is a live process (a zombie counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
