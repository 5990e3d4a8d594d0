//! Failover benchmark: crash failover (SIGKILL of the RUNNING Core to the
//! first message written by the new RUNNING one) and planned switchover
//! (bump of the control node to the first message of the next instance),
//! with a 1.5 s ZooKeeper session timeout, over N runs each.
//!
//! `cargo run --release -p replicator-tests --bin bench-failover [RUNS]`
//! (build the Core first: `cargo build --release -p replicator-core`). Uses
//! the servers of `REPLICATOR_TEST_*` when set, else starts its own.

use mysql_async::prelude::Queryable;
use replicator_common::message::EPOCH_HEADER;
use replicator_common::nodes::{Control, InstanceInfo, InstanceState};
use replicator_common::paths::TaskRef;
use replicator_tests::{unique_name, unique_root, Process, Stack};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SESSION_MS: u64 = 1500;

fn now_ms() -> i64 {
    replicator_common::now_ms()
}

struct Bench {
    stack: Stack,
    root: String,
    task: String,
    topic: String,
    zk: replicator_common::zk::Zk,
}

impl Bench {
    fn core(&self, host: &str) -> Process {
        let session = SESSION_MS.to_string();
        let args = ["--task", &self.task, "--zk-session-timeout-ms", &session];
        self.stack.core(&self.root, host, &args, &[])
    }

    fn task_ref(&self) -> TaskRef {
        TaskRef::hot(&self.task).unwrap()
    }

    async fn running(&self) -> Option<String> {
        let dir = self.zk.layout().instances(&self.task_ref());
        for c in self.zk.children(&dir).await.ok()? {
            if let Ok(Some((d, _))) = self.zk.get(&format!("{dir}/{c}")).await {
                if let Ok(i) = serde_json::from_slice::<InstanceInfo>(&d) {
                    if i.state == InstanceState::Running {
                        return Some(i.host);
                    }
                }
            }
        }
        None
    }

    async fn standbys(&self) -> usize {
        let dir = self.zk.layout().instances(&self.task_ref());
        let mut n = 0;
        for c in self.zk.children(&dir).await.unwrap_or_default() {
            if let Ok(Some((d, _))) = self.zk.get(&format!("{dir}/{c}")).await {
                if serde_json::from_slice::<InstanceInfo>(&d)
                    .is_ok_and(|i| i.state == InstanceState::Standby)
                {
                    n += 1;
                }
            }
        }
        n
    }

    async fn epoch(&self) -> i64 {
        let (d, _) = self
            .zk
            .get(&self.zk.layout().context(&self.task_ref()))
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&d).unwrap()["epoch"]
            .as_i64()
            .unwrap()
    }

    /// Waits for a context epoch other than `old`, then for the first message
    /// of that epoch; returns its create time.
    async fn first_message_after(&self, old: i64) -> i64 {
        let mut epoch = old;
        for _ in 0..400 {
            epoch = self.epoch().await;
            if epoch != old {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_ne!(epoch, old, "no new writer");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let want = epoch.to_string();
        for _ in 0..20 {
            let msgs = self.stack.read_topic(&self.topic).await;
            let first = msgs
                .iter()
                .filter(|m| m.header(EPOCH_HEADER) == Some(want.as_bytes()))
                .filter_map(|m| m.timestamp_ms)
                .min();
            if let Some(t) = first {
                return t;
            }
        }
        panic!("no message of epoch {epoch}");
    }

    async fn wait_ready(&self) {
        for _ in 0..400 {
            if self.running().await.is_some() && self.standbys().await >= 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no RUNNING + STANDBY pair");
    }
}

fn stats(name: &str, v: &mut [i64]) {
    v.sort();
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2] as f64
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) as f64 / 2.0
    };
    println!(
        "{name}: runs={} median={median:.0} ms max={} ms min={} ms all={v:?}",
        v.len(),
        v[v.len() - 1],
        v[0]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let stack = Stack::from_env().unwrap_or_else(Stack::start);
    let root = unique_root();
    let zk = stack.zk(&root).await;
    let db = stack.create_database("bench_failover").await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, at BIGINT)"
        ))
        .await;
    let task = unique_name("failover");
    let topic = format!("{db}.t");
    let cfg = json!({"name": task,
        "source": {"host": stack.mysql_host(), "port": stack.mysql_port(), "user": stack.mysql_user(),
                   "password": stack.mysql_password(), "server_id": 777_001, "include": [format!("{db}\\..*")],
                   "start": "current", "snapshot": "never"},
        "sink": {"brokers": stack.kafka_bootstrap(), "topic": "{database}.{table}", "partitions": 1}});
    let b = Bench {
        stack,
        root,
        task,
        topic,
        zk,
    };
    let path = b.zk.layout().task(&b.task_ref());
    b.zk.ensure_path(&path).await.unwrap();
    b.zk.client()
        .set_data(&path, cfg.to_string().as_bytes(), None)
        .await
        .unwrap();

    let mut cores = std::collections::HashMap::new();
    cores.insert("a".to_string(), b.core("a"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cores.insert("b".to_string(), b.core("b"));
    b.wait_ready().await;

    // a writer inserting one row every 5 ms
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let mut conn = b.stack.conn().await;
    let sql = format!("INSERT INTO `{db}`.t (at) VALUES (?)");
    let writer = tokio::spawn(async move {
        while !s2.load(Ordering::SeqCst) {
            conn.exec_drop(&sql, (now_ms(),)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut crash = Vec::new();
    for i in 0..runs {
        b.wait_ready().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let leader = b.running().await.unwrap();
        let old = b.epoch().await;
        let t0 = now_ms();
        cores.get_mut(&leader).unwrap().kill();
        let t1 = b.first_message_after(old).await;
        crash.push(t1 - t0);
        eprintln!("crash run {i}: {} ms", t1 - t0);
        cores.insert(leader.clone(), b.core(&leader));
    }
    let mut switch = Vec::new();
    for i in 0..runs {
        b.wait_ready().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let old = b.epoch().await;
        let cpath = b.zk.layout().control(&b.task_ref());
        let (d, v) = b.zk.get(&cpath).await.unwrap().unwrap();
        let mut c: Control = serde_json::from_slice(&d).unwrap_or_default();
        c.switchover += 1;
        let t0 = now_ms();
        b.zk.client()
            .set_data(&cpath, &serde_json::to_vec(&c).unwrap(), Some(v))
            .await
            .unwrap();
        let t1 = b.first_message_after(old).await;
        switch.push(t1 - t0);
        eprintln!("switchover run {i}: {} ms", t1 - t0);
    }
    stop.store(true, Ordering::SeqCst);
    let _ = writer.await;
    for (_, mut c) in cores {
        c.stop().await;
    }
    println!("session timeout {SESSION_MS} ms, writer inserts a row every 5 ms");
    stats(
        "crash failover (SIGKILL -> first message of the new RUNNING)",
        &mut crash,
    );
    stats(
        "switchover (control bump -> first message of the next instance)",
        &mut switch,
    );
}
