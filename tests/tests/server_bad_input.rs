//! The Server refuses malformed requests with the right status and a
//! message naming the problem, and leaves ZooKeeper exactly as it was; it
//! never shows the source password.

mod server_support;

use replicator_tests::{shared_stack, unique_root};
use serde_json::{json, Value};
use server_support::{dump, request, task_config, task_name, ServerProc};

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Good,
    Missing,
    Wrong,
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    auth: Auth,
    if_match: Option<&'static str>,
    body: Option<Vec<u8>>,
    status: u16,
    /// Substrings the `error` message must contain.
    says: Vec<&'static str>,
}

fn case(what: &'static str, method: &'static str, path: &str, body: Option<Value>) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        auth: Auth::Good,
        if_match: None,
        body: body.map(|b| b.to_string().into_bytes()),
        status: 400,
        says: Vec::new(),
    }
}

impl Case {
    fn expect(mut self, status: u16, says: &[&'static str]) -> Case {
        self.status = status;
        self.says = says.to_vec();
        self
    }
    fn auth(mut self, auth: Auth) -> Case {
        self.auth = auth;
        self
    }
    fn if_match(mut self, v: &'static str) -> Case {
        self.if_match = Some(v);
        self
    }
    fn raw(mut self, body: &[u8]) -> Case {
        self.body = Some(body.to_vec());
        self
    }
}

fn with(base: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    f(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_and_change_nothing() {
    let stack = shared_stack!();
    let root = unique_root();
    let token = format!("tok-{}", replicator_tests::names::random_hex(16));
    let mut server = ServerProc::start(stack, &root, Some(&token), &[], &[]).await;
    let password = format!("pw-SECRET-{}", replicator_tests::names::random_hex(8));

    // Given an existing task (version 1 after one update) and a fresh name
    let name = task_name("bad");
    let mut cfg = task_config(stack, &name, &["shop\\..*".to_string()]);
    cfg["source"]["password"] = json!(password);
    let created = server.call_json("POST", "/api/v1/tasks", &cfg);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.etag.as_deref(), Some("\"0\""));
    let updated = request(
        &server.base,
        "PUT",
        &format!("/api/v1/tasks/{name}"),
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("If-Match", "\"0\""),
        ],
        Some(cfg.to_string().as_bytes()),
    );
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["version"], 1);
    let fresh = with(&cfg, |v| v["name"] = json!(task_name("fresh")));
    let task_url = format!("/api/v1/tasks/{name}");

