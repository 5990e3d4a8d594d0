//! Crash takeovers on topics whose partitions hold little or nothing
//! (issue 14): the RUNNING Core is SIGKILLed right after a few rows were
//! written (some not yet delivered), a STANDBY takes over and must read the
//! topic's tail whatever each partition holds: nothing, only another task's
//! messages, only a DDL message, fewer keys than partitions, a topic created
//! but never written. Every row must then arrive exactly once, within a bound
//! far below the tail read's own 30 s limit (the bug stalled forever).
//!
//! Then the same with small data at group scale: ten cold tasks on three
//! Cores, one to three rows per table, default partition count, two Cores
//! killed one after the other; and a hot task killed twice.

mod support;

use replicator_common::message::{POSITION_HEADER, TASK_HEADER};
use replicator_common::nodes::{InstanceInfo, InstanceState};
use replicator_common::paths::{Layout, TaskRef};
use replicator_common::zk::Zk;
use replicator_tests::{shared_stack, unique_name, unique_root, Process, Stack};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{exactly_once, Scenario};

const SESSION_MS: u64 = 1500;
/// Longest a takeover may take until every row is in Kafka: session timeout,
/// scan interval, start-up and tail read, with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

/// Several Cores per test: one test at a time keeps the bound meaningful.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the topic holds when the RUNNING Core is killed.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    partitions: i32,
    /// Create the topic before the task starts (otherwise the Core creates it).
    precreate: bool,
    /// One message of another task in every partition before the task starts.
    foreign: bool,
    /// An ALTER TABLE (one `ddl` message) delivered before the kill.
    ddl: bool,
    /// Rows written right before the kill, and after it.
    before: i64,
    after: i64,
}

async fn insert_rows(stack: &Stack, db: &str, table: &str, ids: std::ops::RangeInclusive<i64>) {
    for id in ids {
        stack
            .sql(&format!(
                "INSERT INTO `{db}`.`{table}` (id, v, txn, note) VALUES ({id}, 0, {id}, 'row {id}')"
            ))
            .await;
    }
}

/// Milliseconds from `since_ms` to the newest message's timestamp (when
/// Kafka received the last row), not counting the time the test takes to read.
fn delivered_after(msgs: &[replicator_tests::Message], since_ms: i64) -> i64 {
    msgs.iter()
        .filter_map(|m| m.timestamp_ms)
        .max()
        .map_or(-1, |t| t - since_ms)
}

