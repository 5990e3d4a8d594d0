//! The Server under concurrent and bulk use: optimistic concurrency never
//! loses an update, and hundreds of tasks are created, listed, scraped and
//! deleted in bounded time (timings printed).

mod server_support;

use replicator_tests::{shared_stack, unique_root};
use serde_json::json;
use server_support::{request, task_config, task_name, ServerProc};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_with_if_match_never_lose_a_write() {
    let stack = shared_stack!();
    let root = unique_root();
    let server = ServerProc::start(stack, &root, None, &[], &[]).await;
    let name = task_name("race");
    let cfg = task_config(stack, &name, &[]);
    assert_eq!(server.call_json("POST", "/api/v1/tasks", &cfg).status, 201);

    // When 8 clients read-modify-write the same task 10 times each
    let path = format!("/api/v1/tasks/{name}");
    let base = server.base.clone();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (base, path, cfg) = (base.clone(), path.clone(), cfg.clone());
            std::thread::spawn(move || {
                let mut won = Vec::new();
                let mut lost = 0;
                for i in 0..10 {
                    let got = request(&base, "GET", &path, &[], None);
                    let etag = got.etag.expect("ETag");
                    let mut c = cfg.clone();
                    c["sink"]["properties"] = json!({"client.id": format!("w{t}-{i}")});
                    let put = request(
                        &base,
                        "PUT",
                        &path,
                        &[("If-Match", &etag)],
                        Some(c.to_string().as_bytes()),
                    );
                    match put.status {
                        200 => won.push(put.body["version"].as_i64().unwrap()),
                        409 => lost += 1,
                        s => panic!("unexpected {s}: {}", put.text),
                    }
                }
                (won, lost)
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    let mut wins = 0;
    let mut losses = 0;
    for h in handles {
        let (won, lost) = h.join().unwrap();
        wins += won.len();
        losses += lost;
        versions.extend(won);
    }
    // Then every successful update has its own version and none was overwritten blindly
    eprintln!("{wins} updates won, {losses} got 409");
    assert_eq!(versions.len(), wins, "two updates claimed one version");
    let last = server.call("GET", &path, None);
    assert_eq!(last.body["version"].as_i64().unwrap(), wins as i64);
    assert!(wins >= 10 && wins + losses == 80, "{wins} + {losses}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_tasks_are_created_listed_and_deleted_in_bounded_time() {
    let stack = shared_stack!();
    let root = unique_root();
    let server = ServerProc::start(stack, &root, None, &[], &[]).await;
    const N: usize = 200;
    let names: Vec<String> = (0..N).map(|_| task_name("bulk")).collect();

    let mut create = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut cfg = task_config(stack, n, &[]);
        if i % 2 == 1 {
            cfg["group"] = json!(format!("g{}", i % 5));
        }
        let t = Instant::now();
        let a = server.call_json("POST", "/api/v1/tasks", &cfg);
        create.push(t.elapsed());
        assert_eq!(a.status, 201, "{}", a.text);
    }
    create.sort();
    let t = Instant::now();
    let list = server.call("GET", "/api/v1/tasks", None);
    let list_time = t.elapsed();
    assert_eq!(list.body["tasks"].as_array().unwrap().len(), N);
    let t = Instant::now();
    let metrics = server.call("GET", "/metrics", None);
    let metrics_time = t.elapsed();
    let down: usize = metrics
        .text
        .lines()
        .filter(|l| l.starts_with("replicator_tasks{") && l.contains("state=\"down\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(down, N, "{}", metrics.text);
    let mut show = Vec::new();
    for n in names.iter().skip(1).step_by(10) {
        let t = Instant::now();
        assert_eq!(
            server
                .call("GET", &format!("/api/v1/tasks/{n}"), None)
                .status,
            200
        );
        show.push(t.elapsed());
    }
    show.sort();
    let mut delete = Vec::new();
    for n in &names {
        let t = Instant::now();
        let a = server.call("DELETE", &format!("/api/v1/tasks/{n}"), None);
        delete.push(t.elapsed());
        assert_eq!(a.status, 200, "{}", a.text);
    }
    delete.sort();
    eprintln!(
        "{N} tasks: create p50 {:?} p99 {:?}; list {list_time:?} ({} KiB); metrics {metrics_time:?}; \
         show of a cold task p50 {:?}; delete p50 {:?} p99 {:?}",
        percentile(&create, 0.5),
        percentile(&create, 0.99),
        list.text.len() / 1024,
        percentile(&show, 0.5),
        percentile(&delete, 0.5),
        percentile(&delete, 0.99),
    );
    assert!(
        list_time < Duration::from_secs(10),
        "list took {list_time:?}"
    );
    assert_eq!(
        server.call("GET", "/api/v1/tasks", None).body["tasks"],
        json!([])
    );
}