    let cases = vec![
        case("bad JSON", "POST", "/api/v1/tasks", None)
            .raw(b"{\"name\": \"x\",")
            .expect(400, &["not valid JSON"]),
        case("not an object", "POST", "/api/v1/tasks", Some(json!([1])))
            .expect(400, &["must be a JSON object"]),
        case(
            "unknown field",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["colour"] = json!("blue"))),
        )
        .expect(400, &["colour: unknown field"]),
        case(
            "nested unknown field",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["sink"]["acks"] = json!("all"))),
        )
        .expect(400, &["sink.acks: unknown field"]),
        case(
            "name ../x",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["name"] = json!("../x"))),
        )
        .expect(400, &["name: ", "`/`"]),
        case(
            "name a/b",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["name"] = json!("a/b"))),
        )
        .expect(400, &["name: ", "`a/b` has `/`"]),
        case(
            "129-char name",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["name"] = json!("x".repeat(129)))),
        )
        .expect(400, &["name: ", "129 characters long"]),
        case(
            "port 0",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["source"]["port"] = json!(0))),
        )
        .expect(400, &["source.port: 0 is out of range"]),
        case(
            "port 70000",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["source"]["port"] = json!(70000))),
        )
        .expect(400, &["source.port: 70000 is out of range"]),
        case(
            "bad regex",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| {
                v["source"]["include"] = json!(["shop\\.(x"])
            })),
        )
        .expect(400, &["source.include[0]", "bad regex"]),
        case(
            "unknown format",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| v["sink"]["format"] = json!("avro"))),
        )
        .expect(
            400,
            &[
                "sink.format",
                "unknown format `avro`; valid formats: json, debezium, canal, maxwell",
            ],
        ),
        case(
            "transactions topic with a placeholder",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| {
                v["sink"]["format"] = json!("debezium");
                v["sink"]["transactions_topic"] = json!("tx.{table}");
            })),
        )
        .expect(400, &["sink.transactions_topic", "is one topic"]),
        case(
            "missing brokers",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| {
                v["sink"].as_object_mut().unwrap().remove("brokers");
            })),
        )
        .expect(400, &["sink.brokers: is required"]),
        case(
            "three problems at once",
            "POST",
            "/api/v1/tasks",
            Some(with(&fresh, |v| {
                v["colour"] = json!(1);
                v["source"]["port"] = json!(70000);
                v["source"].as_object_mut().unwrap().remove("host");
            })),
        )
        .expect(400, &["3 problems", "colour", "source.port", "source.host"]),
        case("no token", "GET", "/api/v1/tasks", None)
            .auth(Auth::Missing)
            .expect(401, &["missing bearer token"]),
        case(
            "wrong token on a valid create",
            "POST",
            "/api/v1/tasks",
            Some(fresh.clone()),
        )
        .auth(Auth::Wrong)
        .expect(401, &["wrong bearer token"]),
        case("wrong token on delete", "DELETE", &task_url, None)
            .auth(Auth::Wrong)
            .expect(401, &["wrong bearer token"]),
        case("no token on metrics", "GET", "/metrics", None)
            .auth(Auth::Missing)
            .expect(401, &["missing bearer token"]),
        case("stale version", "PUT", &task_url, Some(cfg.clone()))
            .if_match("\"0\"")
            .expect(409, &["version 0 is stale", "at version 1"]),
        case(
            "If-Match not a version",
            "PUT",
            &task_url,
            Some(cfg.clone()),
        )
        .if_match("abc")
        .expect(400, &["If-Match"]),
        case("body over 1 MiB", "POST", "/api/v1/tasks", None)
            .raw(&vec![b' '; (1 << 20) + 1])
            .expect(413, &["over the limit of 1048576 bytes"]),
        case("create twice", "POST", "/api/v1/tasks", Some(cfg.clone()))
            .expect(409, &["already exists"]),
        case(
            "cold task with a hot task's name",
            "POST",
            "/api/v1/tasks",
            Some(with(&cfg, |v| v["group"] = json!("g1"))),
        )
        .expect(409, &["already exists"]),
        case(
            "delete unknown",
            "DELETE",
            "/api/v1/tasks/no_such_task",
            None,
        )
        .expect(404, &["no task `no_such_task`"]),
        case("show unknown", "GET", "/api/v1/tasks/no_such_task", None)
            .expect(404, &["no task `no_such_task`"]),
        case(
            "pause unknown",
            "POST",
            "/api/v1/tasks/no_such_task/pause",
            None,
        )
        .expect(404, &["no task `no_such_task`"]),
        case(
            "update unknown",
            "PUT",
            "/api/v1/tasks/no_such_task",
            Some(with(&cfg, |v| v["name"] = json!("no_such_task"))),
        )
        .expect(404, &["no task `no_such_task`"]),
        case(
            "URL name differs from body name",
            "PUT",
            &task_url,
            Some(with(&cfg, |v| v["name"] = json!("other"))),
        )
        .expect(400, &["`other` does not match the task"]),
        case(
            "group change on update",
            "PUT",
            &task_url,
            Some(with(&cfg, |v| v["group"] = json!("g1"))),
        )
        .expect(400, &["group cannot change"]),
        case("URL name ../x", "GET", "/api/v1/tasks/..%2Fx", None)
            .expect(400, &["bad task name in the URL"]),
        case(
            "URL name of 129 chars",
            "DELETE",
            &format!("/api/v1/tasks/{}", "y".repeat(129)),
            None,
        )
        .expect(400, &["129 characters long"]),
        case(
            "bad ?group=",
            "GET",
            &format!("{task_url}?group=a%20b"),
            None,
        )
        .expect(400, &["bad group"]),
        case(
            "unknown action",
            "POST",
            &format!("{task_url}/frobnicate"),
            None,
        )
        .expect(404, &["no action `frobnicate`"]),
        case("unknown route", "GET", "/api/v1/nothing", None)
            .expect(404, &["no route GET /api/v1/nothing"]),
        case("method not allowed", "PATCH", "/api/v1/tasks", None)
            .expect(405, &["PATCH is not allowed on /api/v1/tasks"]),
    ];
    assert!(cases.len() >= 15);

    let zk = stack.zk_client().await;
    let wrong = format!("Bearer {token}x");
    let good = format!("Bearer {token}");
    for c in &cases {
        let before = dump(&zk, &root).await;
        let mut headers: Vec<(&str, &str)> = Vec::new();
        match c.auth {
            Auth::Good => headers.push(("Authorization", &good)),
            Auth::Wrong => headers.push(("Authorization", &wrong)),
            Auth::Missing => {}
        }
        if let Some(v) = c.if_match {
            headers.push(("If-Match", v));
        }
        let a = request(&server.base, c.method, &c.path, &headers, c.body.as_deref());
        // Then the status and message name the problem
        assert_eq!(a.status, c.status, "{}: {}", c.what, a.text);
        let msg = a.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error message in {}", c.what, a.text));
        for s in &c.says {
            assert!(msg.contains(s), "{}: `{msg}` does not say `{s}`", c.what);
        }
        assert!(!a.text.contains(&password), "{}: password leaked", c.what);
        // and ZooKeeper is unchanged
        let after = dump(&zk, &root).await;
        assert_eq!(before, after, "{}: ZooKeeper changed", c.what);
        eprintln!("ok: {} -> {} {msg}", c.what, a.status);
    }

    // /healthz stays open; the password is never shown, logged or echoed
    let health = request(&server.base, "GET", "/healthz", &[], None);
    assert_eq!(health.status, 200, "{}", health.text);
    let show = server.call("GET", &task_url, None);
    assert_eq!(show.status, 200);
    assert_eq!(show.body["config"]["source"]["password"], "***");
    let list = server.call("GET", "/api/v1/tasks", None);
    assert!(list.text.contains(&name));
    let metrics = server.call("GET", "/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .text
            .contains("replicator_tasks{kind=\"hot\",state=\"down\"} 1"),
        "{}",
        metrics.text
    );
    for a in [&show, &list, &metrics] {
        assert!(!a.text.contains(&password));
    }
    assert!(
        !server.process.log().contains(&password),
        "password in the server log"
    );
    assert!(
        !server.process.log().contains(&token),
        "token in the server log"
    );
    // and it stops cleanly on SIGTERM
    let exit = server.process.stop().await;
    assert!(exit.success(), "{exit}\n{}", server.process.tail(10));
}
