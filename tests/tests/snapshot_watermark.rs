//! Watermark snapshots (DBLog, `source.snapshot_method: watermark`) against
//! the real stack (issue 16): MySQL has no `binlog_snapshot_*` status, so
//! there the Core brackets each chunk read by LOW/HIGH watermark rows in a
//! signal table; the mode is forced on MariaDB here (no MySQL server runs
//! on the test machine) and checked as the consistent-snapshot mode is:
//! the table rebuilt from the topic equals `SELECT *`, no snapshot row
//! twice, across a SIGKILL, and the signal table's rows (and its `CREATE
//! TABLE`) never reach a topic.

mod snapshot_support;
mod support;

use replicator_tests::shared_stack;
use serde_json::{json, Value};
use snapshot_support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Scenario;

/// `with_chunk_rows` with the watermark method, and the signal table
/// `signal` when given (else the default `mysql_replicator.snapshot_signal`).
fn watermark_config(s: &Scenario, chunk: u32, signal: Option<&str>) -> Value {
    let mut cfg = with_chunk_rows(s, chunk);
    cfg["source"]["snapshot_method"] = json!("watermark");
    if let Some(t) = signal {
        cfg["source"]["snapshot_signal_table"] = json!(t);
    }
    cfg
}

/// The error of the task's instance node, waiting up to 30 s for it.
async fn instance_error(s: &Scenario, core: &replicator_tests::Process) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = s.instances().await.into_iter().find_map(|(_, i)| i.error) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no error in the instance node\n{}",
            core.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watermark_edges_empty_one_few_and_keyless() {
    let stack = shared_stack!();
    // Given tables with no row, one row, three rows and no key at all, and
    // a signal table inside the task's own filters (not created yet)
    let s = Scenario::new(stack, "wmedge").await;
    create_edge_tables(stack, &s.db, "(1, 2), (1, 2), (3, 4)").await;
    let signal = format!("{}.signal", s.db);
    s.put_config(watermark_config(&s, 2, Some(&signal))).await;
    let mut core = s.core("h1", 1500);

    // When the snapshot runs with chunks of 2 rows under watermarks
    let copied = wait_snapshot_done(&s, Duration::from_secs(60)).await;

    // Then it used watermarks, created the signal table and left its row
    assert!(
        !core
            .log_lines_matching("snapshot uses watermarks")
            .is_empty(),
        "{}",
        core.tail(20)
    );
    assert!(!core
        .log_lines_matching("snapshot signal table created")
        .is_empty());
    let marks: Vec<String> = stack
        .query(&format!(
            "SELECT mark FROM `{}`.`signal` WHERE task = '{}'",
            s.db, s.task
        ))
        .await;
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert!(
        marks[0].ends_with(":low") || marks[0].ends_with(":high"),
        "{marks:?}"
    );
    // and each table's topic holds exactly its rows as reads
    assert_eq!(copied, 7);
    assert_edge_reads(stack, &s.db).await;
    let msgs = stack
        .read_topic_until(&format!("{}.nokey", s.db), 3, Duration::from_secs(20))
        .await;
    let mut afters: Vec<String> = msgs
        .iter()
        .map(|m| {
            assert_eq!(m.value_json()["type"], "read");
            m.value_json()["after"].to_string()
        })
        .collect();
    afters.sort();
    assert_eq!(
        afters,
        [r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#, r#"{"a":3,"b":4}"#]
    );
    let tables = snapshot_tables(&s).await;
    let nokey = tables.iter().find(|t| t["table"] == "nokey").unwrap();
    assert_eq!(nokey["mode"], "single_read", "{nokey}");
    assert!(
        tables.iter().all(|t| t["table"] != "signal"),
        "the signal table is not copied: {tables:?}"
    );

    // And the stream goes on; the signal table's rows and its CREATE TABLE
    // never became messages
    stack
        .sql(&format!(
            "INSERT INTO `{}`.`e1` (id, v, txn) VALUES (100, 1, 1)",
            s.db
        ))
        .await;
    let msgs = stack
        .read_topic_until(&format!("{}.e1", s.db), 2, Duration::from_secs(20))
        .await;
    assert_eq!(msgs.last().unwrap().value_json()["type"], "insert");
    assert!(stack
        .read_topic(&format!("{}.signal", s.db))
        .await
        .is_empty());
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watermark_snapshot_under_writes_survives_a_sigkill() {
    let stack = shared_stack!();
    // Given a table of 150,000 rows, copied under watermarks in the default
    // signal table (outside the task's filters) in chunks of 2,000 rows
    // while rows are inserted, updated and deleted
    let s = Scenario::new(stack, "wmkill").await;
    let n = 150_000i64;
    fill(stack, &s.db, &s.table, n as u64).await;
    s.put_config(watermark_config(&s, 2_000, None)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = churn(stack, &s.db, &s.table, n, stop.clone());
    let mut core = s.core("h1", 1500);

    // When the RUNNING Core is SIGKILLed a third of the way through and a
    // new one resumes
    wait_snapshot_rows(&s, n as u64 / 3, Duration::from_secs(300)).await;
    assert!(!core
        .log_lines_matching("snapshot uses watermarks")
        .is_empty());
    core.kill();
    core = s.core("h1", 1500);
    let copied = wait_snapshot_done(&s, Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let statements = writes.await.unwrap();
    assert!(statements > 100, "only {statements} concurrent writes");

    // Then the table rebuilt from the topic equals the table, no snapshot
    // row arrived twice, and no watermark row reached a topic
    let got =
        wait_topic_equals_table(stack, &s.topic, &s.db, &s.table, Duration::from_secs(120)).await;
    let msgs = match got {
        Ok(m) => m,
        Err(e) => panic!(
            "{copied} copied, {statements} writes: {e}\n{}",
            core.tail(30)
        ),
    };
    let reads = msgs
        .iter()
        .filter(|m| m.value_json()["type"] == "read")
        .count();
    assert!(reads >= n as usize / 2, "{reads} read messages");
    assert!(stack
        .read_topic("mysql_replicator.snapshot_signal")
        .await
        .is_empty());
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signal_table_the_user_cannot_create_or_write_is_named() {
    let stack = shared_stack!();
    // Given a source user that may read the binlog and select the table,
    // but neither create tables nor write the database
    let s = Scenario::new(stack, "wmacl").await;
    fill(stack, &s.db, &s.table, 10).await;
    let user = format!("wmacl{}", &s.db[s.db.len() - 6..]);
    stack
        .sql(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; \
             GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION CLIENT ON *.* TO '{user}'@'%'; \
             GRANT SELECT ON `{db}`.`{t}` TO '{user}'@'%'",
            db = s.db,
            t = s.table
        ))
        .await;
    let signal = format!("{}.signal", s.db);
    let mut cfg = watermark_config(&s, 100, Some(&signal));
    cfg["source"]["user"] = user.clone().into();
    cfg["source"]["password"] = "pw".into();
    s.put_config(cfg.clone()).await;

    // When the task starts with the signal table missing
    let mut core = s.core("h1", 3000);

    // Then its instance node names the table, the user and the grant, and
    // nothing is sent
    let e = instance_error(&s, &core).await;
    assert!(
        e.contains(&format!("signal table {signal} does not exist"))
            && e.contains(&user)
            && e.contains("grant CREATE, INSERT, UPDATE"),
        "{e}"
    );
    assert!(stack.read_topic(&s.topic).await.is_empty());
    core.stop().await;

    // And when the table exists (and the user sees it) but may not write
    // it, a new task
    // says which grant is missing
    let s2 = Scenario::new(stack, "wmacl2").await;
    stack
        .sql(&format!(
            "GRANT SELECT ON `{}`.`{}` TO '{user}'@'%'; \
             CREATE TABLE `{db}`.`signal` (task VARCHAR(128) NOT NULL PRIMARY KEY, mark VARCHAR(64) NOT NULL); \
             GRANT SELECT ON `{db}`.`signal` TO '{user}'@'%'",
            s2.db,
            s2.table,
            db = s.db
        ))
        .await;
    let mut cfg2 = watermark_config(&s2, 100, Some(&signal));
    cfg2["source"]["user"] = user.clone().into();
    cfg2["source"]["password"] = "pw".into();
    s2.put_config(cfg2).await;
    let mut core = s2.core("h1", 3000);
    let e = instance_error(&s2, &core).await;
    assert!(
        e.contains(&format!("cannot write the signal table {signal}"))
            && e.contains(&format!("grant INSERT, UPDATE ON {signal} TO `{user}`")),
        "{e}"
    );
    assert!(stack.read_topic(&s2.topic).await.is_empty());
    core.stop().await;
}
