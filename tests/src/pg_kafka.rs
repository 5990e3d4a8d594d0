//! A Kafka whose data and users survive a broker restart: a private Tansu
//! on its `postgres://` storage engine, backed by a [`Postgres`] server of
//! the test's own, so a test can stop (SIGTERM) or kill (SIGKILL) the
//! broker mid-stream and start it again on the same port and data, and can
//! create SCRAM users that a broker started later with `--authentication`
//! still knows.
//!
//! The broker binary: Tansu 0.6.0 built with the `postgres` storage
//! feature, which the prebuilt binary (`$CARGO_HOME/bin/tansu`, memory and
//! S3 storages only) lacks. It is `$REPLICATOR_TANSU_PG`, else
//! [`TANSU_PG_DEFAULT`] under `$HOME` (where `deploy/install.sh` builds
//! it). A missing binary fails the test, saying so; only
//! `REPLICATOR_TEST_SKIP_TANSU_PG=1` skips these tests
//! ([`skip_tansu_pg_tests`]).
//!
//! Tansu 0.6.0 does not create its tables on PostgreSQL: the harness
//! applies `deploy/conf/tansu-pg-schema.sql` to a fresh database `tansu`
//! before the first start.

use crate::postgres::Postgres;
use crate::process::{Process, Signal};
use crate::reaper;
use crate::servers::{free_port, local};
use crate::stack::Stack;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set to `1` to skip the tests that need the postgres-enabled Tansu.
pub const SKIP_TANSU_PG_ENV: &str = "REPLICATOR_TEST_SKIP_TANSU_PG";

/// Where `deploy/install.sh` puts the postgres-enabled Tansu, below `$HOME`.
pub const TANSU_PG_DEFAULT: &str = ".local/share/mysql-replicator/tansu-pg/bin/tansu";

/// True (and prints `skipped: ...`) when `REPLICATOR_TEST_SKIP_TANSU_PG=1`.
pub fn skip_tansu_pg_tests() -> bool {
    let skip = std::env::var(SKIP_TANSU_PG_ENV).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: {SKIP_TANSU_PG_ENV} is set");
    }
    skip
}

/// The postgres-enabled Tansu (see the module doc); panics saying how to
/// get it when it is missing or lacks the `postgres` storage.
pub fn tansu_pg_path() -> PathBuf {
    let path = match std::env::var_os("REPLICATOR_TANSU_PG") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(TANSU_PG_DEFAULT)
        }
    };
    let help = Command::new(&path).arg("--help").output();
    let engines = help
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let has_postgres = engines
        .lines()
        .any(|l| l.starts_with("Storage engines:") && l.contains("postgres"));
    assert!(
        has_postgres,
        "no Tansu with the postgres storage at {} ({}): run deploy/install.sh, or set \
         REPLICATOR_TANSU_PG to such a binary, or {SKIP_TANSU_PG_ENV}=1 to skip these tests",
        path.display(),
        match &help {
            Err(e) => e.to_string(),
            Ok(_) => "its --help lists no postgres storage engine".into(),
        }
    );
    path
}

/// The SCRAM mechanisms `tansu user create` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    /// The `sasl.mechanism` name.
    pub fn name(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }
    fn tansu_arg(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }
}

/// Tansu on PostgreSQL, on a free loopback port.
pub struct PgKafka {
    /// `127.0.0.1:PORT` of the broker itself, the same across restarts
    /// (changed only by [`PgKafka::move_to`]).
    pub bootstrap: String,
    port: u16,
    advertised: String,
    authentication: bool,
    dir: PathBuf,
    binary: PathBuf,
    pg: Postgres,
    tansu: Option<Process>,
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&local(port), Duration::from_millis(300)).is_ok()
}

impl PgKafka {
    /// PostgreSQL with Tansu's schema, and Tansu on it advertising its own
    /// address.
    pub fn start() -> PgKafka {
        let port = free_port().expect("a free port");
        PgKafka::start_advertising(port, &format!("tcp://127.0.0.1:{port}"))
    }

    /// [`PgKafka::start`], or `None` when [`skip_tansu_pg_tests`] says to
    /// skip; for a multi-thread runtime (it blocks in place while starting).
    pub fn start_or_skip() -> Option<PgKafka> {
        if skip_tansu_pg_tests() {
            return None;
        }
        Some(tokio::task::block_in_place(PgKafka::start))
    }

