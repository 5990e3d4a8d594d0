//! Helpers of the Server tests: a `replicator-server` process on a free
//! port, plain HTTP requests, task configs, recursive ZooKeeper dumps.

#![allow(dead_code)]

use replicator_tests::{unique_name, Process, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A running `replicator-server`.
pub struct ServerProc {
    pub process: Process,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub root: String,
    /// Bearer token, when started with one.
    pub token: Option<String>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Value,
    pub text: String,
}

impl ServerProc {
    /// Starts a server under `root`, with a bearer token when `token` is set
    /// and any extra flags, and waits until it listens.
    pub async fn start(
        stack: &Stack,
        root: &str,
        token: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProc {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args: Vec<String> = [
            "--zk",
            stack.zk_connect(),
            "--root",
            root,
            "--listen",
            "127.0.0.1:0",
            "--zk-session-timeout-ms",
            "4000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = token {
            let f = dir.path().join("token");
            std::fs::write(&f, format!("{t}\n")).unwrap();
            args.push("--token-file".into());
            args.push(f.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            env.push(("RUST_LOG", "info"));
        }
        let mut process = Process::spawn("replicator-server", &args, &env);
        let line = process
            .wait_for_log(r"listening", Duration::from_secs(20))
            .await;
        let addr = regex::Regex::new(r"addr=(\S+)")
            .unwrap()
            .captures(&line)
            .unwrap_or_else(|| panic!("no addr in `{line}`"))[1]
            .to_string();
        ServerProc {
            process,
            base: format!("http://{addr}"),
            root: root.to_string(),
            token: token.map(str::to_string),
            _dir: dir,
        }
    }

    /// A request with this server's token (if any).
    pub fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        request(&self.base, method, path, &headers, body)
    }

    /// `call` with a JSON body.
    pub fn call_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        self.call(method, path, Some(body.to_string().as_bytes()))
    }
}

/// Any request, with exactly the headers given.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let result = match body {
        Some(b) => agent.run(req.body(b.to_vec()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        etag,
        body,
        text,
    }
}

/// A valid hot task config reading `include` tables of the test MariaDB
/// into `{database}.{table}` topics, from the current position, the stream
/// only (`"snapshot": "never"`: a test asks for a snapshot when it wants one).
pub fn task_config(stack: &Stack, name: &str, include: &[String]) -> Value {
    json!({
        "name": name,
        "source": {"host": stack.mysql_host(), "port": stack.mysql_port(),
                   "user": stack.mysql_user(), "password": stack.mysql_password(),
                   "server_id": 20_000 + (rand::random::<u32>() % 1_000_000),
                   "include": include, "start": "current", "snapshot": "never"},
        "sink": {"brokers": stack.kafka_bootstrap(), "topic": "{database}.{table}", "partitions": 2}
    })
}

/// `db.table` as an anchored include regex.
pub fn table_regex(db: &str, table: &str) -> String {
    format!("{}\\.{}", regex::escape(db), regex::escape(table))
}

/// A fresh task name.
pub fn task_name(prefix: &str) -> String {
    unique_name(prefix)
}

/// One znode of a dump: data, data version, children version.
pub type Node = (Vec<u8>, i32, i32);

/// Every znode under `root` (included) with its data and versions.
pub async fn dump(client: &zookeeper_client::Client, root: &str) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        let (data, stat) = match client.get_data(&p).await {
            Ok(x) => x,
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(e) => panic!("get {p}: {e}"),
        };
        out.insert(p.clone(), (data, stat.version, stat.cversion));
        for c in client.list_children(&p).await.unwrap_or_default() {
            stack.push(format!("{p}/{c}"));
        }
    }
    out
}

/// Runs `replicatorctl` with `args` against `server`; returns exit code,
/// stdout and stderr.
pub fn ctl(server: &ServerProc, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    ctl_at(&server.base, args, env)
}

/// Runs `replicatorctl` with `args` against the server at `base`.
pub fn ctl_at(base: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(replicator_tests::bin_path("replicatorctl"));
    cmd.arg("--server").arg(base).args(args);
    cmd.env_remove("REPLICATOR_TOKEN")
        .env_remove("REPLICATOR_TOKEN_FILE")
        .env_remove("REPLICATOR_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run replicatorctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