async fn wait_instances(s: &Scenario, n: usize) {
    let t0 = Instant::now();
    while s.instances().await.len() < n {
        assert!(t0.elapsed() < BOUND, "{n} instances not registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one shape: two Cores, SIGKILL the RUNNING one, check every row.
async fn takeover(prefix: &str, shape: Shape) {
    let _serial = SERIAL.lock().await;
    let stack = shared_stack!();
    let s = Scenario::new(stack, prefix).await;
    let mut cfg = s.config();
    cfg["sink"]["partitions"] = json!(shape.partitions);
    s.put_config(cfg).await;
    let mut others = 0;
    if shape.precreate || shape.foreign {
        stack.create_topic(&s.topic, shape.partitions).await;
    }
    if shape.foreign {
        for p in 0..shape.partitions {
            stack
                .produce_with_headers(
                    &s.topic,
                    Some(p),
                    Some(b"[\"x\"]"),
                    b"{\"type\":\"update\",\"after\":{\"id\":-1}}",
                    &[
                        (TASK_HEADER, b"another-task"),
                        (POSITION_HEADER, b"mysql-bin.000001:4:0"),
                    ],
                )
                .await;
            others += 1;
        }
    }

    // Given a RUNNING Core and a STANDBY
    let mut h1 = s.core("h1", SESSION_MS);
    h1.wait_for_log("replication starts", BOUND).await;
    let mut h2 = s.core("h2", SESSION_MS);
    wait_instances(&s, 2).await;
    if shape.ddl {
        stack
            .sql(&format!(
                "ALTER TABLE `{}`.`{}` ADD COLUMN extra INT NULL",
                s.db, s.table
            ))
            .await;
        others += 1;
        s.wait_messages(others, BOUND).await;
    }

    // When rows are written and the RUNNING Core is killed at once
    insert_rows(stack, &s.db, &s.table, 1..=shape.before).await;
    h1.kill();
    let killed = replicator_common::now_ms();
    let n = shape.before + shape.after;
    insert_rows(stack, &s.db, &s.table, shape.before + 1..=n).await;

    // Then the standby takes over and every row arrives exactly once
    let msgs = stack
        .read_topic_until(&s.topic, others + n as usize, BOUND)
        .await;
    let took = delivered_after(&msgs, killed);
    let problems = exactly_once(&msgs, n);
    assert!(
        problems.is_empty() && msgs.len() == others + n as usize,
        "{shape:?}: {} messages, {problems:#?}\n{}",
        msgs.len(),
        h2.tail(30)
    );
    assert!(
        !h2.log_lines_matching("read topic tail").is_empty(),
        "the takeover after SIGKILL must read the topic tail\n{}",
        h2.tail(30)
    );
    println!(
        "takeover {prefix}: {shape:?}: last row in Kafka {took} ms after the kill; rows {n}, lost 0, duplicated 0"
    );
    h2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_with_empty_partitions() {
    let shape = Shape {
        partitions: 4,
        before: 1,
        after: 2,
        ..Shape::default()
    };
    takeover("empty", shape).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_with_partitions_holding_only_another_tasks_messages() {
    let shape = Shape {
        partitions: 4,
        foreign: true,
        before: 1,
        after: 1,
        ..Shape::default()
    };
    takeover("foreign", shape).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_with_only_a_ddl_message() {
    let shape = Shape {
        partitions: 4,
        ddl: true,
        before: 0,
        after: 2,
        ..Shape::default()
    };
    takeover("ddlonly", shape).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_with_more_partitions_than_keys() {
    let shape = Shape {
        partitions: 16,
        before: 2,
        after: 1,
        ..Shape::default()
    };
    takeover("wide", shape).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takeover_of_a_topic_created_but_never_written() {
    let shape = Shape {
        partitions: 4,
        precreate: true,
        before: 0,
        after: 3,
        ..Shape::default()
    };
    takeover("unwritten", shape).await;
}

/// A hot task with three Cores and a handful of rows, killed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_task_with_a_few_rows_survives_two_kills() {
    let _serial = SERIAL.lock().await;
    let stack = shared_stack!();
    let s = Scenario::new(stack, "hotfew").await;
    let mut cores: BTreeMap<String, Process> = BTreeMap::new();
    for h in ["h1", "h2", "h3"] {
        cores.insert(h.into(), s.core(h, SESSION_MS));
        if h == "h1" {
            cores
                .get_mut(h)
                .unwrap()
                .wait_for_log("replication starts", BOUND)
                .await;
        }
    }
    wait_instances(&s, 3).await;
    let mut written = 0;
    for (round, rows) in [2i64, 1, 3].into_iter().enumerate() {
        insert_rows(stack, &s.db, &s.table, written + 1..=written + rows).await;
        written += rows;
        let t0 = replicator_common::now_ms();
        if round < 2 {
            // The killed Core's node stays RUNNING until its session expires:
            // when its rows arrived before the kill, the next round must wait
            // for the takeover rather than pick the dead one again.
            let deadline = tokio::time::Instant::now() + BOUND;
            let running = loop {
                let h = s.running_host(BOUND).await;
                if cores.contains_key(&h) {
                    break h;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{h} (killed) still RUNNING"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            cores.get_mut(&running).unwrap().kill();
            cores.remove(&running);
        }
        let msgs = s.wait_messages(written as usize, BOUND).await;
        let problems = exactly_once(&msgs, written);
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        println!(
            "hot few rows, round {round}: {written} rows exactly once, the last in Kafka {} ms after the {}",
            delivered_after(&msgs, t0),
            if round < 2 { "kill" } else { "writes (no kill)" }
        );
    }
    for (_, mut c) in cores {
        c.stop().await;
    }
}

/// Ten cold tasks of one group on three Cores, one small table each.
struct SmallGroup {
    stack: &'static Stack,
    root: String,
    zk: Zk,
    layout: Layout,
    group: String,
    db: String,
    tasks: Vec<String>,
}

impl SmallGroup {
    async fn new(stack: &'static Stack, tasks: usize) -> SmallGroup {
        let root = unique_root();
        let zk = stack.zk(&root).await;
        let layout = zk.layout().clone();
        let db = stack.create_database("small").await;
        let group = unique_name("g");
        let start = stack.binlog_position().await;
        let server_id = 300_000 + rand::random::<u32>() % 1_000_000;
        let mut names = Vec::new();
        for i in 0..tasks {
            let name = format!("t{i}");
            stack
                .sql(&format!(
                    "CREATE TABLE `{db}`.`{name}` (id BIGINT PRIMARY KEY, v INT NOT NULL, txn BIGINT NOT NULL, note VARCHAR(40))"
                ))
                .await;
            // the default partition count: no "partitions" in the config
            let cfg = json!({
                "name": name,
                "group": group,
                "source": {"host": stack.mysql_host(), "port": stack.mysql_port(),
                           "user": stack.mysql_user(), "password": stack.mysql_password(),
                           "server_id": server_id + i as u32,
                           "include": [format!("{db}\\.{name}")],
                           "start": {"file": start.0, "pos": start.1},
                           "snapshot": "never"},
                "sink": {"brokers": stack.kafka_bootstrap(), "topic": "{database}.{table}"}
            });
            let path = layout.task(&TaskRef::cold(&group, &name).unwrap());
            zk.ensure_path(&path).await.unwrap();
            zk.client()
                .set_data(&path, cfg.to_string().as_bytes(), None)
                .await
                .unwrap();
            names.push(name);
        }
        SmallGroup {
            stack,
            root,
            zk,
            layout,
            group,
            db,
            tasks: names,
        }
    }

    fn core(&self, host: &str) -> Process {
        let session = SESSION_MS.to_string();
        let args = [
            "--group",
            &self.group,
            "--scan-interval-ms",
            "1000",
            "--zk-session-timeout-ms",
            &session,
        ];
        self.stack.core(&self.root, host, &args, &[])
    }

    /// Host of the single RUNNING instance of each task (tasks without one are left out).
    async fn running(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for t in &self.tasks {
            let dir = self
                .layout
                .instances(&TaskRef::cold(&self.group, t).unwrap());
            let mut hosts = Vec::new();
            for c in self.zk.children(&dir).await.unwrap_or_default() {
                if let Ok(Some((data, _))) = self.zk.get(&format!("{dir}/{c}")).await {
                    if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&data) {
                        if info.state == InstanceState::Running {
                            hosts.push(info.host);
                        }
                    }
                }
            }
            if hosts.len() == 1 {
                out.insert(t.clone(), hosts.remove(0));
            }
        }
        out
    }

    async fn wait_all_running(&self) -> BTreeMap<String, String> {
        let t0 = Instant::now();
        loop {
            let r = self.running().await;
            if r.len() == self.tasks.len() {
                return r;
            }
            assert!(
                t0.elapsed() < BOUND,
                "only {} tasks RUNNING: {r:?}",
                r.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes rows `from..from+k` into each table, k = 1..=3 by table and round.
    async fn write_round(&self, round: usize, written: &mut [i64]) {
        for (i, t) in self.tasks.iter().enumerate() {
            let k = 1 + ((i + round) % 3) as i64;
            let first = written[i] + 1;
            if k == 3 {
                // one multi-row transaction
                let values: Vec<String> = (first..first + k)
                    .map(|id| format!("({id}, 0, {id}, 'row {id}')"))
                    .collect();
                self.stack
                    .sql(&format!(
                        "INSERT INTO `{}`.`{t}` (id, v, txn, note) VALUES {}",
                        self.db,
                        values.join(",")
                    ))
                    .await;
            } else {
                insert_rows(self.stack, &self.db, t, first..=first + k - 1).await;
            }
            written[i] += k;
        }
    }

    /// Waits until every table's topic holds its rows; checks exactly once.
    /// Returns the newest message timestamp.
    async fn check(&self, written: &[i64], what: &str) -> i64 {
        let t0 = Instant::now();
        let mut newest = 0;
        for (i, t) in self.tasks.iter().enumerate() {
            let topic = format!("{}.{t}", self.db);
            let left = BOUND
                .saturating_sub(t0.elapsed())
                .max(Duration::from_secs(1));
            let msgs = self
                .stack
                .read_topic_until(&topic, written[i] as usize, left)
                .await;
            let problems = exactly_once(&msgs, written[i]);
            assert!(
                problems.is_empty(),
                "{what}: task {t}: {} rows, {} messages: {problems:#?}",
                written[i],
                msgs.len()
            );
            newest = newest.max(delivered_after(&msgs, 0));
        }
        newest
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_group_of_small_tables_survives_two_core_kills() {
    let _serial = SERIAL.lock().await;
    let stack = shared_stack!();
    let g = SmallGroup::new(stack, 10).await;
    let mut cores: BTreeMap<String, Process> = ["c1", "c2", "c3"]
        .into_iter()
        .map(|h| (h.to_string(), g.core(h)))
        .collect();
    g.wait_all_running().await;
    let mut written = vec![0i64; g.tasks.len()];

    for round in 0..3 {
        let running = g.wait_all_running().await;
        g.write_round(round, &mut written).await;
        let t0 = replicator_common::now_ms();
        if round < 2 {
            // the Core running the most tasks dies right after the writes
            let mut load: BTreeMap<&str, usize> = BTreeMap::new();
            for h in running.values() {
                *load.entry(h.as_str()).or_default() += 1;
            }
            let (victim, n) = load.iter().max_by_key(|(_, n)| **n).unwrap();
            let victim = victim.to_string();
            println!("round {round}: killing {victim}, which runs {n} tasks");
            cores.get_mut(&victim).unwrap().kill();
            cores.remove(&victim);
            // more rows while its tasks move
            g.write_round(round + 10, &mut written).await;
        }
        let newest = g.check(&written, &format!("round {round}")).await;
        println!(
            "cold small tables, round {round}: {} rows in {} tasks exactly once, the last in Kafka {} ms after the {}",
            written.iter().sum::<i64>(),
            g.tasks.len(),
            newest - t0,
            if round < 2 { "kill" } else { "writes (no kill)" }
        );
    }
    for (_, mut c) in cores {
        c.stop().await;
    }
}
