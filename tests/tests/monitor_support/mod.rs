//! Helpers of the Monitor scenario tests: a webhook receiver that records
//! every notification, monitors to start with short thresholds, plain HTTP
//! GETs, and the latency log the README figures come from.

#![allow(dead_code)]

use replicator_common::nodes::{Alert, AlertState};
use replicator_tests::{Process, Stack};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Session timeout of the monitors and Cores of these tests.
pub const SESSION_MS: u64 = 1500;

/// Short thresholds for tests (flag, value); override with [`start_monitor`]'s `overrides`.
pub const TEST_THRESHOLDS: &[(&str, &str)] = &[
    ("--poll-interval-ms", "200"),
    ("--not-running-grace-ms", "1000"),
    ("--no-standby-grace-ms", "1000"),
    ("--lag-ms", "3000"),
    ("--stalled-ms", "2000"),
    ("--source-poll-interval-ms", "300"),
    ("--core-lost-grace-ms", "0"),
    ("--failover-hold-ms", "3000"),
    ("--repeat-interval-ms", "3600000"),
    ("--resolved-linger-ms", "2000"),
];

/// One notification as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Wall clock at arrival (ms since the epoch).
    pub at_ms: i64,
    pub alert: Alert,
}

/// An HTTP server recording every POSTed alert.
pub struct WebhookReceiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    if let Some(body) = read_request(stream).await {
                        match serde_json::from_slice::<Alert>(&body) {
                            Ok(alert) => sink.lock().unwrap().push(Received {
                                at_ms: replicator_common::now_ms(),
                                alert,
                            }),
                            Err(e) => eprintln!(
                                "webhook receiver: not an alert ({e}): {}",
                                String::from_utf8_lossy(&body)
                            ),
                        }
                    }
                });
            }
        });
        WebhookReceiver { port, got, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Notifications of `rule` in `state`.
    pub fn of(&self, rule: &str, state: AlertState) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.alert.rule == rule && r.alert.state == state)
            .collect()
    }

    /// Waits for the first notification matching `pred` that arrived at or
    /// after `after_ms`.
    pub async fn wait<F>(&self, what: &str, after_ms: i64, timeout: Duration, pred: F) -> Received
    where
        F: Fn(&Alert) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self
                .all()
                .into_iter()
                .find(|r| r.at_ms >= after_ms && pred(&r.alert))
            {
                return r;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no webhook notification {what} within {timeout:?}; received:\n{:#?}",
                    self.all()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `rule` in `state` (optionally about `task` or `core`).
    pub async fn wait_rule(
        &self,
        rule: &str,
        state: AlertState,
        after_ms: i64,
        timeout: Duration,
    ) -> Received {
        self.wait(&format!("{rule} {state:?}"), after_ms, timeout, |a| {
            a.rule == rule && a.state == state
        })
        .await
    }

    /// [`Self::wait_rule`], then records the time from `after_ms` to the
    /// notification as the latency of `rule` for `what` ([`record_latency`]).
    pub async fn wait_rule_timed(
        &self,
        rule: &str,
        state: AlertState,
        after_ms: i64,
        timeout: Duration,
        what: &str,
    ) -> Received {
        let got = self.wait_rule(rule, state, after_ms, timeout).await;
        record_latency(rule, what, got.at_ms - after_ms);
        got
    }

    /// Checks that no alert was notified twice: one firing per (id,
    /// since_ms), at most one resolution per firing.
    pub fn assert_no_duplicates(&self) {
        let all = self.all();
        let mut firings = std::collections::BTreeMap::<(String, i64), usize>::new();
        let mut per_id = std::collections::BTreeMap::<String, (usize, usize)>::new();
        for r in &all {
            let e = per_id.entry(r.alert.id.clone()).or_default();
            match r.alert.state {
                AlertState::Firing => {
                    *firings
                        .entry((r.alert.id.clone(), r.alert.since_ms))
                        .or_default() += 1;
                    e.0 += 1;
                }
                AlertState::Resolved => e.1 += 1,
            }
        }
        for ((id, since), n) in firings {
            assert_eq!(n, 1, "alert {id} (since {since}) fired {n} times: {all:#?}");
        }
        for (id, (fired, resolved)) in per_id {
            assert!(
                resolved <= fired,
                "alert {id}: {fired} firing and {resolved} resolved notifications: {all:#?}"
            );
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A [`WebhookReceiver`] and a Monitor `m1` over `root` notifying it, with
/// `overrides` of [`TEST_THRESHOLDS`] and `extra` flags after the webhook's.
pub async fn monitor_with_hook(
    stack: &Stack,
    root: &str,
    overrides: &[(&str, &str)],
    extra: &[&str],
) -> (WebhookReceiver, Monitor) {
    let hook = WebhookReceiver::start().await;
    let url = hook.url();
    let mut flags = vec!["--webhook", url.as_str()];
    flags.extend_from_slice(extra);
    let monitor = start_monitor(stack, root, "m1", overrides, &flags).await;
    (hook, monitor)
}

/// Reads one HTTP request, answers 200, returns the body.
async fn read_request(stream: TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await.ok()?;
    }
    let mut stream = reader.into_inner();
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    let _ = stream.shutdown().await;
    Some(body)
}

/// `GET path` on `addr`: status and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A running monitor and its HTTP address.
pub struct Monitor {
    pub process: Process,
    pub addr: String,
}

impl Monitor {
    pub async fn alerts(&self) -> Vec<Alert> {
        let (status, body) = http_get(&self.addr, "/alerts").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /alerts: {e}: {body}"))
    }
    pub async fn metrics(&self) -> String {
        let (status, body) = http_get(&self.addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Starts `replicator-monitor` named `host` on `root` with [`TEST_THRESHOLDS`]
/// (replaced by `overrides` where they name the same flag) and `extra` flags.
pub async fn start_monitor(
    stack: &Stack,
    root: &str,
    host: &str,
    overrides: &[(&str, &str)],
    extra: &[&str],
) -> Monitor {
    let mut args: Vec<String> = [
        "--zk",
        stack.zk_connect(),
        "--root",
        root,
        "--host-id",
        host,
        "--listen",
        "127.0.0.1:0",
        "--zk-session-timeout-ms",
        &SESSION_MS.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (flag, value) in TEST_THRESHOLDS {
        let v = overrides
            .iter()
            .find(|(f, _)| f == flag)
            .map_or(*value, |(_, v)| *v);
        args.push(flag.to_string());
        args.push(v.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut process = Process::spawn(
        "replicator-monitor",
        &args,
        &[("RUST_LOG", "info,replicator_monitor=debug")],
    );
    let line = process
        .wait_for_log("monitor listening", Duration::from_secs(20))
        .await;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("no addr in {line}"))
        .to_string();
    Monitor { process, addr }
}

/// Records how long a notification took after its cause, for the README:
/// printed, and appended to `<target tmp>/monitor-latency.txt`.
pub fn record_latency(rule: &str, what: &str, ms: i64) {
    let line = format!("MONITOR-LATENCY rule={rule} ms={ms} what={what}");
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("monitor-latency.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{line}");
    }
}