    /// As [`PgKafka::start`], listening on `port` and advertising
    /// `advertised` (a TLS front's URL, for example).
    pub fn start_advertising(port: u16, advertised: &str) -> PgKafka {
        let binary = tansu_pg_path();
        let pg = Postgres::start();
        pg.sql("postgres", "create database tansu");
        let schema =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/conf/tansu-pg-schema.sql");
        pg.run_file("tansu", &schema);
        let mut k = PgKafka {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            advertised: advertised.to_string(),
            authentication: false,
            dir: reaper::fresh_dir("tansu-pg"),
            binary,
            pg,
            tansu: None,
        };
        k.start_broker();
        k
    }

    fn start_broker(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut cmd = Command::new(&self.binary);
            cmd.arg("broker")
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &self.advertised])
                .args(["--storage-engine", &self.pg.url("tansu")])
                // tansu reads a .env file from its working directory
                .current_dir(&self.dir)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
            if self.authentication {
                cmd.arg("--authentication");
            }
            let mut p = Process::spawn_command("tansu-pg", cmd);
            let started = Instant::now();
            while p.is_running()
                && !listening(self.port)
                && started.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if listening(self.port) && p.is_running() {
                self.tansu = Some(p);
                return;
            }
            // the previous broker's port may still be held for a moment
            assert!(
                Instant::now() < deadline,
                "tansu on PostgreSQL did not start:\n{}",
                p.tail(20)
            );
            p.kill();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    async fn stop_broker(&mut self, signal: Signal) {
        if let Some(mut p) = self.tansu.take() {
            p.signal(signal);
            p.wait_exit(Duration::from_secs(30)).await;
        }
    }

    /// Stops the broker with `signal` (`Term` or `Kill`), waits for it to
    /// exit and starts it again on the same port and database; returns how
    /// long the broker was away (until its port accepted connections).
    pub async fn restart(&mut self, signal: Signal) -> Duration {
        let t0 = Instant::now();
        self.stop_broker(signal).await;
        tokio::task::block_in_place(|| self.start_broker());
        t0.elapsed()
    }

    /// A free loopback port for [`PgKafka::move_to`].
    pub fn spare_port() -> u16 {
        free_port().expect("a free port")
    }

    /// Stops the broker with `signal` and starts another on `port` on the
    /// same database, advertising `127.0.0.1:port`: to clients the leader of
    /// every partition moved to another broker (each Tansu names itself
    /// leader of every partition). Returns how long until the new broker
    /// accepted connections; [`PgKafka::bootstrap`] names it from then on.
    pub async fn move_to(&mut self, signal: Signal, port: u16) -> Duration {
        let t0 = Instant::now();
        self.stop_broker(signal).await;
        self.port = port;
        self.bootstrap = format!("127.0.0.1:{port}");
        self.advertised = format!("tcp://127.0.0.1:{port}");
        tokio::task::block_in_place(|| self.start_broker());
        t0.elapsed()
    }

    /// Restarts the broker (SIGTERM) with or without `--authentication`.
    pub async fn set_authentication(&mut self, on: bool) {
        self.stop_broker(Signal::Term).await;
        self.authentication = on;
        tokio::task::block_in_place(|| self.start_broker());
    }

    /// `tansu user create` against the running broker (which must not
    /// require authentication: Tansu 0.6.0 refuses it then).
    pub fn create_user(&self, mechanism: Scram, name: &str, password: &str) {
        let out = Command::new(&self.binary)
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--mechanism", mechanism.tansu_arg(), name, password])
            .current_dir(&self.dir)
            .output()
            .expect("run tansu user create");
        assert!(
            out.status.success(),
            "tansu user create {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = self.pg.sql(
            "tansu",
            &format!(
                "select count(*) from scram_credential where username = '{name}' \
             and mechanism = {}",
                match mechanism {
                    Scram::Sha256 => 1,
                    Scram::Sha512 => 2,
                }
            ),
        );
        assert_eq!(stored.trim(), "1", "user {name} not stored by the broker");
    }

    /// The broker's log so far (all its runs).
    pub fn log_tail(&self, lines: usize) -> String {
        self.tansu
            .as_ref()
            .map(|p| p.tail(lines))
            .unwrap_or_else(|| "(broker not running)".into())
    }

    /// A stack with `base`'s ZooKeeper and MariaDB and this Kafka.
    pub fn stack(&self, base: &Stack) -> Stack {
        base.with_kafka(&self.bootstrap, Vec::new())
    }

    /// Stops the broker (SIGTERM) and PostgreSQL.
    pub async fn stop(mut self) {
        self.stop_broker(Signal::Term).await;
        self.pg.stop().await;
    }
}
