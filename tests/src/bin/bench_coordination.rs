//! Coordination benchmark of cold standby (docs/design.md §5): 1,000 tasks in one
//! group and 3 Cores started together, with `--scan-interval-ms 1000` and a
//! 1.5 s ZooKeeper session timeout. Reports the time until every task is
//! claimed, the spread, the ZooKeeper requests of each scan (from the Cores'
//! per-scan debug line, checked against the server's own packet counter,
//! `mntr`), the time until a killed Core's tasks are claimed again, and the
//! time until a restarted Core gets its share back.
//!
//! COORDINATION ONLY: the Cores run with the hidden `--coordination-only`
//! flag, so a claimed task is held RUNNING (instance node, `/cores` entry)
//! without opening its binlog stream: the MariaDB of this 2-core machine
//! cannot hold 1,000 binlog dump streams. Claiming, spreading and failover
//! are exactly the same code as for replicating tasks.
//!
//! ```sh
//! cargo build --release -p replicator-core
//! REPLICATOR_BIN_DIR=target/release cargo run --release -p replicator-tests --bin bench-coordination [TASKS] [CORES]
//! ```
//!
//! Uses the servers of `REPLICATOR_TEST_*` when set (then the packet counts
//! include whatever else uses that ZooKeeper), else starts its own.

use regex::Regex;
use replicator_common::nodes::{CoreInfo, InstanceInfo, InstanceState};
use replicator_common::paths::{Layout, TaskRef};
use replicator_common::zk::Zk;
use replicator_tests::{unique_name, unique_root, Process, Stack};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use zookeeper_client::CreateMode;

const SCAN_MS: u64 = 1000;
const SESSION_MS: u64 = 1500;
/// Length of the steady-state window over which requests are counted.
const WINDOW: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    replicator_common::now_ms()
}

struct Bench {
    stack: Stack,
    root: String,
    layout: Layout,
    group: String,
    tasks: usize,
}

/// Every task with its instances.
struct Claims(BTreeMap<String, Vec<InstanceInfo>>);

impl Claims {
    fn spread(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for infos in self.0.values() {
            for i in infos {
                *out.entry(i.host.clone()).or_default() += 1;
            }
        }
        out
    }
    /// Problems: a task without exactly one instance, RUNNING.
    fn problems(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, i)| i.len() != 1 || i[0].state != InstanceState::Running)
            .map(|(t, i)| format!("{t}: {i:?}"))
            .collect()
    }
    fn last_since<'a>(&self, tasks: impl IntoIterator<Item = &'a String>) -> i64 {
        tasks
            .into_iter()
            .filter_map(|t| self.0.get(t))
            .flatten()
            .map(|i| i.since_ms)
            .max()
            .unwrap_or(0)
    }
    fn of(&self, host: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, i)| i.iter().any(|i| i.host == host))
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// One scan's debug line.
#[derive(Debug, Default, Clone)]
struct Scan {
    fields: BTreeMap<String, u64>,
}

impl Scan {
    fn get(&self, k: &str) -> u64 {
        self.fields.get(k).copied().unwrap_or(0)
    }
}

fn scans(log: &str) -> Vec<Scan> {
    let kv = Regex::new(r"(\w+)=(\d+)\b").unwrap();
    log.lines()
        .filter(|l| l.contains("DEBUG") && l.contains(" scan "))
        .map(|l| Scan {
            fields: kv
                .captures_iter(l)
                .filter_map(|c| Some((c[1].to_string(), c[2].parse().ok()?)))
                .collect(),
        })
        .collect()
}

impl Bench {
    fn core(&self, host: &str) -> Process {
        let (scan, session, max) = (
            SCAN_MS.to_string(),
            SESSION_MS.to_string(),
            self.tasks.to_string(),
        );
        let args = [
            "--group",
            &self.group,
            "--scan-interval-ms",
            &scan,
            "--zk-session-timeout-ms",
            &session,
            "--max-tasks",
            &max,
            "--coordination-only",
        ];
        let log = [("RUST_LOG", "info,replicator_core::cold=debug")];
        self.stack.core(&self.root, host, &args, &log)
    }

    fn task_name(i: usize) -> String {
        format!("task-{i:04}")
    }

    async fn create_tasks(&self, zk: &Zk) {
        let group_path = self.layout.group(&self.group).unwrap();
        zk.ensure_path(&group_path).await.unwrap();
        let opts = zk.options(CreateMode::Persistent);
        for chunk in (0..self.tasks).collect::<Vec<_>>().chunks(100) {
            let mut multi = zk.client().new_multi_writer();
            for &i in chunk {
                let name = Self::task_name(i);
                let cfg = json!({
                    "name": name, "group": self.group,
                    "source": {"host": self.stack.mysql_host(), "port": self.stack.mysql_port(),
                               "user": self.stack.mysql_user(), "password": self.stack.mysql_password(),
                               "server_id": 500_000 + i, "include": [format!("bench\\.t{i}")]},
                    "sink": {"brokers": self.stack.kafka_bootstrap(), "topic": "{database}.{table}"}
                });
                let path = self
                    .layout
                    .task(&TaskRef::cold(&self.group, &name).unwrap());
                multi
                    .add_create(&path, cfg.to_string().as_bytes(), &opts)
                    .unwrap();
            }
            multi.commit().await.expect("create tasks");
        }
    }

