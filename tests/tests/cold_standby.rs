//! Cold standby against the real stack (docs/design.md §5): 30 tasks of one group,
//! each a binlog stream of its own table into its own topic, on three Cores:
//! all claimed within one scan interval, 10/10/10, each exactly once; a
//! fourth Core rebalances the group to 8/8/7/7; a killed Core's tasks run
//! again elsewhere within one scan interval plus the session timeout; and no
//! row is lost or duplicated while a writer inserts into all 30 tables
//! throughout. Then the group's lifecycle: a deleted task stops, an added
//! task is picked up on the next scan, a changed config restarts the task.

mod support;

use replicator_common::nodes::{CoreInfo, InstanceInfo, InstanceState};
use replicator_common::paths::{Layout, TaskRef};
use replicator_common::zk::{Zk, ZkClientError};
use replicator_tests::{shared_stack, unique_name, unique_root, Message, Process, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{counter_in_order, exactly_once, Writer};

fn now_ms() -> i64 {
    replicator_common::now_ms()
}

const SCAN_MS: u64 = 1000;
const SESSION_MS: u64 = 1500;
/// Slack on top of the protocol's own bounds: process start-up, debug
/// builds, four Cores, MariaDB, Tansu and ZooKeeper sharing two CPUs.
const MARGIN_MS: u64 = 1000;
const WAIT: Duration = Duration::from_secs(30);
/// Rows per transaction of every writer.
const ROWS_PER_TXN: i64 = 2;

/// The two tests below each start several Cores; one at a time keeps the
/// timings meaningful on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One group of cold tasks on its own root, one table and topic per task.
struct Group {
    stack: &'static Stack,
    root: String,
    zk: Zk,
    layout: Layout,
    name: String,
    db: String,
    server_id: u32,
    start: (String, u64),
}

impl Group {
    async fn new(stack: &'static Stack, prefix: &str) -> Group {
        let root = unique_root();
        let zk = stack.zk(&root).await;
        let layout = zk.layout().clone();
        let db = stack.create_database(prefix).await;
        let start = stack.binlog_position().await;
        Group {
            stack,
            root,
            zk,
            layout,
            name: unique_name("g"),
            db,
            server_id: 200_000 + rand::random::<u32>() % 1_000_000,
            start,
        }
    }

    fn task(&self, name: &str) -> TaskRef {
        TaskRef::cold(&self.name, name).unwrap()
    }

    async fn create_table(&self, table: &str) {
        self.stack
            .sql(&format!(
                "CREATE TABLE `{}`.`{table}` (id BIGINT PRIMARY KEY, v INT NOT NULL, txn BIGINT NOT NULL, note VARCHAR(40))",
                self.db
            ))
            .await;
    }

    fn topic(&self, table: &str) -> String {
        format!("{}.{table}", self.db)
    }

    /// Task `name` replicating table `name` from the group's start position.
    fn config(&self, name: &str, n: u32) -> Value {
        json!({
            "name": name,
            "group": self.name,
            "source": {"host": self.stack.mysql_host(), "port": self.stack.mysql_port(),
                       "user": self.stack.mysql_user(), "password": self.stack.mysql_password(),
                       "server_id": self.server_id + n,
                       "include": [format!("{}\\.{name}", self.db)],
                       "start": {"file": self.start.0, "pos": self.start.1},
                       "snapshot": "never"},
            "sink": {"brokers": self.stack.kafka_bootstrap(), "topic": "{database}.{table}",
                     "partitions": 1}
        })
    }

    /// Writes a task config, creating the node when missing.
    async fn put(&self, name: &str, cfg: &Value) {
        let path = self.layout.task(&self.task(name));
        self.zk.ensure_path(&path).await.unwrap();
        self.zk
            .client()
            .set_data(&path, cfg.to_string().as_bytes(), None)
            .await
            .unwrap();
    }

    /// Deletes a task and everything below it in one multi-op, as the Server does.
    async fn delete(&self, name: &str) {
        let path = self.layout.task(&self.task(name));
        for _ in 0..20 {
            let mut nodes = vec![path.clone()];
            let mut i = 0;
            while i < nodes.len() {
                let p = nodes[i].clone();
                for c in self.zk.children(&p).await.unwrap() {
                    nodes.push(format!("{p}/{c}"));
                }
                i += 1;
            }
            let mut multi = self.zk.client().new_multi_writer();
            for n in nodes.iter().rev() {
                multi.add_delete(n, None).unwrap();
            }
            match multi.commit().await.map_err(ZkClientError::from) {
                Ok(_) => return,
                Err(ZkClientError::NotEmpty | ZkClientError::NoNode) => continue,
                Err(e) => panic!("delete {path}: {e}"),
            }
        }
        panic!("could not delete {path}");
    }

    fn core(&self, host: &str) -> Process {
        let (scan, session) = (SCAN_MS.to_string(), SESSION_MS.to_string());
        let args = [
            "--group",
            &self.name,
            "--scan-interval-ms",
            &scan,
            "--zk-session-timeout-ms",
            &session,
        ];
        self.stack.core(&self.root, host, &args, &[])
    }

    /// Every task of the group with its instance nodes.
    async fn snapshot(&self) -> Snapshot {
        let mut tasks = BTreeMap::new();
        let group = self.layout.group(&self.name).unwrap();
        for t in self.zk.children(&group).await.unwrap() {
            let dir = self.layout.instances(&self.task(&t));
            let mut infos = Vec::new();
            for c in self.zk.children(&dir).await.unwrap() {
                if let Some((data, _)) = self.zk.get(&format!("{dir}/{c}")).await.unwrap() {
                    if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&data) {
                        infos.push(info);
                    }
                }
            }
            tasks.insert(t, infos);
        }
        Snapshot { tasks }
    }

    /// Polls until `cond` holds for a snapshot; returns it and the time it took.
    async fn wait_snapshot(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Snapshot) -> bool,
    ) -> (Snapshot, Duration) {
        let t0 = Instant::now();
        loop {
            let s = self.snapshot().await;
            if cond(&s) {
                return (s, t0.elapsed());
            }
            assert!(
                t0.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; spread {:?}, not running {:?}",
                s.spread(),
                s.not_running()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The group's tasks each Core reports in `/cores/<host>`.
    async fn core_tasks(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let prefix = format!("{}/", self.name);
        for c in self.zk.children(&self.layout.cores()).await.unwrap() {
            let path = self.layout.core(&c).unwrap();
            if let Some((data, _)) = self.zk.get(&path).await.unwrap() {
                let info: CoreInfo = serde_json::from_slice(&data).unwrap();
                assert_eq!(info.groups, std::slice::from_ref(&self.name));
                let tasks = info
                    .tasks
                    .iter()
                    .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
                    .collect();
                out.insert(info.host, tasks);
            }
        }
        out
    }

    /// Waits until every Core's `/cores` node lists exactly the tasks it runs.
    async fn wait_core_infos_match(&self, snap: &Snapshot) {
        let want = snap.by_host();
        let t0 = Instant::now();
        loop {
            let got = self.core_tasks().await;
            if got == want {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "/cores says {got:?}, instances say {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Snapshot {
    tasks: BTreeMap<String, Vec<InstanceInfo>>,
}

impl Snapshot {
    fn running_hosts(&self, task: &str) -> Vec<&str> {
        self.tasks[task]
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| i.host.as_str())
            .collect()
    }
    /// When the last of `tasks` became RUNNING (its instance's `since_ms`).
    fn last_running_since(&self, tasks: &[String]) -> i64 {
        tasks
            .iter()
            .flat_map(|t| &self.tasks[t])
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| i.since_ms)
            .max()
            .expect("running instances")
    }
    /// Every task has exactly one instance, RUNNING, and none is on `not_on`.
    fn all_running_once(&self, n: usize, not_on: Option<&str>) -> bool {
        self.tasks.len() == n
            && self.tasks.iter().all(|(t, infos)| {
                let hosts = self.running_hosts(t);
                infos.len() == 1 && hosts.len() == 1 && Some(hosts[0]) != not_on
            })
    }
    fn not_running(&self) -> Vec<&String> {
        self.tasks
            .keys()
            .filter(|t| self.running_hosts(t).len() != 1)
            .collect()
    }
    /// Tasks per host.
    fn by_host(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.tasks.keys() {
            for h in self.running_hosts(t) {
                out.entry(h.to_string()).or_default().push(t.clone());
            }
        }
        out
    }
    fn spread(&self) -> BTreeMap<String, usize> {
        self.by_host()
            .into_iter()
            .map(|(h, t)| (h, t.len()))
            .collect()
    }
    fn counts(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.spread().into_values().collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }
}

/// Snapshots the group every 200 ms and records any task RUNNING twice.
struct Watchdog {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    handle: tokio::task::JoinHandle<usize>,
}

impl Watchdog {
    fn start(g: Arc<Group>) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let handle = tokio::spawn(async move {
            let mut snapshots = 0;
            while !s.load(Ordering::SeqCst) {
                let snap = g.snapshot().await;
                for t in snap.tasks.keys() {
                    let hosts = snap.running_hosts(t);
                    if hosts.len() > 1 {
                        v.lock().unwrap().push(format!("{t} RUNNING on {hosts:?}"));
                    }
                }
                snapshots += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            snapshots
        });
        Watchdog { stop, seen, handle }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let n = self.handle.await.unwrap();
        let seen = self.seen.lock().unwrap().clone();
        (n, seen)
    }
}

/// Reads the topics (ten at a time) until each holds at least its minimum.
async fn read_topics(stack: &'static Stack, want: &[(String, usize)]) -> Vec<Vec<Message>> {
    let mut out = Vec::new();
    for chunk in want.chunks(10) {
        let reads = chunk
            .iter()
            .map(|(topic, n)| stack.read_topic_until(topic, *n, Duration::from_secs(60)));
        out.extend(futures::future::join_all(reads).await);
    }
    out
}

/// Ids of the inserts in `msgs`, in order (a topic also holds the table's DDL).
fn inserted(msgs: &[Message]) -> Vec<i64> {
    msgs.iter()
        .map(|m| m.value_json())
        .filter(|v| v["type"] == "insert")
        .map(|v| v["after"]["id"].as_i64().unwrap())
        .collect()
}

/// Messages a writer's table produces: its CREATE TABLE (the tasks start
/// before it), the counter row, `rows` inserts and one counter update per
/// transaction of 2 rows.
fn expected_messages(rows: i64) -> usize {
    (2 + rows + rows / ROWS_PER_TXN) as usize
}

/// Checks the rows of a writer's table in `msgs`: every insert and every
/// counter update exactly once and in order.
fn check_table(what: &str, msgs: &[Message], txns_before: i64, rows: i64) -> Vec<String> {
    let updates = msgs
        .iter()
        .map(|m| m.value_json())
        .filter(|v| v["type"] == "update")
        .count() as i64;
    let mut problems = exactly_once(msgs, rows);
    if msgs.len() != expected_messages(rows) {
        problems.push(format!(
            "{} messages, {} expected",
            msgs.len(),
            expected_messages(rows)
        ));
    }
    if updates < txns_before {
        problems.push(format!(
            "{updates} counter updates < {txns_before} committed"
        ));
    }
    problems.extend(counter_in_order(msgs, updates));
    problems
        .into_iter()
        .map(|p| format!("{what}: {p}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_tasks_spread_rebalance_and_fail_over_exactly_once() {
    let stack = shared_stack!();
    let _serial = SERIAL.lock().await;
    // Given 30 tables and 30 tasks of one group, each replicating its table
    let g = Arc::new(Group::new(stack, "cold30").await);
    let names: Vec<String> = (0..30).map(|i| format!("t{i:02}")).collect();
    for (i, t) in names.iter().enumerate() {
        g.create_table(t).await;
        g.put(t, &g.config(t, i as u32)).await;
    }
    let watchdog = Watchdog::start(g.clone());

    // When three Cores start together
    let mut cores: BTreeMap<String, Process> = BTreeMap::new();
    for h in ["c1", "c2", "c3"] {
        cores.insert(h.into(), g.core(h));
    }
    let started = now_ms();

    // Then all 30 run within one scan interval, each exactly once, 10/10/10
    let (snap, seen) = g
        .wait_snapshot("10/10/10", WAIT, |s| {
            s.all_running_once(30, None) && s.counts() == [10, 10, 10]
        })
        .await;
    let claimed = snap.last_running_since(&names) - started;
    eprintln!(
        "3 cores: all 30 RUNNING {claimed} ms after the last core started (seen by polling after {} ms), 10/10/10 at once",
        seen.as_millis()
    );
    assert!(
        claimed <= (SCAN_MS + MARGIN_MS) as i64,
        "all claimed only after {claimed} ms"
    );
    g.wait_core_infos_match(&snap).await;

    // with a writer inserting into all 30 tables from now to the end
    let writers: Vec<Writer> = names
        .iter()
        .map(|t| {
            Writer::start(
                stack,
                &g.db,
                t,
                ROWS_PER_TXN as usize,
                Duration::from_millis(250),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // When a fourth Core joins
    let before = snap.by_host();
    cores.insert("c4".into(), g.core("c4"));
    let joined = now_ms();
    let (snap, seen) = g
        .wait_snapshot("8/8/7/7", WAIT, |s| {
            s.all_running_once(30, None) && s.counts() == [8, 8, 7, 7]
        })
        .await;
    // Then the busiest hand over their excess (by graceful switchover): 8/8/7/7 by host order
    let moved = snap.by_host()["c4"].clone();
    let rebalanced = snap.last_running_since(&moved) - joined;
    eprintln!(
        "4th core: 8/8/7/7 {rebalanced} ms after it started (seen after {} ms)",
        seen.as_millis()
    );
    let spread = snap.spread();
    assert_eq!(
        spread.values().copied().collect::<Vec<_>>(),
        [8, 8, 7, 7],
        "{spread:?}"
    );
    for (h, tasks) in snap.by_host() {
        if h != "c4" {
            assert!(
                tasks.iter().all(|t| before[&h].contains(t)),
                "{h} only gave tasks away"
            );
        }
    }
    g.wait_core_infos_match(&snap).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // When one Core is killed
    let victim = "c2";
    let orphans = snap.by_host()[victim].clone();
    cores.get_mut(victim).unwrap().kill();
    let killed = now_ms();
    // Then its tasks run again elsewhere within a scan interval plus the session timeout
    let (snap, seen) = g
        .wait_snapshot("the killed core's tasks RUNNING elsewhere", WAIT, |s| {
            s.all_running_once(30, Some(victim))
        })
        .await;
    let reclaimed = snap.last_running_since(&orphans) - killed;
    eprintln!(
        "kill: {} tasks of {victim} RUNNING elsewhere {reclaimed} ms after SIGKILL (seen after {} ms; scan {SCAN_MS} ms + session {SESSION_MS} ms)",
        orphans.len(),
        seen.as_millis()
    );
    assert!(
        reclaimed <= (SCAN_MS + SESSION_MS + MARGIN_MS) as i64,
        "reclaimed only after {reclaimed} ms"
    );
    assert_eq!(snap.counts(), [10, 10, 10], "{:?}", snap.spread());
    g.wait_core_infos_match(&snap).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Then no row of any table was lost or duplicated
    let mut totals = Vec::new();
    for w in writers {
        let txns = w.txns();
        totals.push((txns, w.finish().await));
    }
    let want: Vec<(String, usize)> = names
        .iter()
        .zip(&totals)
        .map(|(t, (_, rows))| (g.topic(t), expected_messages(*rows)))
        .collect();
    let topics = read_topics(stack, &want).await;
    let mut problems = Vec::new();
    for ((t, (txns, rows)), msgs) in names.iter().zip(&totals).zip(&topics) {
        problems.extend(check_table(t, msgs, *txns, *rows));
    }
    let rows: i64 = totals.iter().map(|(_, r)| r).sum();
    let (snapshots, doubles) = watchdog.finish().await;
    eprintln!(
        "{rows} rows in 30 tables, {} messages, {snapshots} watchdog snapshots",
        topics.iter().map(Vec::len).sum::<usize>()
    );
    assert!(doubles.is_empty(), "tasks RUNNING twice: {doubles:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    for (_, mut c) in cores {
        c.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_task_stops_added_task_starts_changed_task_restarts() {
    let stack = shared_stack!();
    let _serial = SERIAL.lock().await;
    // Given two Cores of a group with tasks a, b and c
    let g = Group::new(stack, "coldlife").await;
    for (i, t) in ["a", "b", "c", "d"].iter().enumerate() {
        g.create_table(t).await;
        if *t != "d" {
            g.put(t, &g.config(t, i as u32)).await;
        }
    }
    let mut cores = [g.core("l1"), g.core("l2")];
    g.wait_snapshot("3 tasks RUNNING", WAIT, |s| s.all_running_once(3, None))
        .await;
    let writer = Writer::start(
        stack,
        &g.db,
        "a",
        ROWS_PER_TXN as usize,
        Duration::from_millis(100),
    );
    stack
        .sql(&format!(
            "INSERT INTO `{}`.b (id, v, txn, note) VALUES (1, 1, 1, 'before')",
            g.db
        ))
        .await;
    let got = stack
        .read_topic_until(&g.topic("b"), 2, Duration::from_secs(30))
        .await;
    assert_eq!(inserted(&got), [1], "b replicates");

    // When b is deleted from the group
    let snap = g.snapshot().await;
    let b_host = snap.running_hosts("b")[0].to_string();
    let b_core = usize::from(b_host == "l2");
    let t0 = Instant::now();
    g.delete("b").await;
    // Then it stops: no instance, not in /cores, no more rows, not re-created
    g.wait_snapshot("b gone", WAIT, |s| {
        !s.tasks.contains_key("b") && s.all_running_once(2, None)
    })
    .await;
    loop {
        let listed = g.core_tasks().await;
        if !listed.values().any(|ts| ts.iter().any(|t| t == "b")) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "/cores still lists b: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = t0.elapsed();
    stack
        .sql(&format!(
            "INSERT INTO `{}`.b (id, v, txn, note) VALUES (2, 2, 2, 'after')",
            g.db
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(3 * SCAN_MS)).await;
    let b_msgs = stack.read_topic(&g.topic("b")).await;
    assert_eq!(
        inserted(&b_msgs),
        [1],
        "nothing replicated after the delete"
    );
    let b_path = g.layout.task(&g.task("b"));
    assert!(
        g.zk.get(&b_path).await.unwrap().is_none(),
        "no Core re-created {b_path}"
    );
    cores[b_core]
        .wait_for_log(
            "task was deleted|task left the group",
            Duration::from_secs(5),
        )
        .await;
    eprintln!(
        "delete: b stopped (gone from /cores) {} ms after the delete",
        stopped.as_millis()
    );

    // When d is added
    let t0 = now_ms();
    g.put("d", &g.config("d", 3)).await;
    // Then a Core picks it up at its next scan
    let (snap, _) = g
        .wait_snapshot("d RUNNING", WAIT, |s| s.all_running_once(3, None))
        .await;
    let picked = snap.last_running_since(&["d".to_string()]) - t0;
    eprintln!("add: d RUNNING {picked} ms after its config was written");
    assert!(
        picked <= (SCAN_MS + MARGIN_MS) as i64,
        "d picked up only after {picked} ms"
    );
    stack
        .sql(&format!(
            "INSERT INTO `{}`.d (id, v, txn, note) VALUES (1, 1, 1, 'added')",
            g.db
        ))
        .await;
    let got = stack
        .read_topic_until(&g.topic("d"), 2, Duration::from_secs(30))
        .await;
    assert_eq!(inserted(&got), [1], "d replicates");

    // When a's config changes (new topic) while its writer runs
    let a_host = g.snapshot().await.running_hosts("a")[0].to_string();
    let marks: Vec<usize> = cores.iter().map(|c| c.log_mark()).collect();
    let mut cfg = g.config("a", 0);
    cfg["sink"]["topic"] = json!("{database}.{table}_v2");
    g.put("a", &cfg).await;
    // Then the task restarts with it, on the same Core, and its rows move to the new topic
    let a_core = usize::from(a_host == "l2");
    let mark = marks[a_core];
    cores[a_core]
        .wait_for_log_after(
            mark,
            "task config changed; restarting from the context",
            WAIT,
        )
        .await;
    cores[a_core]
        .wait_for_log_after(mark, "replication starts task=\\S+/a ", WAIT)
        .await;
    let snap = g.snapshot().await;
    assert!(snap.all_running_once(3, None));
    assert_eq!(
        snap.running_hosts("a"),
        [a_host.as_str()],
        "restarted in place"
    );
    let other = &cores[1 - a_core];
    assert!(
        !other.log()[marks[1 - a_core]..].contains("task config changed"),
        "only the Core running a restarts it"
    );
    let new_topic = format!("{}_v2", g.topic("a"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let txns = writer.txns();
    let rows = writer.finish().await;
    let old = stack.read_topic(&g.topic("a")).await;
    let new = stack
        .read_topic_until(
            &new_topic,
            expected_messages(rows).saturating_sub(old.len()),
            Duration::from_secs(30),
        )
        .await;
    let mut all = old.clone();
    all.extend(new.iter().cloned());
    // the counter row went to the old topic before the change: `all` holds both in order
    let problems = check_table("a", &all, txns, rows);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        new.iter().any(|m| m.value_json()["type"] == "insert"),
        "rows written after the change are in the new topic"
    );
    eprintln!(
        "change: {} messages before, {} after the restart, {rows} rows exactly once",
        old.len(),
        new.len()
    );
    for c in cores.iter_mut() {
        c.stop().await;
    }
}
