//! The web console in headless Chromium against a running system: a real
//! replicator-server (with a bearer token), a real Monitor, two Cores on a
//! hot task and one on a cold group, rows flowing. The page asks for the
//! token, shows who is RUNNING and who is STANDBY, rows/s, the group and
//! its Cores; a task whose broker is unreachable shows amber as `retrying`
//! with its last error; its Switchover button moves the RUNNING instance;
//! killing a Core makes a `core_lost` alert appear. A screenshot is saved as
//! `target/test-artifacts/console.png`; a second test shows a snapshot in
//! progress (table, rows of the estimate, progress bar) and saves
//! `target/test-artifacts/console-snapshot.png`.
//!
//! Needs the Debian packages chromium and chromium-driver (deploy/install.sh
//! installs them); `REPLICATOR_SKIP_BROWSER_TESTS=1` skips the test where
//! they cannot be installed.

mod browser_support;
mod monitor_support;
mod server_support;

use browser_support::Browser;
use replicator_tests::{shared_stack, unique_name, unique_root, wait_for, Process, Stack};
use serde_json::{json, Value};
use server_support::{table_regex, task_config, ServerProc};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(40);
const TOKEN: &str = "console-browser-test-token";

fn core(stack: &Stack, root: &str, host: &str, role: &[&str]) -> Process {
    let mut args = vec![
        "--zk-session-timeout-ms",
        "1500",
        "--scan-interval-ms",
        "500",
    ];
    args.extend_from_slice(role);
    stack.core(root, host, &args, &[])
}

/// What the page shows of task `name`: state, instances (host, state),
/// events and rows/s, as read from the DOM.
fn task_view(browser: &Browser, name: &str) -> Value {
    browser.eval(
        r#"const row = document.querySelector(`tr[data-task="${arguments[0]}"]`);
           if (!row) return null;
           const ev = row.querySelector("td.events");
           return {
             state: row.dataset.state,
             instances: [...row.querySelectorAll(".inst")].map(e => [e.dataset.host, e.dataset.state]),
             events: ev.dataset.events === "" ? null : Number(ev.dataset.events),
             rate: ev.dataset.rate === "" ? null : Number(ev.dataset.rate),
           };"#,
        json!([name]),
    )
}

fn running_on(view: &Value) -> Option<String> {
    view["instances"]
        .as_array()?
        .iter()
        .find(|i| i[1] == "RUNNING")
        .and_then(|i| i[0].as_str().map(str::to_string))
}

