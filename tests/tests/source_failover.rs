//! Source failover on a real MariaDB primary/replica pair (GTID replication).
//!
//! - `follows_the_promoted_replica_exactly_once`: a writer commits
//!   continuously; the primary is SIGKILLed; the replica is promoted; the
//!   writer moves to it; the task follows within seconds; every row of the
//!   new primary's table (the truth) is in Kafka exactly once. Prints the
//!   figures (time to follow, rows, lost, duplicated).
//! - `refuses_a_lagging_replica_then_accepts_the_gap`: the promoted replica
//!   lacks transactions the task already published: the task stops with a
//!   definite error naming the missing GTIDs; nothing is published twice or
//!   skipped; `accept-gap` (the control counter) resumes it on the new server.
//!
//! Each test starts its own pair (it kills the primary) and uses the shared
//! stack's ZooKeeper and Kafka.

mod support;

use mysql_async::prelude::Queryable;
use replicator_common::nodes::{Control, InstanceState};
use replicator_tests::mariadb_pair::MariaPair;
use replicator_tests::{shared_stack, Message, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Scenario;

const ROWS_PER_TXN: i64 = 5;

/// The task config of `s` reading `hosts` in order.
fn config_with_hosts(s: &Scenario, hosts: &[String]) -> Value {
    let mut cfg = s.config();
    let src = cfg["source"].as_object_mut().unwrap();
    src.remove("host");
    src.remove("port");
    src.insert("hosts".into(), json!(hosts));
    cfg
}

/// A writer that commits transactions of [`ROWS_PER_TXN`] inserts to
/// whichever server `target` names, reconnecting after errors. The `gate` is
/// held for each transaction, so a test can hold it to act between two.
struct FailoverWriter {
    target: Arc<Mutex<mysql_async::Opts>>,
    gate: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicI64>,
    handle: tokio::task::JoinHandle<(i64, u64)>,
}

impl FailoverWriter {
    fn start(opts: mysql_async::Opts, table: String) -> FailoverWriter {
        let target = Arc::new(Mutex::new(opts));
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicI64::new(0));
        let (t, g, s, done) = (
            target.clone(),
            gate.clone(),
            stop.clone(),
            committed.clone(),
        );
        let handle = tokio::spawn(async move {
            let mut next_id = 1i64;
            let mut failures = 0u64;
            let mut conn: Option<mysql_async::Conn> = None;
            while !s.load(Ordering::SeqCst) {
                let held = g.lock().await;
                if conn.is_none() {
                    let opts = t.lock().unwrap().clone();
                    let connect = mysql_async::Conn::new(opts);
                    match tokio::time::timeout(Duration::from_secs(2), connect).await {
                        Ok(Ok(c)) => conn = Some(c),
                        _ => {
                            failures += 1;
                            drop(held);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let values: Vec<String> = (0..ROWS_PER_TXN)
                    .map(|i| format!("({}, {i}, {next_id}, 'row')", next_id + i))
                    .collect();
                let sql = format!(
                    "START TRANSACTION; INSERT INTO {table} (id, v, txn, note) VALUES {}; COMMIT",
                    values.join(",")
                );
                // ids are never reused, whatever the outcome: the new
                // primary's table tells what was committed
                next_id += ROWS_PER_TXN;
                let c = conn.as_mut().expect("connected");
                match tokio::time::timeout(Duration::from_secs(5), c.query_drop(sql)).await {
                    Ok(Ok(())) => {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        failures += 1;
                        conn = None;
                    }
                }
                drop(held);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (next_id - 1, failures)
        });
        FailoverWriter {
            target,
            gate,
            stop,
            committed,
            handle,
        }
    }

    fn committed(&self) -> i64 {
        self.committed.load(Ordering::SeqCst)
    }

    fn retarget(&self, opts: mysql_async::Opts) {
        *self.target.lock().unwrap() = opts;
    }

    /// Stops; returns (highest id tried, failed attempts).
    async fn finish(self) -> (i64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap()
    }
}

/// Insert messages of the table: id -> how many times.
fn inserted(messages: &[Message]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
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

/// Compares the messages with the truth: (missing, duplicated, not in truth).
fn compare(truth: &BTreeSet<i64>, seen: &HashMap<i64, usize>) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let missing = truth
        .iter()
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let mut dup: Vec<i64> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    dup.sort_unstable();
    let mut extra: Vec<i64> = seen
        .keys()
        .filter(|id| !truth.contains(id))
        .copied()
        .collect();
    extra.sort_unstable();
    (missing, dup, extra)
}

async fn truth(pair: &MariaPair, s: &Scenario) -> BTreeSet<i64> {
    pair.replica
        .query::<i64>(&format!("SELECT id FROM `{}`.`{}`", s.db, s.table))
        .await
        .into_iter()
        .collect()
}

/// Reads the topic until it holds every id of `truth` (or `timeout`).
async fn read_until_complete(
    stack: &Stack,
    topic: &str,
    truth: &BTreeSet<i64>,
    timeout: Duration,
) -> Vec<Message> {
    let deadline = Instant::now() + timeout;
    loop {
        let messages = stack.read_topic(topic).await;
        let seen = inserted(&messages);
        if truth.iter().all(|id| seen.contains_key(id)) || Instant::now() >= deadline {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn start_pair() -> MariaPair {
    MariaPair::start("")
        .await
        .unwrap_or_else(|e| panic!("cannot start the MariaDB pair: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follows_the_promoted_replica_exactly_once() {
    let shared = shared_stack!();
    failover(shared, false).await;
}

/// The same, with the Core SIGKILLed just after it resumed on the new
/// primary: the next Core must still tell what the killed one delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn core_killed_right_after_the_failover_still_exactly_once() {
    let shared = shared_stack!();
    failover(shared, true).await;
}

async fn failover(shared: &'static Stack, kill_core: bool) {
    // Given a primary/replica pair and a task reading [primary, replica]
    let mut pair = start_pair().await;
    let stack = shared.with_mysql(pair.primary.port).leak();
    let s = Scenario::new(stack, "failover").await;
    s.put_config(config_with_hosts(
        &s,
        &[pair.primary.addr(), pair.replica.addr()],
    ))
    .await;
    let mut core = s.core("fo1", 6000);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    let table = format!("`{}`.`{}`", s.db, s.table);
    let writer = FailoverWriter::start(pair.primary.opts(), table);
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.committed() < 100
        || s.context().await.expect("context")["events"]
            .as_u64()
            .unwrap_or(0)
            < 50
    {
        assert!(
            Instant::now() < deadline,
            "the task published nothing in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // When the primary is SIGKILLed between two commits of a continuous
    // writer (the replica has everything the writer was told was committed:
    // asynchronous replication loses the rest by design, which is the
    // refusal test's subject)
    let before_kill = writer.committed();
    {
        let _between_commits = writer.gate.lock().await;
        assert!(
            pair.replica_caught_up(Duration::from_secs(20)).await,
            "replica did not catch up before the kill"
        );
        pair.kill_primary();
    }
    let killed = Instant::now();
    // the Core finds the primary gone and the replica read-only: it retries
    core.wait_for_log("no usable source server", Duration::from_secs(30))
        .await;
    // and the replica is promoted, the writer moves to it
    let mark = core.log_mark();
    pair.promote_replica().await;
    let promoted = Instant::now();
    writer.retarget(pair.replica.opts());
    if kill_core {
        core.wait_for_log_after(
            mark,
            "source server changed; resuming by GTID",
            Duration::from_secs(30),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        core.kill();
        core = s.core("fo1-after-kill", 6000);
    }

    // Then the task follows the new primary within seconds: its context
    // belongs to the new primary and counts rows committed there
    let events_before = s.context().await.expect("context")["events"]
        .as_u64()
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let followed = loop {
        let ctx = s.context().await.expect("context");
        if ctx["server"]["id"] == "server_id:2"
            && ctx["events"].as_u64().unwrap_or(0) > events_before
        {
            break promoted.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no row from the new primary acknowledged 30 s after the promotion; context {ctx}; core log:\n{}",
            core.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = writer.committed();
    let (tried, failures) = writer.finish().await;

    // and every row of the new primary is in Kafka exactly once
    let truth = truth(&pair, &s).await;
    let messages = read_until_complete(stack, &s.topic, &truth, Duration::from_secs(30)).await;
    let seen = inserted(&messages);
    let (missing, dup, extra) = compare(&truth, &seen);
    println!(
        "source failover (Core killed after it: {kill_core}): time to follow {} ms after promotion (promoted {} ms after the kill); rows {} (new primary), {} transactions committed before the kill, {} after; ids tried {tried}, writer failures {failures}; lost {}, duplicated {}, not in the new primary {}",
        followed.as_millis(),
        killed.elapsed().as_millis() - promoted.elapsed().as_millis(),
        truth.len(),
        before_kill,
        after - before_kill,
        missing.len(),
        dup.len(),
        extra.len()
    );
    assert!(
        missing.is_empty() && dup.is_empty() && extra.is_empty(),
        "lost {missing:?}, duplicated {dup:?}, not in the new primary {extra:?}"
    );
    assert!(
        after > before_kill,
        "the writer committed nothing on the new primary"
    );
    assert!(
        followed < Duration::from_secs(15),
        "followed after {followed:?}"
    );
    // the context now belongs to the new primary
    let ctx = s.context().await.expect("context");
    assert_eq!(ctx["server"]["id"], "server_id:2", "{ctx}");
    core.stop().await;
}

/// Bumps the control's accept_gap counter, as `replicatorctl task accept-gap` does.
async fn accept_gap(s: &Scenario) {
    let path = s.layout.control(&s.task_ref());
    let (data, version) = s.zk.get(&path).await.unwrap().expect("control exists");
    let mut c: Control = if data.is_empty() {
        Control::default()
    } else {
        serde_json::from_slice(&data).unwrap()
    };
    c.accept_gap += 1;
    s.zk.client()
        .set_data(&path, &serde_json::to_vec(&c).unwrap(), Some(version))
        .await
        .unwrap();
}

async fn insert(
    db: &replicator_tests::mariadb_pair::MariaDb,
    s: &Scenario,
    ids: std::ops::RangeInclusive<i64>,
) {
    let mut conn = db.conn().await.expect("connect");
    for id in ids {
        conn.query_drop(format!(
            "INSERT INTO `{}`.`{}` (id, v, txn, note) VALUES ({id}, 0, {id}, 'row')",
            s.db, s.table
        ))
        .await
        .expect("insert");
    }
    let _ = conn.disconnect().await;
}

fn seq_of(gtid_pos: &str) -> u64 {
    gtid_pos
        .split(',')
        .find(|g| g.starts_with("0-"))
        .and_then(|g| g.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_a_lagging_replica_then_accepts_the_gap() {
    let shared = shared_stack!();
    // Given a task on a primary whose replica stopped applying
    let mut pair = start_pair().await;
    let stack = shared.with_mysql(pair.primary.port).leak();
    let s = Scenario::new(stack, "fogap").await;
    s.put_config(config_with_hosts(
        &s,
        &[pair.primary.addr(), pair.replica.addr()],
    ))
    .await;
    let mut core = s.core("fo2", 6000);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    insert(&pair.primary, &s, 1..=3).await;
    s.wait_messages(3, Duration::from_secs(30)).await;
    assert!(pair.replica_caught_up(Duration::from_secs(20)).await);
    let replica_at = seq_of(&pair.replica.gtid_binlog_pos().await);
    pair.replica.sql("STOP SLAVE").await;
    // the task publishes 4 more transactions the replica never gets
    insert(&pair.primary, &s, 4..=7).await;
    let primary_at = seq_of(&pair.primary.gtid_binlog_pos().await);
    s.wait_messages(7, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seq_of(s.context().await.unwrap()["gtid"].as_str().unwrap_or("")) < primary_at {
        assert!(
            Instant::now() < deadline,
            "context never reached 0-1-{primary_at}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // When the primary dies and the lagging replica is promoted
    pair.kill_primary();
    pair.promote_replica().await;

    // Then the task stops with a definite error naming the missing GTIDs
    let want = format!("lacks transactions 0-*-{}..={}", replica_at + 1, primary_at);
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = loop {
        let err = s
            .instances()
            .await
            .into_iter()
            .find(|(_, i)| i.state == InstanceState::Running)
            .and_then(|(_, i)| i.error);
        if let Some(e) = err.filter(|e| e.contains("source failover")) {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no failover error within 30 s; core log:
{}",
            core.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("refusal: {error}");
    assert!(
        error.contains(&want),
        "{error}
want: {want}"
    );
    assert!(error.contains("accept-gap"), "{error}");
    // and nothing was published twice or skipped, nothing of the new
    // server (whose own writes reuse the sequence numbers the task published)
    insert(&pair.replica, &s, 100..=102).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = inserted(&stack.read_topic(&s.topic).await);
    let expected: BTreeSet<i64> = (1..=7).collect();
    assert_eq!(
        compare(&expected, &seen),
        (vec![], vec![], vec![]),
        "{seen:?}"
    );

    // When an operator accepts the gap
    let mark = core.log_mark();
    accept_gap(&s).await;
    core.wait_for_log_after(
        mark,
        "source server changed; resuming by GTID",
        Duration::from_secs(30),
    )
    .await;
    core.wait_for_log_after(mark, "replication starts", Duration::from_secs(30))
        .await;
    insert(&pair.replica, &s, 103..=104).await;
    // Then the task resumes on the new server from where it is now: its rows
    // written from here on arrive once each
    let want: BTreeSet<i64> = (1..=7).chain(103..=104).collect();
    let messages = read_until_complete(stack, &s.topic, &want, Duration::from_secs(30)).await;
    let seen = inserted(&messages);
    assert_eq!(
        compare(&want, &seen),
        (vec![], vec![], vec![]),
        "{seen:?}
core log:
{}",
        core.tail(40)
    );
    let ctx = s.context().await.expect("context");
    assert_eq!(ctx["server"]["id"], "server_id:2", "{ctx}");
    assert_eq!(ctx["accepted_gap"], 1, "{ctx}");
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_list_update_takes_effect_live() {
    let shared = shared_stack!();
    // Given a task reading the primary alone
    let pair = start_pair().await;
    let stack = shared.with_mysql(pair.primary.port).leak();
    let s = Scenario::new(stack, "fohosts").await;
    s.put_config(config_with_hosts(&s, &[pair.primary.addr()]))
        .await;
    let mut core = s.core("fo3", 6000);
    core.wait_for_log("replication starts", Duration::from_secs(30))
        .await;
    insert(&pair.primary, &s, 1..=3).await;
    s.wait_messages(3, Duration::from_secs(30)).await;
    assert!(pair.replica_caught_up(Duration::from_secs(20)).await);

    // When its host list is updated to the replica (what `replicatorctl task
    // update` writes), with the Core running
    let mark = core.log_mark();
    let updated = Instant::now();
    s.put_config(config_with_hosts(&s, &[pair.replica.addr()]))
        .await;
    core.wait_for_log_after(
        mark,
        "source server changed; resuming by GTID",
        Duration::from_secs(30),
    )
    .await;
    let switched = updated.elapsed();
    insert(&pair.primary, &s, 4..=6).await;

    // Then the task reads the replica from then on (the rows written on the
    // primary arrive through the replica's binlog), each row once
    let want: BTreeSet<i64> = (1..=6).collect();
    let messages = read_until_complete(stack, &s.topic, &want, Duration::from_secs(30)).await;
    assert_eq!(
        compare(&want, &inserted(&messages)),
        (vec![], vec![], vec![]),
        "core log:\n{}",
        core.tail(40)
    );
    let ctx = s.context().await.expect("context");
    assert_eq!(ctx["server"]["id"], "server_id:2", "{ctx}");
    println!(
        "host list update: reading the new server {} ms after the config write",
        switched.as_millis()
    );
    core.stop().await;
}
