//! Helpers of the snapshot tests (`snapshot.rs`, `snapshot_faults.rs`,
//! `snapshot_watermark.rs`): the scenario table filled fast from MariaDB's
//! Sequence engine, a writer changing it concurrently, the table rebuilt
//! from the topic and compared with `SELECT *`, waits on the context's
//! snapshot progress, and the edge tables (no row, one, a few, no key).
#![allow(dead_code)]

use super::support::Scenario;
use replicator_tests::{Message, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The table rebuilt from `messages` (in the order given): last message per
/// key, deletes removing it, an update that changes the key removing the
/// old one, `ddl` messages skipped. Returns the rows by id and every problem
/// seen (a snapshot row of a key delivered twice).
pub fn rebuild(messages: &[Message]) -> (BTreeMap<i64, Value>, Vec<String>) {
    let mut rows = BTreeMap::new();
    let mut reads: HashMap<i64, usize> = HashMap::new();
    let mut problems = Vec::new();
    for m in messages {
        let v = m.value_json();
        if v["type"] == "ddl" {
            // the schema change of an ALTER: no row
            continue;
        }
        let key = m.key_json();
        let id = key[0].as_i64().unwrap_or_else(|| panic!("key {key}"));
        match v["type"].as_str().unwrap() {
            "delete" => {
                rows.remove(&id);
            }
            "read" => {
                *reads.entry(id).or_default() += 1;
                assert!(v["before"].is_null(), "read has no before image: {v}");
                rows.insert(id, v["after"].clone());
            }
            "insert" => {
                rows.insert(id, v["after"].clone());
            }
            "update" => {
                // an update that changes the key removes the old one
                if let Some(old) = v["before"]["id"].as_i64().filter(|&old| old != id) {
                    rows.remove(&old);
                }
                rows.insert(id, v["after"].clone());
            }
            other => panic!("unexpected message type {other}: {v}"),
        }
    }
    for (id, n) in reads {
        if n > 1 {
            problems.push(format!("snapshot row of id {id} delivered {n} times"));
        }
    }
    (rows, problems)
}

/// `SELECT *` of the scenario table, as the messages render it.
pub async fn table_rows(stack: &Stack, db: &str, table: &str) -> BTreeMap<i64, Value> {
    let rows: Vec<(i64, i32, i64, Option<String>)> = stack
        .query(&format!(
            "SELECT id, v, txn, note FROM `{db}`.`{table}` ORDER BY id"
        ))
        .await;
    rows.into_iter()
        .map(|(id, v, txn, note)| (id, json!({"id": id, "v": v, "txn": txn, "note": note})))
        .collect()
}

pub fn differences(got: &BTreeMap<i64, Value>, want: &BTreeMap<i64, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (id, w) in want {
        match got.get(id) {
            None => out.push(format!("id {id} missing (want {w})")),
            Some(g) if g != w => out.push(format!("id {id}: got {g}, want {w}")),
            _ => {}
        }
    }
    for id in got.keys().filter(|id| !want.contains_key(id)) {
        out.push(format!("id {id} in the topic but not in the table"));
    }
    out
}

/// Creates `db`.`table` with the scenario table's columns.
pub async fn create_table(stack: &Stack, db: &str, table: &str) {
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.`{table}` (id BIGINT PRIMARY KEY, v INT NOT NULL, txn BIGINT NOT NULL, note VARCHAR(40))"
        ))
        .await;
}

/// The edge tables of `db`: `e0`, `e1` and `e3` like the scenario table
/// with no row, one row and three rows, and `nokey` (no key at all: copied
/// in one consistent read) holding `nokey_values` (an SQL `VALUES` list of
/// `(a, b)` rows).
pub async fn create_edge_tables(stack: &Stack, db: &str, nokey_values: &str) {
    for (t, rows) in [("e0", 0u64), ("e1", 1), ("e3", 3)] {
        create_table(stack, db, t).await;
        if rows > 0 {
            fill(stack, db, t, rows).await;
        }
    }
    stack
        .sql(&format!("CREATE TABLE `{db}`.`nokey` (a INT, b INT)"))
        .await;
    stack
        .sql(&format!("INSERT INTO `{db}`.`nokey` VALUES {nokey_values}"))
        .await;
}