fn instances(view: &Value) -> Vec<(String, String)> {
    view["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i[0].as_str().unwrap_or("").to_string(),
                        i[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Alerts on the page: (rule, state, text).
fn alerts_view(browser: &Browser) -> Vec<(String, String, String)> {
    let v = browser.eval(
        r#"return [...document.querySelectorAll("tr.alert")]
             .map(e => [e.dataset.rule, e.dataset.alertState, e.textContent]);"#,
        json!([]),
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x[0].as_str().unwrap_or("").to_string(),
                        x[1].as_str().unwrap_or("").to_string(),
                        x[2].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn page_until(browser: &Browser, what: &str, ok: impl Fn(&Browser) -> bool) -> Duration {
    let t = Instant::now();
    wait_for(WAIT, what, || async { ok(browser).then_some(()) }).await;
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_shows_instances_switches_over_and_shows_core_lost() {
    let stack = shared_stack!();
    let Some(browser) = Browser::start(1440, 1000).await else {
        return;
    };
    let root = unique_root();
    let server = ServerProc::start(stack, &root, Some(TOKEN), &[], &[]).await;
    let monitor = monitor_support::start_monitor(stack, &root, "mon1", &[], &[]).await;

    // Given a hot task on two Cores and a cold task on a group Core, rows flowing
    let db = stack.create_database("console").await;
    for t in ["orders", "events"] {
        stack
            .sql(&format!(
                "CREATE TABLE `{db}`.`{t}` (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)"
            ))
            .await;
    }
    let hot = unique_name("orders");
    let cold = unique_name("events");
    let group = unique_name("batch");
    let created = server.call_json(
        "POST",
        "/api/v1/tasks",
        &task_config(stack, &hot, &[table_regex(&db, "orders")]),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let mut cold_cfg = task_config(stack, &cold, &[table_regex(&db, "events")]);
    cold_cfg["group"] = json!(group);
    let created = server.call_json("POST", "/api/v1/tasks", &cold_cfg);
    assert_eq!(created.status, 201, "{}", created.text);
    let mut h1 = core(stack, &root, "h1", &["--task", &hot]);
    h1.wait_for_log("replication starts", WAIT).await;
    let mut h2 = core(stack, &root, "h2", &["--task", &hot]);
    h2.wait_for_log("STANDBY", WAIT).await;
    // and a hot task whose broker is unreachable, so that every run fails
    let stuck = unique_name("stuck");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_broker = format!("127.0.0.1:{dead}");
    let mut stuck_cfg = task_config(stack, &stuck, &[table_regex(&db, "orders")]);
    stuck_cfg["redundancy"] = json!(1);
    stuck_cfg["sink"]["brokers"] = json!(dead_broker);
    let created = server.call_json("POST", "/api/v1/tasks", &stuck_cfg);
    assert_eq!(created.status, 201, "{}", created.text);
    let mut c1 = core(stack, &root, "c1", &["--group", &group, "--task", &stuck]);
    c1.wait_for_log("replication starts", WAIT).await;
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        loop {
            stack
                .sql(&format!(
                    "INSERT INTO `{writer_db}`.orders (v) VALUES (1), (2)"
                ))
                .await;
            stack
                .sql(&format!("INSERT INTO `{writer_db}`.events (v) VALUES (3)"))
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    // When the console is opened without a token, it asks for one
    browser.goto(&format!("{}/", server.base));
    page_until(&browser, "the token banner", |b| {
        b.eval(
            r#"const e = document.getElementById("banner");
               return !e.hidden && e.textContent.includes("token");"#,
            json!([]),
        ) == true
    })
    .await;
    // and once it is given, it shows h1 RUNNING and h2 STANDBY
    browser.type_into("#token", TOKEN);
    browser.click("#token-save").await;
    let shown = page_until(&browser, "h1 RUNNING, h2 STANDBY on the page", |b| {
        let v = task_view(b, &hot);
        instances(&v)
            == [
                ("h1".to_string(), "RUNNING".to_string()),
                ("h2".to_string(), "STANDBY".to_string()),
            ]
            && v["state"] == "running"
    })
    .await;
    eprintln!("CONSOLE instances shown {shown:?} after the token was saved");
    // with rows/s from the events counter
    page_until(&browser, "rows/s above zero", |b| {
        let v = task_view(b, &hot);
        v["events"].as_u64().is_some_and(|e| e > 0) && v["rate"].as_f64().is_some_and(|r| r > 0.0)
    })
    .await;
    // the cold task, its group and the Cores with their load
    page_until(&browser, "the group with its task and core", |b| {
        b.eval(
            r#"const g = document.querySelector(`tr[data-group-row="${arguments[0]}"]`);
               return !!g && g.textContent.includes(arguments[1]) && g.textContent.includes("c1")
                 && ["h1", "h2", "c1"].every(h => document.querySelector(`tr[data-core="${h}"]`));"#,
            json!([group, cold]),
        ) == true
            && running_on(&task_view(b, &cold)).as_deref() == Some("c1")
    })
    .await;
    assert!(
        browser.find("#banner[hidden]").is_some(),
        "no error banner once the token is set"
    );
    // the task that keeps failing: amber, with its last error and how long
    page_until(&browser, "the stuck task amber as retrying", |b| {
        let v = b.eval(
            r#"const row = document.querySelector(`tr[data-task="${arguments[0]}"]`);
               const retry = row && row.querySelector(".inst.retrying .retry");
               if (!retry) return null;
               return {
                 state: row.dataset.state,
                 badge: getComputedStyle(row.querySelector(".badge")).backgroundColor,
                 colour: getComputedStyle(retry).color,
                 text: retry.textContent,
               };"#,
            json!([stuck]),
        );
        let text = v["text"].as_str().unwrap_or("");
        v["state"] == "retrying"
            && v["badge"] == "rgb(255, 243, 214)" // --warn-bg
            && v["colour"] == "rgb(154, 98, 0)" // --warn
            && text.starts_with("retrying for ")
            && text.contains("attempts): ")
            && text.contains(&dead_broker)
    })
    .await;

    // When Switchover is pressed
    let t = Instant::now();
    browser
        .click(&format!(
            r#"tr[data-task="{hot}"] button[data-action="switchover"]"#
        ))
        .await;
    // Then h2 becomes RUNNING on the page
    page_until(&browser, "h2 RUNNING after the switchover", |b| {
        running_on(&task_view(b, &hot)).as_deref() == Some("h2")
    })
    .await;
    let switched = t.elapsed();
    eprintln!("CONSOLE switchover: click to h2 RUNNING on the page in {switched:?}");
    let status = server.call("GET", &format!("/api/v1/tasks/{hot}"), None);
    assert_eq!(status.body["switchover"], 1, "{}", status.text);
    page_until(&browser, "h1 back as STANDBY", |b| {
        instances(&task_view(b, &hot))
            == [
                ("h2".to_string(), "RUNNING".to_string()),
                ("h1".to_string(), "STANDBY".to_string()),
            ]
    })
    .await;

    // When a Core is killed
    let t = Instant::now();
    h1.kill();
    // Then a core_lost alert about it appears on the page
    page_until(&browser, "a core_lost alert for h1 on the page", |b| {
        alerts_view(b).iter().any(|(rule, state, text)| {
            rule == "core_lost" && state == "firing" && text.contains("h1")
        })
    })
    .await;
    let alerted = t.elapsed();
    eprintln!("CONSOLE core_lost: SIGKILL to the alert on the page in {alerted:?}");
    page_until(&browser, "h1 gone from the task", |b| {
        instances(&task_view(b, &hot)) == [("h2".to_string(), "RUNNING".to_string())]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // let rows/s settle for the picture

    let path = browser.save_screenshot("console.png");
    let png = std::fs::read(&path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("CONSOLE screenshot: {}", path.display());

    // the Monitor agrees with what the page showed
    assert!(monitor
        .alerts()
        .await
        .iter()
        .any(|a| a.rule == "core_lost" && a.core.as_deref() == Some("h1")));
    writer.abort();
    drop(browser);
    for p in [&mut h2, &mut c1] {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_shows_a_snapshot_in_progress() {
    let stack = shared_stack!();
    let Some(browser) = Browser::start(1440, 700).await else {
        return;
    };
    let root = unique_root();
    let server = ServerProc::start(stack, &root, Some(TOKEN), &[], &[]).await;

    // Given a table of 300,000 rows and a new task copying it in small chunks
    let db = stack.create_database("consnap").await;
    stack
        .sql(&format!(
            "CREATE TABLE `{db}`.`big` (id BIGINT PRIMARY KEY, v INT NOT NULL)"
        ))
        .await;
    stack
        .sql(&format!(
            "INSERT INTO `{db}`.`big` SELECT seq, seq % 7 FROM `{db}`.seq_1_to_300000"
        ))
        .await;
    stack.sql(&format!("ANALYZE TABLE `{db}`.`big`")).await;
    let task = unique_name("copy");
    let mut cfg = task_config(stack, &task, &[table_regex(&db, "big")]);
    cfg["source"]["snapshot"] = json!("initial");
    cfg["source"]["snapshot_chunk_rows"] = json!(1000);
    let created = server.call_json("POST", "/api/v1/tasks", &cfg);
    assert_eq!(created.status, 201, "{}", created.text);
    let mut h1 = core(stack, &root, "h1", &["--task", &task]);
    h1.wait_for_log("replication starts", WAIT).await;

    // When the console is opened during the copy
    browser.goto(&format!("{}/", server.base));
    browser.type_into("#token", TOKEN);
    browser.click("#token-save").await;

    // Then it shows the table being copied with rows done, and a progress bar
    let progress = |b: &Browser| {
        b.eval(
            r#"const e = document.querySelector(`tr[data-task="${arguments[0]}"] .snapshot`);
               if (!e) return null;
               return {table: e.dataset.snapshotTable || null,
                       rows: Number(e.dataset.snapshotRows || 0),
                       bar: (e.querySelector("progress.bar") || {}).value,
                       text: e.textContent};"#,
            json!([task]),
        )
    };
    page_until(&browser, "snapshot progress with rows copied", |b| {
        let v = progress(b);
        v["table"] == json!(format!("{db}.big"))
            && v["rows"].as_u64().is_some_and(|r| r >= 20_000)
            && v["bar"].as_f64().is_some()
            && v["text"].as_str().is_some_and(|t| t.contains("rows/s"))
    })
    .await;
    let shown = progress(&browser);
    let text = shown["text"].as_str().unwrap_or("");
    assert!(text.contains("rows") && text.contains("of ~"), "{shown}");
    let path = browser.save_screenshot("console-snapshot.png");
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{} bytes", png.len());
    eprintln!("CONSOLE snapshot screenshot: {}: {shown}", path.display());
    // and "snapshot done" once it is over
    page_until(&browser, "snapshot done on the page", |b| {
        progress(b)["text"]
            .as_str()
            .is_some_and(|t| t.contains("snapshot done"))
    })
    .await;
    drop(browser);
    h1.stop().await;
}
