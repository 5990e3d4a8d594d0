//! A Kafka whose data survives a broker restart: a private Tansu on its S3
//! storage engine, backed by a local S3 server (moto, from PyPI), so a test
//! can stop and start the broker mid-stream on the same port.
//!
//! Tansu 0.6.0's prebuilt binary has the `dynostore` storages only (memory
//! and S3); moto keeps the bucket in its own memory, so the data lives as
//! long as moto runs, across any number of broker restarts.

use crate::process::{Process, Signal};
use crate::reaper;
use crate::servers::tansu_path;
use crate::stack::Stack;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Tansu on S3 (moto), on free loopback ports.
pub struct S3Kafka {
    /// `127.0.0.1:PORT`, the same across restarts.
    pub bootstrap: String,
    port: u16,
    s3_port: u16,
    dir: PathBuf,
    moto: Process,
    tansu: Option<Process>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

fn wait_listening(port: u16, what: &str, proc: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listening(port) {
        assert!(
            Instant::now() < deadline && proc.is_running(),
            "{what} did not listen on {port}:\n{}",
            proc.tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `PUT /<bucket>` on the S3 server (moto needs no signature).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send PUT");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket}: {answer}"
    );
}

impl S3Kafka {
    /// Starts moto (`python3 -m moto.server`; `MOTO_PYTHON` names another
    /// interpreter) and Tansu on it. Panics with their logs when they do not start.
    pub fn start() -> S3Kafka {
        let dir = reaper::fresh_dir("s3-kafka");
        let s3_port = free_port();
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &s3_port.to_string(),
        ]);
        let mut moto = Process::spawn_command("moto", cmd);
        wait_listening(
            s3_port,
            "moto (pip install 'moto[server]'; deploy/install.sh does)",
            &mut moto,
        );
        create_bucket(s3_port, "tansu");
        let mut k = S3Kafka {
            bootstrap: String::new(),
            port: free_port(),
            s3_port,
            dir,
            moto,
            tansu: None,
        };
        k.bootstrap = format!("127.0.0.1:{}", k.port);
        k.start_broker();
        k
    }

    fn start_broker(&mut self) {
        let tansu = tansu_path().expect("tansu binary: run deploy/install.sh");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut cmd = Command::new(&tansu);
            cmd.arg("broker")
                .args(["--listener-url", &url, "--advertised-listener-url", &url])
                .args(["--storage-engine", "s3://tansu/"])
                .current_dir(&self.dir)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.s3_port))
                .env("AWS_ALLOW_HTTP", "true");
            let mut p = Process::spawn_command("tansu-s3", cmd);
            let started = Instant::now();
            while p.is_running()
                && !listening(self.port)
                && started.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            if listening(self.port) && p.is_running() {
                self.tansu = Some(p);
                return;
            }
            // the port of the previous broker may still be held for a moment
            assert!(
                Instant::now() < deadline,
                "tansu on S3 did not start:\n{}",
                p.tail(20)
            );
            p.kill();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the broker (SIGTERM, then waits for it to exit) and starts it
    /// again on the same port and storage; returns how long the broker was away.
    pub async fn restart(&mut self) -> Duration {
        let t0 = Instant::now();
        if let Some(mut p) = self.tansu.take() {
            p.signal(Signal::Term);
            p.wait_exit(Duration::from_secs(30)).await;
        }
        tokio::task::block_in_place(|| self.start_broker());
        t0.elapsed()
    }

    /// A stack with `base`'s ZooKeeper and MariaDB and this Kafka.
    pub fn stack(&self, base: &Stack) -> Stack {
        base.with_kafka(&self.bootstrap, Vec::new())
    }

    pub fn stop(mut self) {
        if let Some(mut p) = self.tansu.take() {
            p.kill();
        }
        self.moto.kill();
    }
}