/// Checks the copies of the edge tables with a key: the topics of `e1` and
/// `e3` hold exactly their table's rows, each a `read` with a snapshot
/// position header (`...:s<chunk>.<row>`); `e0`'s topic is empty. Returns
/// the messages of `e1` and `e3`.
pub async fn assert_edge_reads(stack: &Stack, db: &str) -> Vec<Message> {
    let mut all = Vec::new();
    for (t, rows) in [("e1", 1usize), ("e3", 3)] {
        let topic = format!("{db}.{t}");
        let msgs = stack
            .read_topic_until(&topic, rows, Duration::from_secs(20))
            .await;
        let (got, problems) = rebuild(&msgs);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(msgs.len(), rows, "{t}");
        assert_eq!(got, table_rows(stack, db, t).await, "{t}");
        for m in &msgs {
            assert_eq!(m.value_json()["type"], "read");
            let pos = std::str::from_utf8(m.header("replicator.position").unwrap()).unwrap();
            assert!(pos.contains(":s"), "snapshot position header {pos}");
        }
        all.extend(msgs);
    }
    assert!(stack.read_topic(&format!("{db}.e0")).await.is_empty());
    all
}

/// The tables of the context's snapshot progress.
pub async fn snapshot_tables(s: &Scenario) -> Vec<Value> {
    let ctx = s.context().await.unwrap();
    ctx["snapshot"]["tables"].as_array().unwrap().clone()
}

/// Fills the scenario table with ids 1..=n.
pub async fn fill(stack: &Stack, db: &str, table: &str, n: u64) {
    let mut from = 1u64;
    while from <= n {
        let to = (from + 99_999).min(n);
        stack
            .sql(&format!(
                "INSERT INTO `{db}`.`{table}` (id, v, txn, note) \
                 SELECT seq, seq % 1000, 0, CONCAT('row ', seq) FROM `{db}`.seq_{from}_to_{to}"
            ))
            .await;
        from = to + 1;
    }
}

/// What [`churn_with`] writes besides deletes and inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Updates of values.
    Values,
    /// Half the updates move the row to another key (`id + 10,000,000`).
    KeyChanges,
}

/// Updates, deletes and inserts random rows of ids 1..=n (and inserts new
/// ids above n) until stopped; returns how many statements it committed.
pub fn churn(
    stack: &'static Stack,
    db: &str,
    table: &str,
    n: i64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    churn_with(stack, format!("`{db}`.`{table}`"), n, stop, Mix::Values)
}

/// [`churn`] of table `t` (quoted `db`.`table`) with updates as `mix` says.
pub fn churn_with(
    stack: &'static Stack,
    t: String,
    n: i64,
    stop: Arc<AtomicBool>,
    mix: Mix,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut conn = stack.conn().await;
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut done = 0u64;
        let mut new_id = n + 1;
        while !stop.load(Ordering::SeqCst) {
            let id = 1 + (next() % n as u64) as i64;
            let sql = match next() % 4 {
                0 => format!("DELETE FROM {t} WHERE id = {id}"),
                1 => {
                    new_id += 1;
                    format!("INSERT INTO {t} (id, v, txn, note) VALUES ({new_id}, 1, 1, 'new')")
                }
                2 if mix == Mix::KeyChanges => {
                    format!("UPDATE {t} SET id = id + 10000000, note = 'moved' WHERE id = {id}")
                }
                _ => format!("UPDATE {t} SET v = v + 1, note = 'upd {done}' WHERE id = {id}"),
            };
            conn.query_drop(sql).await.expect("churn statement");
            done += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        done
    })
}

/// The context's snapshot progress: (rows, tables remaining).
pub async fn snapshot_progress(s: &Scenario) -> Option<(u64, usize)> {
    let ctx = s.context().await?;
    let snap = ctx.get("snapshot")?;
    let rows = snap["rows"].as_u64()?;
    let remaining = snap["tables"]
        .as_array()?
        .iter()
        .filter(|t| t["done"] != true)
        .count();
    Some((rows, remaining))
}

