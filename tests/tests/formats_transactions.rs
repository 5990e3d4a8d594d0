//! Transaction events (`sink.transactions_topic`, issue 17): a BEGIN and an
//! END per source transaction with its event count and per-table counts,
//! across SIGKILLs of the RUNNING Core with nothing duplicated; and the
//! Debezium shape, with each row naming its transaction.

mod support;

use replicator_tests::{shared_stack, Message, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{exactly_once, Scenario};

/// Commits transactions of `k` inserts into `t`, 2 into `u` and an update
/// of `t`'s counter row until stopped; returns the number of transactions.
fn multi_table_writer(
    stack: &'static Stack,
    db: String,
    k: i64,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicI64>,
) -> tokio::task::JoinHandle<i64> {
    tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut conn = stack.conn().await;
        conn.query_drop(format!(
            "INSERT INTO `{db}`.t (id, v, txn, note) VALUES (0, 0, 0, 'counter')"
        ))
        .await
        .unwrap();
        let mut txn = 0i64;
        while !stop.load(Ordering::SeqCst) {
            txn += 1;
            let rows: Vec<String> = (0..k)
                .map(|i| format!("({}, {i}, {txn}, 'r')", (txn - 1) * k + i + 1))
                .collect();
            let mut tx = conn.start_transaction(Default::default()).await.unwrap();
            tx.query_drop(format!("INSERT INTO `{db}`.t VALUES {}", rows.join(",")))
                .await
                .unwrap();
            tx.query_drop(format!(
                "INSERT INTO `{db}`.u VALUES ({}, {txn}), ({}, {txn})",
                2 * txn - 1,
                2 * txn
            ))
            .await
            .unwrap();
            tx.query_drop(format!("UPDATE `{db}`.t SET v = v + 1 WHERE id = 0"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            done.store(txn, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        txn
    })
}

/// An END's event count and per-table counts.
type Counts = (u64, BTreeMap<String, u64>);

/// Every problem of the transactions topic: per transaction id exactly one
/// BEGIN then one END, END counts matching `want(id)`.
fn check_transactions(
    msgs: &[Message],
    begin_end: (&str, &str),
    status: &str,
    want: &dyn Fn(&Value) -> Option<Counts>,
) -> (usize, Vec<String>) {
    let mut seen: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in msgs {
        let v = m.value_json();
        let id = v["id"].as_str().expect("id").to_string();
        seen.entry(id).or_default().push(v);
    }
    let mut problems = Vec::new();
    for (id, evs) in &seen {
        let kinds: Vec<&str> = evs
            .iter()
            .map(|v| v[status].as_str().unwrap_or("?"))
            .collect();
        if kinds != [begin_end.0, begin_end.1] {
            problems.push(format!("{id}: events {kinds:?}"));
            continue;
        }
        let end = &evs[1];
        let Some((count, per_table)) = want(end) else {
            problems.push(format!("{id}: unexpected END {end}"));
            continue;
        };
        let got: BTreeMap<String, u64> = end["data_collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["data_collection"].as_str().unwrap().to_string(),
                    d["event_count"].as_u64().unwrap(),
                )
            })
            .collect();
        if end["event_count"].as_u64() != Some(count) || got != per_table {
            problems.push(format!(
                "{id}: END {end}, expected {count} events {per_table:?}"
            ));
        }
    }
    (seen.len(), problems)
}

async fn setup(stack: &'static Stack, prefix: &str, format: &str) -> (Scenario, String) {
    let s = Scenario::new(stack, prefix).await;
    stack
        .sql(&format!(
            "CREATE TABLE `{}`.u (id BIGINT PRIMARY KEY, txn BIGINT NOT NULL)",
            s.db
        ))
        .await;
    let tx_topic = format!("{}.transactions", s.db);
    let mut cfg = s.config();
    cfg["sink"]["format"] = json!(format);
    cfg["sink"]["transactions_topic"] = json!(tx_topic);
    s.put_config(cfg).await;
    (s, tx_topic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn begin_and_end_per_transaction_across_sigkills() {
    let stack = shared_stack!();
    // Given a task with a transactions topic, and a Core running it
    let (s, tx_topic) = setup(stack, "txev", "json").await;
    let mut core = s.core("h1", 1500);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;

    // When transactions touching two tables commit while the RUNNING Core
    // is SIGKILLed three times
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicI64::new(0)),
    );
    let k = 5;
    let writer = multi_table_writer(stack, s.db.clone(), k, stop.clone(), done.clone());
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(700 + round * 200)).await;
        core.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        core = s.core("h1", 1500);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, Ordering::SeqCst);
    let txns = writer.await.unwrap();
    assert!(txns > 20, "only {txns} transactions");
    let rows = txns * k;

    // Then every row arrives once
    let msgs = s
        .wait_messages((rows + 1 + txns) as usize, Duration::from_secs(60))
        .await;
    let problems = exactly_once(&msgs, rows);
    assert!(problems.is_empty(), "{problems:#?}\n{}", core.tail(30));
    // and each transaction has one BEGIN then one END with its counts: the
    // writer's (k + 1 rows of t, 2 of u) and the counter row's insert
    let (t, u) = (format!("{}.t", s.db), format!("{}.u", s.db));
    let tx_msgs = stack
        .read_topic_until(&tx_topic, 2 * (txns as usize + 1), Duration::from_secs(60))
        .await;
    let want = |end: &Value| -> Option<Counts> {
        match end["event_count"].as_u64() {
            Some(1) => Some((1, BTreeMap::from([(t.clone(), 1)]))),
            _ => Some((
                k as u64 + 3,
                BTreeMap::from([(t.clone(), k as u64 + 1), (u.clone(), 2)]),
            )),
        }
    };
    let (n, problems) = check_transactions(&tx_msgs, ("BEGIN", "END"), "type", &want);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(n as i64, txns + 1, "transactions with events");
    assert_eq!(tx_msgs.len() as i64, 2 * (txns + 1), "no event twice");
    // BEGIN/END carry positions: the takeover read the transactions topic too
    assert!(!core.log_lines_matching("read topic tail").is_empty());
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_transaction_metadata() {
    let stack = shared_stack!();
    // Given a debezium task with a transactions topic
    let (s, tx_topic) = setup(stack, "txdbz", "debezium").await;
    let mut core = s.core("h1", 3000);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;

    // When one transaction writes two rows of t and one of u
    let db = &s.db;
    stack
        .sql(&format!(
            "BEGIN; INSERT INTO `{db}`.t VALUES (1, 1, 1, 'a'), (2, 2, 1, 'b'); \
             INSERT INTO `{db}`.u VALUES (1, 1); COMMIT"
        ))
        .await;

    // Then BEGIN and END in Debezium's shape, and the rows name the transaction
    let tx = stack
        .read_topic_until(&tx_topic, 2, Duration::from_secs(30))
        .await;
    let (begin, end) = (tx[0].value_json(), tx[1].value_json());
    let id = begin["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            begin["status"].as_str(),
            &begin["event_count"],
            &begin["data_collections"]
        ),
        (Some("BEGIN"), &Value::Null, &Value::Null)
    );
    assert_eq!(tx[0].key_json(), json!({"id": id}));
    assert_eq!(
        end,
        json!({"status": "END", "id": id, "ts_ms": end["ts_ms"], "event_count": 3,
               "data_collections": [{"data_collection": format!("{db}.t"), "event_count": 2},
                                    {"data_collection": format!("{db}.u"), "event_count": 1}]})
    );
    let rows = stack
        .read_topic_until(&s.topic, 2, Duration::from_secs(30))
        .await;
    let mut orders: Vec<(u64, u64)> = rows
        .iter()
        .map(|m| {
            let t = &m.value_json()["transaction"];
            assert_eq!(t["id"], json!(id), "{}", m.value_str());
            (
                t["total_order"].as_u64().unwrap(),
                t["data_collection_order"].as_u64().unwrap(),
            )
        })
        .collect();
    orders.sort();
    assert_eq!(orders, [(1, 1), (2, 2)]);
    core.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_show_progress_while_tables_are_idle() {
    let stack = shared_stack!();
    // Given a task with heartbeats every 200 ms
    let s = Scenario::new(stack, "hb").await;
    let mut cfg = s.config();
    cfg["sink"]["heartbeat_ms"] = json!(200);
    s.put_config(cfg).await;
    let topic = format!("__replicator-heartbeat.{}", s.task);
    let mut core = s.core("h1", 3000);
    core.wait_for_log("replication starts", Duration::from_secs(20))
        .await;

    // When one row is written, then the tables stay idle
    stack
        .sql(&format!("INSERT INTO `{}`.t VALUES (1, 1, 1, 'x')", s.db))
        .await;
    s.wait_messages(1, Duration::from_secs(20)).await;
    let ctx = replicator_tests::wait_for(
        Duration::from_secs(10),
        "the context past the row",
        || async {
            s.context()
                .await
                .filter(|c| c["events"].as_u64() >= Some(1))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Then heartbeats keep coming, and the newest carries the position the
    // context reached
    let hb = stack
        .read_topic_until(&topic, 5, Duration::from_secs(20))
        .await;
    assert!(hb.len() >= 5, "{} heartbeats", hb.len());
    let last = hb.last().unwrap().value_json();
    assert_eq!(last["type"], "heartbeat");
    assert_eq!(last["task"], json!(s.task));
    // (on the shared stack other tests' writes move the binlog, and an idle
    // task's context with it: the heartbeat is at or past the context seen
    // before, and at or before the context now)
    tokio::time::sleep(Duration::from_millis(500)).await; // a commit tick or two
    let now = s.context().await.expect("context");
    let at = |v: &Value| {
        (
            v["file"].as_str().unwrap_or_default().to_string(),
            v["pos"].as_u64().unwrap_or_default(),
        )
    };
    let hb_at = at(&last["position"]);
    assert!(
        at(&ctx) <= hb_at && hb_at <= at(&now),
        "{last} vs contexts {ctx} and {now}"
    );
    assert_eq!(hb.last().unwrap().key_json(), json!([s.task]));
    let ts: Vec<i64> = hb
        .iter()
        .map(|m| m.value_json()["ts_ms"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    core.stop().await;
}