    /// The group's tasks each live Core reports in `/cores`.
    async fn reported(&self, zk: &Zk) -> BTreeMap<String, usize> {
        let prefix = format!("{}/", self.group);
        let mut out = BTreeMap::new();
        for c in zk.children(&self.layout.cores()).await.unwrap() {
            if let Ok(Some((data, _))) = zk.get(&self.layout.core(&c).unwrap()).await {
                if let Ok(info) = serde_json::from_slice::<CoreInfo>(&data) {
                    let n = info.tasks.iter().filter(|t| t.starts_with(&prefix)).count();
                    out.insert(info.host, n);
                }
            }
        }
        out
    }

    /// Polls `/cores` (cheap) until `done` holds, then reads every instance.
    async fn wait_claims(
        &self,
        zk: &Zk,
        what: &str,
        done: impl Fn(&BTreeMap<String, usize>) -> bool,
    ) -> Claims {
        let t0 = Instant::now();
        loop {
            let r = self.reported(zk).await;
            if done(&r) {
                let claims = self.claims(zk).await;
                if claims.problems().is_empty() {
                    return claims;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}: /cores says {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn claims(&self, zk: &Zk) -> Claims {
        let mut out = BTreeMap::new();
        for i in 0..self.tasks {
            let name = Self::task_name(i);
            let dir = self
                .layout
                .instances(&TaskRef::cold(&self.group, &name).unwrap());
            let mut infos = Vec::new();
            for c in zk.children(&dir).await.unwrap() {
                if let Ok(Some((d, _))) = zk.get(&format!("{dir}/{c}")).await {
                    if let Ok(info) = serde_json::from_slice::<InstanceInfo>(&d) {
                        infos.push(info);
                    }
                }
            }
            out.insert(name, infos);
        }
        Claims(out)
    }
}

/// ZooKeeper's `mntr` counters (whitelisted four-letter word).
fn mntr(zk_connect: &str) -> BTreeMap<String, String> {
    let mut s = std::net::TcpStream::connect(zk_connect).expect("connect for mntr");
    s.write_all(b"mntr").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn counter(m: &BTreeMap<String, String>, k: &str) -> u64 {
    m.get(k)
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("mntr has no {k}"))
}

fn spread_line(s: &BTreeMap<String, usize>) -> String {
    let max = s.values().max().copied().unwrap_or(0);
    let min = s.values().min().copied().unwrap_or(0);
    format!("{s:?} (max {max}, min {min})")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let n_cores: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let stack = Stack::from_env().unwrap_or_else(Stack::start);
    let root = unique_root();
    let zk = stack.zk(&root).await;
    let b = Bench {
        layout: zk.layout().clone(),
        stack,
        root,
        group: unique_name("bench"),
        tasks,
    };
    let hosts: Vec<String> = (1..=n_cores).map(|i| format!("core{i}")).collect();
    println!(
        "COORDINATION ONLY (--coordination-only): tasks are claimed and held RUNNING without \
         replicating; MariaDB cannot hold {tasks} binlog dump streams on this machine"
    );
    println!(
        "{tasks} tasks in one group, {n_cores} cores, scan interval {SCAN_MS} ms, session timeout {SESSION_MS} ms"
    );
    if !b.stack.is_owned() {
        println!("note: reusing a ZooKeeper from REPLICATOR_TEST_ZK: its packet counts include other clients");
    }
    let t = Instant::now();
    b.create_tasks(&zk).await;
    println!(
        "created {tasks} task configs in {} ms",
        t.elapsed().as_millis()
    );

    // 1. cores start together: time until every task is claimed, spread
    let mut cores: BTreeMap<String, Process> = BTreeMap::new();
    for h in &hosts {
        cores.insert(h.clone(), b.core(h));
    }
    let started = now_ms();
    let claims = b
        .wait_claims(&zk, "every task claimed", |r| {
            r.values().sum::<usize>() == tasks
        })
        .await;
    let all: Vec<String> = claims.0.keys().cloned().collect();
    let claimed_ms = claims.last_since(&all) - started;
    println!(
        "all claimed: {claimed_ms} ms after the last core started (includes the {} ms join grace)",
        replicator_core_join_grace_ms()
    );
    println!("spread: {}", spread_line(&claims.spread()));
    for (h, p) in &cores {
        if let Some(first) = scans(&p.log()).into_iter().find(|s| s.get("claimed") > 0) {
            println!(
                "  {h} claiming scan: {} free seen, {} claimed, {} lost, {} reads, {} writes, {} ms",
                first.get("free"),
                first.get("claimed"),
                first.get("lost"),
                first.get("reads"),
                first.get("writes"),
                first.get("elapsed_ms")
            );
        }
    }

    // 2. steady state: requests per scan, checked against ZooKeeper's counter
    tokio::time::sleep(Duration::from_millis(3 * SCAN_MS)).await;
    zk.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let marks: BTreeMap<String, usize> = cores
        .iter()
        .map(|(h, p)| (h.clone(), p.log_mark()))
        .collect();
    let before = mntr(b.stack.zk_connect());
    tokio::time::sleep(WINDOW).await;
    let after = mntr(b.stack.zk_connect());
    let packets = counter(&after, "zk_packets_received") - counter(&before, "zk_packets_received");
    let mut steady: Vec<Scan> = Vec::new();
    for (h, p) in &cores {
        steady.extend(scans(&p.log()[marks[h]..]));
    }
    let reads: u64 = steady.iter().map(|s| s.get("reads")).sum();
    let writes: u64 = steady.iter().map(|s| s.get("writes")).sum();
    let per_scan = reads as f64 / steady.len().max(1) as f64;
    let secs = WINDOW.as_secs_f64();
    let lease_pings = n_cores as f64 * secs / (SESSION_MS as f64 / 6.0 / 1000.0);
    let heartbeats = n_cores as f64 * secs / 5.0;
    let expected = reads as f64 + writes as f64 + lease_pings + heartbeats;
    println!(
        "steady state over {secs:.0} s: {} scans, {per_scan:.1} reads and {:.1} writes per scan per core \
         ({n_cores} cores: 1 group listing + 1 /cores listing + 1 read per other core)",
        steady.len(),
        writes as f64 / steady.len().max(1) as f64
    );
    println!(
        "  ZooKeeper packets received: {packets} ({:.1}/s); expected {expected:.0} = {reads} scan reads + {writes} scan writes \
         + {lease_pings:.0} lease pings (every {} ms per core) + {heartbeats:.0} /cores heartbeats (every 5 s per core)",
        packets as f64 / secs,
        SESSION_MS / 6
    );
    println!(
        "  the other {:.0} are not the Cores' own requests: they fit the ZooKeeper client's keep-alive pings (sent after {} ms without a request)",
        packets as f64 - expected,
        SESSION_MS / 20 * 3
    );
    for k in [
        "zk_znode_count",
        "zk_watch_count",
        "zk_num_alive_connections",
    ] {
        if let Some(v) = after.get(k) {
            println!("  {k} {v}");
        }
    }
    assert_eq!(writes, 0, "a core that runs nothing new writes nothing");

    // 3. kill a core: time until its tasks are claimed again
    let zk = b.stack.zk(&b.root).await;
    let victim = hosts[n_cores / 2].clone();
    let orphans = claims.of(&victim);
    cores.get_mut(&victim).unwrap().kill();
    let killed = now_ms();
    let survivors = n_cores - 1;
    let claims = b
        .wait_claims(&zk, "the killed core's tasks claimed again", |r| {
            r.len() == survivors && r.values().sum::<usize>() == tasks
        })
        .await;
    let reclaim_ms = claims.last_since(&orphans) - killed;
    println!(
        "kill {victim} ({} tasks): all claimed again {reclaim_ms} ms after SIGKILL (session timeout {SESSION_MS} ms + up to one scan)",
        orphans.len()
    );
    println!("spread: {}", spread_line(&claims.spread()));
    for (h, p) in &cores {
        if *h == victim {
            continue;
        }
        let log = p.log();
        if let Some(s) = scans(&log).into_iter().rev().find(|s| s.get("claimed") > 0) {
            println!(
                "  {h} reclaiming scan: {} free seen, {} claimed, {} lost, {} reads, {} writes",
                s.get("free"),
                s.get("claimed"),
                s.get("lost"),
                s.get("reads"),
                s.get("writes")
            );
        }
    }

    // 4. the core comes back: its share returns by graceful hand-over
    let marks: BTreeMap<String, usize> = cores
        .iter()
        .map(|(h, p)| (h.clone(), p.log_mark()))
        .collect();
    cores.insert(victim.clone(), b.core(&victim));
    let rejoined = now_ms();
    let even = tasks / n_cores;
    let claims = b
        .wait_claims(&zk, "the rejoined core's share", |r| {
            r.len() == n_cores && r.values().all(|n| *n == even || *n == even + 1)
        })
        .await;
    let back = claims.of(&victim);
    let rebalance_ms = claims.last_since(&back) - rejoined;
    let released: usize = cores
        .iter()
        .filter(|(h, _)| **h != victim)
        .map(|(h, p)| {
            p.log()[marks[h]..]
                .matches("handing over to rebalance")
                .count()
        })
        .sum();
    println!(
        "rejoin {victim}: {} tasks handed over to it {rebalance_ms} ms after it started ({released} releases in all)",
        back.len()
    );
    println!("spread: {}", spread_line(&claims.spread()));
    for (_, mut p) in cores {
        p.stop().await;
    }
}

fn replicator_core_join_grace_ms() -> u64 {
    (SCAN_MS / 4).min(1000)
}
