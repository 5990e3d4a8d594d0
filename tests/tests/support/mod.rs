//! Helpers shared by the Core scenario tests: a task on its own ZooKeeper
//! root, database and topic; Cores to start; a writer committing
//! multi-row transactions; exactly-once checks over a topic.

#![allow(dead_code)]

pub mod faults;

use replicator_common::message::EPOCH_HEADER;
use replicator_common::nodes::{Control, InstanceInfo, InstanceState};
use replicator_common::paths::{Layout, TaskRef};
use replicator_common::zk::Zk;
use replicator_tests::{unique_name, unique_root, Message, Process, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One task of a test: root, database, table, topic.
pub struct Scenario {
    pub stack: &'static Stack,
    pub root: String,
    pub layout: Layout,
    pub zk: Zk,
    pub task: String,
    pub db: String,
    pub table: String,
    pub topic: String,
}

impl Scenario {
    /// A database with table `t (id BIGINT PRIMARY KEY, v INT, txn BIGINT)` and
    /// a task replicating it (start: current) into its own topic.
    pub async fn new(stack: &'static Stack, prefix: &str) -> Scenario {
        let root = unique_root();
        let zk = stack.zk(&root).await;
        let layout = zk.layout().clone();
        let db = stack.create_database(prefix).await;
        let table = "t".to_string();
        stack
            .sql(&format!(
                "CREATE TABLE `{db}`.`{table}` (id BIGINT PRIMARY KEY, v INT NOT NULL, txn BIGINT NOT NULL, note VARCHAR(40))"
            ))
            .await;
        let task = unique_name(prefix);
        let topic = format!("{db}.{table}");
        let s = Scenario {
            stack,
            root,
            layout,
            zk,
            task,
            db,
            table,
            topic,
        };
        s.put_config(s.config()).await;
        s
    }

    /// [`Scenario::new`] with a task that wants one Core (`"redundancy":
    /// 1`), so that a lone Core raises no `no_standby` alert.
    pub async fn single_core(stack: &'static Stack, prefix: &str) -> Scenario {
        let s = Scenario::new(stack, prefix).await;
        let mut cfg = s.config();
        cfg["redundancy"] = json!(1);
        s.put_config(cfg).await;
        s
    }

    pub fn task_ref(&self) -> TaskRef {
        TaskRef::hot(&self.task).unwrap()
    }

    /// The task config this scenario uses: the stream only (`"snapshot":
    /// "never"`), so that a test counting messages from where the stream
    /// starts gets no `read` copies of rows it wrote while the task started;
    /// snapshot tests ask for one.
    pub fn config(&self) -> Value {
        json!({
            "name": self.task,
            "source": {"host": self.stack.mysql_host(), "port": self.stack.mysql_port(),
                       "user": self.stack.mysql_user(), "password": self.stack.mysql_password(),
                       "server_id": 1000 + (rand_u32() % 100_000),
                       "include": [format!("{}\\..*", regex_escape(&self.db))], "start": "current",
                       "snapshot": "never"},
            "sink": {"brokers": self.stack.kafka_bootstrap(), "topic": "{database}.{table}", "partitions": 4}
        })
    }

    pub async fn put_config(&self, cfg: Value) {
        let path = self.layout.task(&self.task_ref());
        self.zk.ensure_path(&path).await.unwrap();
        self.zk
            .client()
            .set_data(&path, cfg.to_string().as_bytes(), None)
            .await
            .unwrap();
    }

    /// Starts a Core for this task.
    pub fn core(&self, host: &str, session_ms: u64) -> Process {
        let session = session_ms.to_string();
        let args = ["--task", &self.task, "--zk-session-timeout-ms", &session];
        self.stack.core(&self.root, host, &args, &[])
    }

    /// Starts a Core for this task and waits up to `timeout` until it runs
    /// the task (`replication starts` in its log).
    pub async fn running_core(&self, host: &str, session_ms: u64, timeout: Duration) -> Process {
        let mut core = self.core(host, session_ms);
        core.wait_for_log("replication starts", timeout).await;
        core
    }

    /// The epoch of the task's context (that of the instance that wrote it).
    pub async fn epoch(&self) -> i64 {
        self.context().await.expect("context")["epoch"]
            .as_i64()
            .expect("epoch")
    }

    /// The instance nodes of the task: child name and info.
    pub async fn instances(&self) -> Vec<(String, InstanceInfo)> {
        let dir = self.layout.instances(&self.task_ref());
        let mut out = Vec::new();
        for c in self.zk.children(&dir).await.unwrap() {
            if let Some((data, _)) = self.zk.get(&format!("{dir}/{c}")).await.unwrap() {
                if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&data) {
                    out.push((c, info));
                }
            }
        }
        out.sort_by(|a, b| a.0.rsplit('-').next().cmp(&b.0.rsplit('-').next()));
        out
    }

    /// Host of the RUNNING instance, waiting up to `timeout` for one.
    pub async fn running_host(&self, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let running: Vec<_> = self
                .instances()
                .await
                .into_iter()
                .filter(|(_, i)| i.state == InstanceState::Running)
                .collect();
            if running.len() == 1 {
                return running[0].1.host.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no single RUNNING instance: {running:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the RUNNING instance to hand over.
    pub async fn switchover(&self) {
        let path = self.layout.control(&self.task_ref());
        let (data, version) = self.zk.get(&path).await.unwrap().expect("control exists");
        let mut c: Control = if data.is_empty() {
            Control::default()
        } else {
            serde_json::from_slice(&data).unwrap()
        };
        c.switchover += 1;
        self.zk
            .client()
            .set_data(&path, &serde_json::to_vec(&c).unwrap(), Some(version))
            .await
            .unwrap();
    }

    pub async fn context(&self) -> Option<Value> {
        let (data, _) = self
            .zk
            .get(&self.layout.context(&self.task_ref()))
            .await
            .unwrap()?;
        serde_json::from_slice(&data).ok()
    }

    /// Waits until the topic holds at least `n` messages of this table.
    pub async fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<Message> {
        let msgs = self.stack.read_topic_until(&self.topic, n, timeout).await;
        assert!(
            msgs.len() >= n,
            "expected at least {n} messages in {}, got {}",
            self.topic,
            msgs.len()
        );
        msgs
    }

    /// Every message of this table once at least `n` arrived (within
    /// `timeout`), read again after 2 s unless more than `complete` are
    /// there already, so that late duplicates show up.
    pub async fn settled_messages(
        &self,
        n: usize,
        complete: usize,
        timeout: Duration,
    ) -> Vec<Message> {
        let msgs = self.wait_messages(n, timeout).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        if msgs.len() > complete {
            msgs
        } else {
            self.stack.read_topic(&self.topic).await
        }
    }

    /// Like [`Scenario::wait_messages`], fence records included (they do
    /// not count towards `n`).
    pub async fn wait_messages_with_fences(&self, n: usize, timeout: Duration) -> Vec<Message> {
        let msgs = self
            .stack
            .read_topic_until_with_fences(&self.topic, n, timeout)
            .await;
        let data = msgs.iter().filter(|m| !m.is_fence()).count();
        assert!(
            data >= n,
            "expected at least {n} messages in {}, got {data}",
            self.topic
        );
        msgs
    }
}

/// Messages (fence records included) of `old_epoch` that follow a message
/// of another epoch in their partition: what a fenced writer must never
/// leave behind.
pub fn old_epoch_after_new(messages: &[Message], old_epoch: i64) -> Vec<String> {
    let mut new_seen: HashMap<i32, i64> = HashMap::new();
    let mut problems = Vec::new();
    for m in messages {
        let epoch: i64 = std::str::from_utf8(m.header(EPOCH_HEADER).expect("epoch header"))
            .unwrap()
            .parse()
            .unwrap();
        if epoch != old_epoch {
            new_seen.entry(m.partition).or_insert(m.offset);
        } else if let Some(first_new) = new_seen.get(&m.partition) {
            problems.push(format!(
                "partition {} offset {}: epoch {old_epoch} after epoch {epoch} began at offset {first_new}",
                m.partition, m.offset
            ));
        }
    }
    if new_seen.is_empty() {
        problems.push("the new writer wrote nothing".to_string());
    }
    problems
}

/// A writer committing transactions of `rows` inserts each, ids counting up.
pub struct Writer {
    stop: Arc<AtomicBool>,
    next_id: Arc<AtomicI64>,
    txns: Arc<AtomicI64>,
    handle: tokio::task::JoinHandle<i64>,
}

impl Writer {
    pub fn start(
        stack: &'static Stack,
        db: &str,
        table: &str,
        rows: usize,
        pause: Duration,
    ) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicI64::new(1));
        let (s, n) = (stop.clone(), next_id.clone());
        let sql_table = format!("`{db}`.`{table}`");
        let txns = Arc::new(AtomicI64::new(0));
        let t = txns.clone();
        let handle = tokio::spawn(async move {
            use mysql_async::prelude::Queryable;
            let mut conn = stack.conn().await;
            conn.query_drop(format!(
                "INSERT INTO {sql_table} (id, v, txn, note) VALUES (0, 0, 0, 'counter')"
            ))
            .await
            .expect("counter row");
            let mut txn = 0i64;
            while !s.load(Ordering::SeqCst) {
                txn += 1;
                let first = n.load(Ordering::SeqCst);
                let values: Vec<String> = (0..rows as i64)
                    .map(|i| format!("({}, {}, {txn}, 'row {}')", first + i, i, first + i))
                    .collect();
                let mut tx = conn
                    .start_transaction(Default::default())
                    .await
                    .expect("begin");
                tx.query_drop(format!(
                    "INSERT INTO {sql_table} (id, v, txn, note) VALUES {}",
                    values.join(",")
                ))
                .await
                .expect("insert");
                tx.query_drop(format!("UPDATE {sql_table} SET v = v + 1 WHERE id = 0"))
                    .await
                    .expect("update counter");
                tx.commit().await.expect("commit");
                n.store(first + rows as i64, Ordering::SeqCst);
                t.store(txn, Ordering::SeqCst);
                tokio::time::sleep(pause).await;
            }
            n.load(Ordering::SeqCst) - 1
        });
        Writer {
            stop,
            next_id,
            txns,
            handle,
        }
    }

    /// Transactions committed so far (each bumps the counter row id 0).
    pub fn txns(&self) -> i64 {
        self.txns.load(Ordering::SeqCst)
    }

    /// Rows written so far.
    pub fn written(&self) -> i64 {
        self.next_id.load(Ordering::SeqCst) - 1
    }

    /// Stops and returns the number of rows written (ids 1..=n).
    pub async fn finish(self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap()
    }
}

/// What a writer's run left in the topic.
pub struct Outcome {
    /// Rows written (ids 1..=rows).
    pub rows: i64,
    pub messages: Vec<Message>,
    /// Rows lost or duplicated, counter updates missing or out of order.
    pub problems: Vec<String>,
}

/// Stops `writer` (transactions of `per_txn` inserts and one counter
/// update) and checks the topic of `s` once every message could be there:
/// each row exactly once, the counter in commit order.
pub async fn finish_and_check(writer: Writer, s: &Scenario, per_txn: i64) -> Outcome {
    let rows = writer.finish().await;
    let txns = rows / per_txn;
    let complete = (rows + txns + 1) as usize;
    let messages = s
        .settled_messages(rows as usize, complete, Duration::from_secs(120))
        .await;
    let mut problems = exactly_once(&messages, rows);
    problems.extend(counter_in_order(&messages, txns));
    Outcome {
        rows,
        messages,
        problems,
    }
}

/// Checks the counter row (id 0): its updates must arrive exactly once each
/// and in commit order, `v` = 1, 2, .., `txns`.
pub fn counter_in_order(messages: &[Message], txns: i64) -> Vec<String> {
    let got: Vec<i64> = messages
        .iter()
        .map(|m| m.value_json())
        .filter(|v| v["type"] == "update" && v["after"]["id"] == 0)
        .map(|v| v["after"]["v"].as_i64().expect("v"))
        .collect();
    let want: Vec<i64> = (1..=txns).collect();
    if got == want {
        return Vec::new();
    }
    let first_bad = got
        .iter()
        .zip(&want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    vec![format!(
        "counter updates: {} arrived, {} committed; first difference at #{first_bad}: got {:?}, want {:?}",
        got.len(),
        txns,
        got.get(first_bad..(first_bad + 5).min(got.len())),
        want.get(first_bad..(first_bad + 5).min(want.len()))
    )]
}

/// Checks that ids 1..=n were inserted exactly once each, and that per key
/// (and per partition) positions only grow. Returns a description of every
/// problem (empty when fine).
pub fn exactly_once(messages: &[Message], n: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut last_pos: BTreeMap<i32, (String, u64, u64)> = BTreeMap::new();
    for m in messages {
        let v = m.value_json();
        if v["type"] != "insert" {
            continue;
        }
        let id = v["after"]["id"].as_i64().expect("id");
        if id == 0 {
            continue;
        }
        *seen.entry(id).or_default() += 1;
        let p = &v["position"];
        let pos = (
            p["file"].as_str().unwrap().to_string(),
            p["pos"].as_u64().unwrap(),
            p["row"].as_u64().unwrap(),
        );
        if let Some(prev) = last_pos.get(&m.partition) {
            if *prev >= pos {
                problems.push(format!(
                    "partition {}: position {pos:?} after {prev:?}",
                    m.partition
                ));
            }
        }
        last_pos.insert(m.partition, pos);
    }
    for id in 1..=n {
        match seen.get(&id) {
            None => problems.push(format!("id {id} missing")),
            Some(1) => {}
            Some(k) => problems.push(format!("id {id} delivered {k} times")),
        }
    }
    for id in seen.keys() {
        if *id < 1 || *id > n {
            problems.push(format!("unexpected id {id}"));
        }
    }
    if problems.len() > 20 {
        let total = problems.len();
        problems.truncate(20);
        problems.push(format!("... {total} problems in all"));
    }
    problems
}

fn rand_u32() -> u32 {
    let s = replicator_tests::names::random_hex(8);
    u32::from_str_radix(&s, 16).unwrap()
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
