//! Snapshots against the real stack (issue 16): the rows that exist when a
//! task starts are copied as `read` messages, merged with the stream so
//! that the table rebuilt from the topic (last message per key, deletes
//! removing the key) equals `SELECT *` of the table, value for value, with
//! no snapshot row delivered twice, across SIGKILLs and a switchover.
//!
//! `REPLICATOR_SNAPSHOT_ROWS` sets the size of the big tables of
//! `snapshot_of_a_big_table_under_writes` and
//! `snapshot_under_writes_survives_two_sigkills_and_a_switchover` (default
//! 1,000,000).

mod server_support;
mod snapshot_support;
mod support;

use replicator_tests::shared_stack;
use serde_json::json;
use server_support::{ctl, ServerProc};
use snapshot_support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_under_writes_survives_two_sigkills_and_a_switchover() {
    let stack = shared_stack!();
    // Given a table of 1,000,000 rows and a new task (snapshot: initial by
    // default) reading it in chunks of 10,000 rows
    let s = Scenario::new(stack, "snap").await;
    let n = big_rows();
    fill(stack, &s.db, &s.table, n as u64).await;
    s.put_config(with_chunk_rows(&s, 10_000)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = churn(stack, &s.db, &s.table, n, stop.clone());
    let mut core = s.core("h1", 1500);

    // When the RUNNING Core is SIGKILLed twice during the copy, and a
    // second Core takes over by switchover, while rows change all along
    let at = |share: f64| (n as f64 * share) as u64;
    let copying = Duration::from_secs(600);
    wait_snapshot_rows(&s, at(0.15), copying).await;
    core.kill();
    core = s.core("h1", 1500);
    wait_snapshot_rows(&s, at(0.4), copying).await;
    core.kill();
    core = s.core("h1", 1500);
    // (h2 registers after h1 runs again, so that h1 stays first in line)
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let mut standby = s.core("h2", 1500);
    standby
        .wait_for_log("STANDBY", Duration::from_secs(30))
        .await;
    wait_snapshot_rows(&s, at(0.65), copying).await;
    assert_eq!(s.running_host(Duration::from_secs(10)).await, "h1");
    s.switchover().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.running_host(Duration::from_secs(10)).await != "h2" {
        assert!(Instant::now() < deadline, "no switchover to h2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copied = wait_snapshot_done(&s, copying).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let statements = writes.await.unwrap();
    assert!(statements > 100, "only {statements} concurrent writes");

    // Then the table rebuilt from the topic equals the table, and no
    // snapshot row arrived twice
    let want = table_rows(stack, &s.db, &s.table).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (got, problems, msgs) = loop {
        let msgs = stack.read_topic(&s.topic).await;
        let (got, problems) = rebuild(&msgs);
        if differences(&got, &want).is_empty() || Instant::now() > deadline {
            break (got, problems, msgs);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let diff = differences(&got, &want);
    let reads = msgs
        .iter()
        .filter(|m| m.value_json()["type"] == "read")
        .count();
    assert!(
        diff.is_empty() && problems.is_empty(),
        "{} rows, {} messages ({reads} reads, {copied} copied), {statements} writes; \
         differences (first 20): {:#?}; problems (first 20): {:#?}\n{}\n{}",
        want.len(),
        msgs.len(),
        &diff[..diff.len().min(20)],
        &problems[..problems.len().min(20)],
        core.tail(30),
        standby.tail(30)
    );
    // rows inserted during the copy are read too when the copy reaches them
    assert!(reads >= n as usize / 2, "{reads} read messages");
    core.stop().await;
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_edges_empty_one_few_and_never() {
    let stack = shared_stack!();
    // Given tables with no row, one row and a few rows, and a table
    // without any key (copied in one consistent read)
    let s = Scenario::new(stack, "snapedge").await;
    create_edge_tables(stack, &s.db, "(1, 2)").await;
    s.put_config(with_chunk_rows(&s, 2)).await;
    let mut core = s.core("h1", 1500);

    // When the snapshot runs with chunks of 2 rows
    let copied = wait_snapshot_done(&s, Duration::from_secs(60)).await;

    // Then each table's topic holds exactly its rows as reads
    assert_eq!(copied, 5);
    for m in assert_edge_reads(stack, &s.db).await {
        assert_eq!(m.value_json()["primary_key"], json!(["id"]));
    }
    assert!(stack.read_topic(&format!("{}.t", s.db)).await.is_empty());
    let tables = snapshot_tables(&s).await;
    let nokey = tables.iter().find(|t| t["table"] == "nokey").unwrap();
    assert_eq!(nokey["mode"], "single_read", "{nokey}");
    assert_eq!(nokey["rows"], 1, "{nokey}");
    let msgs = stack
        .read_topic_until(&format!("{}.nokey", s.db), 1, Duration::from_secs(20))
        .await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].value_json()["type"], "read");
    assert_eq!(msgs[0].value_json()["after"], json!({"a": 1, "b": 2}));
    core.stop().await;

    // And a task with "snapshot": "never" copies nothing
    let s2 = Scenario::new(stack, "snapnever").await;
    fill(stack, &s2.db, &s2.table, 5).await;
    let mut cfg = s2.config();
    cfg["source"]["snapshot"] = json!("never");
    s2.put_config(cfg).await;
    let mut core = s2.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    stack
        .sql(&format!(
            "INSERT INTO `{}`.`{}` (id, v, txn) VALUES (100, 1, 1)",
            s2.db, s2.table
        ))
        .await;
    let msgs = s2.wait_messages(1, Duration::from_secs(20)).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].value_json()["type"], "insert");
    assert!(s2.context().await.unwrap().get("snapshot").is_none());
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_of_a_big_table_under_writes() {
    let stack = shared_stack!();
    let n = big_rows();
    // Given a table of n rows and a task copying it in chunks of 10,000
    let s = Scenario::new(stack, "snapbig").await;
    fill(stack, &s.db, &s.table, n as u64).await;
    s.put_config(with_chunk_rows(&s, 10_000)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = churn(stack, &s.db, &s.table, n, stop.clone());
    let started = Instant::now();
    let mut core = s.core("h1", 3000);

    // When it copies while rows are inserted, updated and deleted
    let copied = wait_snapshot_done(&s, Duration::from_secs(900)).await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let statements = writes.await.unwrap();
    eprintln!(
        "snapshot of {n} rows: {copied} copied in {took:?} ({:.0} rows/s), {statements} concurrent writes",
        copied as f64 / took.as_secs_f64()
    );

    // Then the rebuilt table equals the table
    let want = table_rows(stack, &s.db, &s.table).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let msgs = stack.read_topic(&s.topic).await;
        let (got, problems) = rebuild(&msgs);
        let diff = differences(&got, &want);
        if diff.is_empty() && problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} rows, {} messages; differences (first 20): {:#?}; problems: {:#?}\n{}",
            want.len(),
            msgs.len(),
            &diff[..diff.len().min(20)],
            &problems[..problems.len().min(20)],
            core.tail(30)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_demand_snapshot_while_the_stream_runs() {
    let stack = shared_stack!();
    // Given a streaming-only task whose table fills while it runs, and a
    // Server over its root
    let s = Scenario::new(stack, "snapdemand").await;
    let mut cfg = with_chunk_rows(&s, 500);
    cfg["source"]["snapshot"] = json!("never");
    s.put_config(cfg).await;
    let mut core = s.core("h1", 3000);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;
    let n = 6_000i64;
    fill(stack, &s.db, &s.table, n as u64).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = churn(stack, &s.db, &s.table, n, stop.clone());
    let server = ServerProc::start(stack, &s.root, None, &[], &[]).await;
    let table = format!("{}.{}", s.db, s.table);
    let path = format!("/api/v1/tasks/{}/snapshot", s.task);

    // Bad requests are refused with a clear error and change nothing
    for (body, status, words) in [
        (json!({"tables": []}), 400, "at least one table"),
        (json!({"tables": ["nodot"]}), 400, "db.table"),
        (json!({"tables": ["other.t"]}), 400, "does not include"),
        (json!({"table": [table]}), 400, "body must be"),
    ] {
        let a = server.call_json("POST", &path, &body);
        assert_eq!(a.status, status, "{body}: {}", a.text);
        assert!(
            a.body["error"].as_str().unwrap().contains(words),
            "{}",
            a.text
        );
    }
    let a = server.call_json(
        "POST",
        "/api/v1/tasks/no_such_task/snapshot",
        &json!({"tables": [table]}),
    );
    assert_eq!(a.status, 404, "{}", a.text);
    assert!(s.context().await.unwrap().get("snapshot").is_none());

    // When a re-copy of the table is asked with replicatorctl
    let (code, out, err) = ctl(
        &server,
        &["task", "snapshot", &s.task, "--table", &table],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("snapshot #1 requested"), "{out}");
    // and asked again while it runs: refused
    let a = server.call_json("POST", &path, &json!({"tables": [table]}));
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(
        a.body["error"].as_str().unwrap().contains("already"),
        "{}",
        a.text
    );

    // Then it completes while the stream goes on, and the rebuilt table
    // equals the table with no row copied twice
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ctx = s.context().await.unwrap();
        let snap = &ctx["snapshot"];
        if snap["request"] == 1 && snapshot_progress(&s).await.is_some_and(|(_, r)| r == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "on-demand snapshot not done: {ctx}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    writes.await.unwrap();
    let want = table_rows(stack, &s.db, &s.table).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let msgs = stack.read_topic(&s.topic).await;
        let (got, problems) = rebuild(&msgs);
        let diff = differences(&got, &want);
        let reads = msgs
            .iter()
            .filter(|m| m.value_json()["type"] == "read")
            .count();
        if diff.is_empty() && problems.is_empty() {
            assert!(reads > n as usize / 2, "{reads} reads");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "differences (first 20): {:#?}; problems: {:#?}\n{}",
            &diff[..diff.len().min(20)],
            &problems[..problems.len().min(20)],
            core.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A request for a paused task is queued until it resumes
    let a = server.call(
        "POST",
        &format!("/api/v1/tasks/{}/pause", s.task),
        Some(b""),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let a = server.call_json("POST", &path, &json!({"tables": [table]}));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["snapshot"]["request"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.context().await.unwrap()["snapshot"]["request"],
        1,
        "paused: not taken in"
    );
    let a = server.call(
        "POST",
        &format!("/api/v1/tasks/{}/resume", s.task),
        Some(b""),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.context().await.unwrap()["snapshot"]["request"] != 2 {
        assert!(
            Instant::now() < deadline,
            "queued request not taken in after resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_needed_copies_instead_of_stopping_at_a_purged_binlog() {
    let stack = shared_stack!();
    // Given rows, and a task with snapshot "when_needed" whose start is a
    // binlog file the source no longer has
    let s = Scenario::new(stack, "snapneeded").await;
    fill(stack, &s.db, &s.table, 10).await;
    let mut cfg = s.config();
    cfg["source"]["snapshot"] = json!("when_needed");
    cfg["source"]["start"] = json!({"file": "mysql-bin.999999", "pos": 4});
    s.put_config(cfg).await;
    let mut core = s.core("h1", 1500);

    // When it runs, it restarts at the current position with a copy
    core.wait_for_log(
        "binlog gone: restarting from the current position",
        Duration::from_secs(30),
    )
    .await;
    let copied = wait_snapshot_done(&s, Duration::from_secs(60)).await;
    assert_eq!(copied, 10);
    stack
        .sql(&format!(
            "INSERT INTO `{}`.`{}` (id, v, txn) VALUES (100, 1, 1)",
            s.db, s.table
        ))
        .await;

    // Then the topic holds the 10 rows as reads, then the stream's insert,
    // and the task reports no error
    let msgs = s.wait_messages(11, Duration::from_secs(30)).await;
    let (got, problems) = rebuild(&msgs);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(got, table_rows(stack, &s.db, &s.table).await);
    let kinds: Vec<String> = msgs
        .iter()
        .map(|m| m.value_json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "read").count(),
        10,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "insert").count(),
        1,
        "{kinds:?}"
    );
    let errors: Vec<_> = s
        .instances()
        .await
        .into_iter()
        .filter_map(|(_, i)| i.error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_dropped_during_its_copy_is_finished_and_the_next_is_copied() {
    let stack = shared_stack!();
    // Given two tables: `a` of 40,000 rows copied in chunks of 200, and `b`
    let s = Scenario::new(stack, "snapdrop").await;
    for t in ["a", "b"] {
        create_table(stack, &s.db, t).await;
    }
    fill(stack, &s.db, "a", 40_000).await;
    fill(stack, &s.db, "b", 300).await;
    s.put_config(with_chunk_rows(&s, 200)).await;
    let mut core = s.core("h1", 1500);

    // When `a` is dropped while it is being copied
    wait_snapshot_rows(&s, 1_000, Duration::from_secs(60)).await;
    stack.sql(&format!("DROP TABLE `{}`.`a`", s.db)).await;

    // Then the snapshot finishes: `a` marked as not copied (dropped), `b`
    // copied whole, and the task has no error
    wait_snapshot_done(&s, Duration::from_secs(60)).await;
    let tables = snapshot_tables(&s).await;
    let a = tables.iter().find(|t| t["table"] == "a").unwrap();
    assert!(
        a["skipped"]
            .as_str()
            .is_some_and(|r| r.contains("no longer exists")),
        "{a}"
    );
    let b = tables.iter().find(|t| t["table"] == "b").unwrap();
    assert_eq!(b["rows"], 300, "{b}");
    let msgs = stack
        .read_topic_until(&format!("{}.b", s.db), 300, Duration::from_secs(30))
        .await;
    let (got, problems) = rebuild(&msgs);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(got, table_rows(stack, &s.db, "b").await);
    let a_msgs = stack.read_topic(&format!("{}.a", s.db)).await;
    assert!(
        a_msgs.iter().any(|m| m.value_json()["type"] == "ddl"),
        "the stream carries the DROP"
    );
    assert!(s.instances().await.iter().all(|(_, i)| i.error.is_none()));
    core.stop().await;
}
