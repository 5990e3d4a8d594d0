//! `replicatorctl` as a process against a running server: every task
//! command, `--json`, the documented exit codes, alerts and `alerts --watch`.

mod server_support;

use replicator_common::nodes::{Alert, AlertState, Severity};
use replicator_tests::{names::random_hex, shared_stack, unique_root, Process};
use serde_json::{json, Value};
use server_support::{ctl, ctl_at, task_config, task_name, ServerProc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn alert(id: &str, state: AlertState) -> Vec<u8> {
    serde_json::to_vec(&Alert {
        id: id.into(),
        rule: "lag".into(),
        task: Some("orders".into()),
        core: None,
        severity: Severity::Critical,
        state,
        since_ms: replicator_common::now_ms(),
        message: format!("{id}: lag is 90 s"),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicatorctl_drives_the_server_with_reliable_exit_codes() {
    let stack = shared_stack!();
    let root = unique_root();
    let token = format!("tok-{}", random_hex(16));
    let server = ServerProc::start(stack, &root, Some(&token), &[], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let tf = token_file.display().to_string();
    let name = task_name("ctl");
    let password = format!("pw-{}", random_hex(10));
    let mut cfg = task_config(stack, &name, &["shop\\..*".to_string()]);
    cfg["source"]["password"] = json!(password);
    let file = dir.path().join("task.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let f = file.display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--token-file", tf.as_str()];
        all.extend_from_slice(args);
        ctl(&server, &all, &[])
    };

    // create, then create again: conflict
    let (code, out, err) = run(&["task", "create", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("created task {name} (version 0)\n"));
    let (code, _, err) = run(&["task", "create", &f]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already exists"), "{err}");

    // list and show, as tables and as JSON
    let (code, out, _) = run(&["task", "list"]);
    assert_eq!(code, 0);
    eprintln!("task list:\n{out}");
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("STATE"),
        "{out}"
    );
    let row = out.lines().find(|l| l.starts_with(&name)).expect(&out);
    assert!(row.contains("down"), "no Core runs it: {row}");
    let (code, out, _) = run(&["task", "show", &name]);
    assert_eq!(code, 0);
    assert!(out.contains("Task:") && out.contains(&name), "{out}");
    eprintln!("task show:\n{out}");
    assert!(out.contains("no instances"), "{out}");
    assert!(out.contains("\"password\": \"***\""), "{out}");
    assert!(!out.contains(&password));
    let (code, out, _) = run(&["--json", "task", "show", &name]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["version"], 0);

    // pause, resume, switchover write the control node
    let (code, out, _) = run(&["task", "pause", &name]);
    assert_eq!(
        (code, out.as_str()),
        (0, &*format!("task {name}: desired state is paused\n"))
    );
    let (_, out, _) = run(&["--json", "task", "show", &name]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["desired"],
        "paused"
    );
    let (code, out, _) = run(&["task", "resume", &name]);
    assert_eq!(
        (code, out.as_str()),
        (0, &*format!("task {name}: desired state is running\n"))
    );
    let (code, out, _) = run(&["task", "switchover", &name]);
    assert_eq!(
        (code, out.as_str()),
        (0, &*format!("task {name}: switchover #1 requested\n"))
    );

    // update with a version: ok once, then stale
    cfg["source"]["include"] = json!(["shop\\.orders"]);
    std::fs::write(&file, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (code, out, err) = run(&["task", "update", &f, "--if-version", "0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("updated task {name} (version 1)\n"));
    let (code, _, err) = run(&["task", "update", &f, "--if-version", "0"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("stale"), "{err}");

    // an invalid config: exit 4, every problem listed
    let bad = dir.path().join("bad.json");
    let mut b = cfg.clone();
    b["name"] = json!(task_name("bad"));
    b["source"]["port"] = json!(0);
    b["colour"] = json!("blue");
    std::fs::write(&bad, b.to_string()).unwrap();
    let (code, _, err) = run(&["task", "create", &bad.display().to_string()]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("  - source.port: 0 is out of range"), "{err}");
    assert!(err.contains("  - colour: unknown field"), "{err}");
    assert!(!err.contains(&password));

    // tokens: none is 5, the env variable works, a wrong one is 5
    let (code, _, err) = ctl(&server, &["task", "list"], &[]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("missing bearer token"), "{err}");
    let (code, _, _) = ctl(&server, &["task", "list"], &[("REPLICATOR_TOKEN", &token)]);
    assert_eq!(code, 0);
    let (code, _, _) = ctl(&server, &["task", "list"], &[("REPLICATOR_TOKEN", "nope")]);
    assert_eq!(code, 5);
    // usage errors are 1, an unreachable server is 6
    let (code, _, _) = run(&["task", "frobnicate"]);
    assert_eq!(code, 1);
    let (code, _, err) = run(&["task", "create", "/nonexistent.json"]);
    assert_eq!(code, 1, "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = ctl_at(
        &format!("http://127.0.0.1:{port}"),
        &["--token-file", &tf, "task", "list"],
        &[],
    );
    assert_eq!(code, 6, "{err}");

    // a cold task lands under its group and is found by name
    let mut cold = task_config(stack, &task_name("cold"), &[]);
    cold["group"] = json!("g1");
    let cold_file = dir.path().join("cold.json");
    std::fs::write(&cold_file, cold.to_string()).unwrap();
    let cold_name = cold["name"].as_str().unwrap().to_string();
    let (code, out, _) = run(&["task", "create", &cold_file.display().to_string()]);
    assert_eq!(code, 0);
    assert!(out.contains("in group g1"), "{out}");
    let zk = stack.zk(&root).await;
    assert!(zk
        .get(&format!("{root}/task-groups/g1/{cold_name}"))
        .await
        .unwrap()
        .is_some());
    assert!(zk
        .get(&format!("{root}/task-groups/g1/{cold_name}/control"))
        .await
        .unwrap()
        .is_some());
    let (code, out, _) = run(&["task", "show", &cold_name]);
    assert_eq!(code, 0);
    assert!(out.contains("g1"), "{out}");
    let (code, _, _) = run(&["task", "show", &cold_name, "--group", "g2"]);
    assert_eq!(code, 2);

    // delete: 0, then the task is not found: 2
    let (code, out, _) = run(&["task", "delete", &name]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("deleted task {name} (")), "{out}");
    let (code, _, err) = run(&["task", "show", &name]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["task", "delete", &name]);
    assert_eq!(code, 2);

    // alerts: the table, then --watch prints them as they fire, resolve and go
    let alerts = format!("{root}/alerts");
    zk.ensure_path(&alerts).await.unwrap();
    zk.create_if_absent(&format!("{alerts}/a1"), &alert("a1", AlertState::Firing))
        .await
        .unwrap();
    let (code, out, _) = run(&["alerts"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("FIRING") && out.contains("task=orders"),
        "{out}"
    );
    let mut watch = Process::spawn(
        "replicatorctl",
        [
            "--server",
            &server.base,
            "--token-file",
            &tf,
            "alerts",
            "--watch",
            "--interval-ms",
            "200",
        ],
        &[],
    );
    watch
        .wait_for_log(r"FIRING +critical lag task=orders \(a1\)", WAIT)
        .await;
    zk.client()
        .set_data(
            &format!("{alerts}/a1"),
            &alert("a1", AlertState::Resolved),
            None,
        )
        .await
        .unwrap();
    watch
        .wait_for_log(r"RESOLVED critical lag task=orders \(a1\)", WAIT)
        .await;
    zk.create_if_absent(&format!("{alerts}/a2"), &alert("a2", AlertState::Firing))
        .await
        .unwrap();
    watch
        .wait_for_log(r"FIRING +critical lag task=orders \(a2\)", WAIT)
        .await;
    zk.client()
        .delete(&format!("{alerts}/a1"), None)
        .await
        .unwrap();
    watch.wait_for_log(r"CLEARED +\(a1\)", WAIT).await;
    assert_eq!(
        watch.log_lines_matching("FIRING").len(),
        2,
        "{}",
        watch.log()
    );
    watch.kill();
}