/// Waits until the snapshot delivered at least `rows` rows; panics after
/// `timeout` or when it finished first.
pub async fn wait_snapshot_rows(s: &Scenario, rows: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((got, remaining)) = snapshot_progress(s).await {
            assert!(
                remaining > 0 || got >= rows,
                "snapshot finished at {got} rows before reaching {rows}"
            );
            if got >= rows {
                assert!(remaining > 0, "snapshot already done");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "snapshot did not reach {rows} rows within {timeout:?}: {:?}",
            snapshot_progress(s).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_snapshot_done(s: &Scenario, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((rows, 0)) = snapshot_progress(s).await {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "snapshot not done within {timeout:?}: {:?}",
            snapshot_progress(s).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows of the big tables: `REPLICATOR_SNAPSHOT_ROWS`, else 1,000,000.
pub fn big_rows() -> i64 {
    std::env::var("REPLICATOR_SNAPSHOT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

pub fn with_chunk_rows(s: &Scenario, chunk: u32) -> Value {
    let mut cfg = s.config();
    cfg["source"]["snapshot"] = json!("initial");
    cfg["source"]["snapshot_chunk_rows"] = json!(chunk);
    cfg
}

/// Waits until the table rebuilt from `topic` equals `SELECT *` of
/// `db`.`table` with no snapshot row twice; returns the messages read, or
/// what still differs after `timeout`.
pub async fn wait_topic_equals_table(
    stack: &Stack,
    topic: &str,
    db: &str,
    table: &str,
    timeout: Duration,
) -> Result<Vec<Message>, String> {
    let want = table_rows(stack, db, table).await;
    let deadline = Instant::now() + timeout;
    loop {
        let mut msgs = stack.read_topic(topic).await;
        // an update that changes the key may go to another partition than
        // the old key's messages: rebuild in the order of the positions
        msgs.sort_by_cached_key(order);
        let (got, problems) = rebuild(&msgs);
        let diff = differences(&got, &want);
        if diff.is_empty() && problems.is_empty() {
            return Ok(msgs);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} rows, {} messages; differences (first 20): {:#?}; problems (first 20): {:#?}",
                want.len(),
                msgs.len(),
                &diff[..diff.len().min(20)],
                &problems[..problems.len().min(20)]
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The order of a message in the source: its `replicator.position` header
/// `file:pos:row`, or `file:pos:s<chunk>.<row>` for a snapshot row, which
/// comes before the stream's rows at the same `file:pos`.
pub fn order(m: &Message) -> (String, u64, u8, u64, u64) {
    let h = std::str::from_utf8(m.header("replicator.position").expect("position header"))
        .expect("utf-8 position");
    let mut parts = h.rsplitn(3, ':');
    let (last, pos, file) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let pos = pos.parse().unwrap_or_else(|_| panic!("position {h}"));
    match last.strip_prefix('s').and_then(|c| c.split_once('.')) {
        Some((chunk, row)) => (
            file.into(),
            pos,
            0,
            chunk.parse().unwrap(),
            row.parse().unwrap(),
        ),
        None => (file.into(), pos, 1, 0, last.parse().unwrap()),
    }
}

/// A copy under way: the scenario's table of `n` rows, copied in chunks of
/// `chunk` by a Core (`h1`) while a writer changes it as `mix` says.
pub struct CopyUnderWrites {
    pub s: Scenario,
    pub core: replicator_tests::Process,
    stop: Arc<AtomicBool>,
    writes: Option<tokio::task::JoinHandle<u64>>,
}

impl CopyUnderWrites {
    /// Fills the scenario table `name`, configures the copy and starts the
    /// writer, then the Core.
    pub async fn start(stack: &'static Stack, name: &str, n: i64, chunk: u32, mix: Mix) -> Self {
        let s = Scenario::new(stack, name).await;
        fill(stack, &s.db, &s.table, n as u64).await;
        s.put_config(with_chunk_rows(&s, chunk)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let t = format!("`{}`.`{}`", s.db, s.table);
        let writes = churn_with(stack, t, n, stop.clone(), mix);
        let core = s.core("h1", 3000);
        CopyUnderWrites {
            s,
            core,
            stop,
            writes: Some(writes),
        }
    }

    /// Waits (up to 300 s) until the copy is done, then stops the writer;
    /// returns how many statements it committed.
    pub async fn finish(&mut self) -> u64 {
        wait_snapshot_done(&self.s, Duration::from_secs(300)).await;
        self.stop.store(true, Ordering::SeqCst);
        let writes = self.writes.take().expect("finish is called once");
        writes.await.unwrap()
    }

    /// The table rebuilt from the topic equals the table (within 60 s), or
    /// a panic with `what` happened, the differences and the Core's log.
    pub async fn assert_topic_equals_table(&self, stack: &Stack, what: &str) {
        let s = &self.s;
        let got =
            wait_topic_equals_table(stack, &s.topic, &s.db, &s.table, Duration::from_secs(60))
                .await;
        if let Err(e) = got {
            panic!("{what}: {e}\n{}", self.core.tail(30));
        }
    }
}
