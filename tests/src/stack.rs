//! [`Stack`]: where the test servers are, and whether this process owns them.
//!
//! A stack is either *reused*, when `REPLICATOR_TEST_ZK`,
//! `REPLICATOR_TEST_MYSQL` and `REPLICATOR_TEST_KAFKA` are all set (for example
//! from deploy/start-stack.sh's `stack.env`), or *owned*: started by this
//! process through [`crate::servers`] and stopped with it.
//!
//! The stack holds addresses only, plus one Kafka producer that runs on its
//! own threads: no connection tied to a tokio runtime lives in it, so the
//! shared stack can serve every `#[tokio::test]` (each has its own runtime).
//! Helpers that talk to the servers are in [`crate::mysql`], [`crate::kafka`]
//! and [`crate::zk`].

use crate::process::Process;
use crate::servers::{self, Server, ServerOptions, Servers};
use rdkafka::producer::FutureProducer;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Set to `1` to make every stack test return at once (with a message).
pub const SKIP_ENV: &str = "REPLICATOR_SKIP_STACK_TESTS";
/// ZooKeeper connect string of a running stack to reuse.
pub const ZK_ENV: &str = "REPLICATOR_TEST_ZK";
/// `mysql://user:password@host:port` of a running stack to reuse.
pub const MYSQL_ENV: &str = "REPLICATOR_TEST_MYSQL";
/// Kafka bootstrap servers of a running stack to reuse.
pub const KAFKA_ENV: &str = "REPLICATOR_TEST_KAFKA";

/// ZooKeeper, MariaDB and Kafka (Tansu) for tests. See the crate docs.
pub struct Stack {
    zk: String,
    mysql: MysqlAddr,
    kafka: String,
    /// Extra librdkafka properties of every Kafka client (TLS, SASL).
    pub(crate) kafka_props: Vec<(String, String)>,
    mysql_socket: Option<PathBuf>,
    startup: Duration,
    /// Declared before `servers`: dropped while the broker still runs.
    pub(crate) producer: OnceLock<FutureProducer>,
    servers: Option<Servers>,
}

#[derive(Debug, Clone)]
struct MysqlAddr {
    host: String,
    port: u16,
    user: String,
    password: String,
}

static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();

/// True (after printing why) when `REPLICATOR_SKIP_STACK_TESTS=1`: the calling
/// test should return at once. [`Stack::shared_or_skip`] and
/// [`crate::shared_stack!`] call it for you.
pub fn skip_stack_tests() -> bool {
    let skip = std::env::var(SKIP_ENV).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: {SKIP_ENV} is set");
    }
    skip
}

impl Stack {
    /// The stack shared by every test of this test binary: the servers named
    /// by the `REPLICATOR_TEST_*` variables, or else servers started on first
    /// call (a few seconds; later calls return at once) and stopped when the
    /// process exits. Thread-safe. Panics with the failing server's log tail
    /// when a server cannot start; every later call panics the same way.
    ///
    /// Share it by giving each test its own names ([`crate::unique_name`],
    /// [`crate::unique_root`]). A test that pauses or kills servers needs a
    /// private stack ([`Stack::start`]) instead.
    pub fn shared() -> &'static Stack {
        let result = SHARED.get_or_init(|| match Stack::from_env() {
            Some(stack) => Ok(stack),
            None => Stack::try_start().map_err(|e| e.to_string()),
        });
        match result {
            Ok(stack) => stack,
            Err(e) => panic!("the test stack is not available: {e}"),
        }
    }

    /// [`Stack::shared`], or `None` (after printing `skipped: ...`) when
    /// `REPLICATOR_SKIP_STACK_TESTS=1`.
    pub fn shared_or_skip() -> Option<&'static Stack> {
        if skip_stack_tests() {
            return None;
        }
        Some(Stack::shared())
    }

    /// Starts a private stack (ignoring the `REPLICATOR_TEST_*` variables);
    /// dropping it kills its servers and removes their files. Panics with the
    /// failing server's log tail when a server cannot start.
    pub fn start() -> Stack {
        Stack::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Stack::start`], or `None` when `REPLICATOR_SKIP_STACK_TESTS=1`.
    pub fn start_or_skip() -> Option<Stack> {
        if skip_stack_tests() {
            return None;
        }
        Some(Stack::start())
    }

    /// Starts a private stack, or says which server failed and why.
    pub fn try_start() -> Result<Stack, servers::StartError> {
        Stack::try_start_with(&ServerOptions::default())
    }

    /// [`Stack::start`] with servers listening where `opts` says (for
    /// Cores in other network namespaces). Panics with the failing
    /// server's log tail.
    pub fn start_with(opts: &ServerOptions) -> Stack {
        Stack::try_start_with(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Stack::try_start`] with options.
    pub fn try_start_with(opts: &ServerOptions) -> Result<Stack, servers::StartError> {
        let t0 = Instant::now();
        let servers = servers::start_with(opts)?;
        let kafka_host = opts.kafka_host.as_deref().unwrap_or("127.0.0.1");
        let stack = Stack {
            zk: format!("127.0.0.1:{}", servers.zk.port),
            mysql: MysqlAddr {
                host: opts.mysql_host.as_deref().unwrap_or("127.0.0.1").into(),
                port: servers.mysql.port,
                user: "repl".into(),
                password: "repl".into(),
            },
            kafka: format!("{kafka_host}:{}", servers.kafka.port),
            kafka_props: Vec::new(),
            mysql_socket: Some(servers.mysql_socket.clone()),
            servers: Some(servers),
            startup: t0.elapsed(),
            producer: OnceLock::new(),
        };
        eprintln!(
            "replicator-tests: stack up in {:.1} s: ZooKeeper {}, MariaDB {}, Kafka {} (files in {})",
            stack.startup.as_secs_f64(),
            stack.zk,
            stack.mysql_url(),
            stack.kafka,
            stack.dir().map(Path::display).expect("owned"),
        );
        Ok(stack)
    }

    /// The stack named by `REPLICATOR_TEST_ZK`, `REPLICATOR_TEST_MYSQL` and
    /// `REPLICATOR_TEST_KAFKA`, or `None` when none is set. Panics when only
    /// some are set or the MySQL URL does not parse.
    pub fn from_env() -> Option<Stack> {
        let get = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let (zk, mysql, kafka) = match (get(ZK_ENV), get(MYSQL_ENV), get(KAFKA_ENV)) {
            (None, None, None) => return None,
            (Some(zk), Some(mysql), Some(kafka)) => (zk, mysql, kafka),
            _ => panic!("set all of {ZK_ENV}, {MYSQL_ENV} and {KAFKA_ENV}, or none"),
        };
        let opts = mysql_async::Opts::from_url(&mysql)
            .unwrap_or_else(|e| panic!("{MYSQL_ENV}={mysql} is not a mysql:// URL: {e}"));
        Some(Stack {
            zk,
            mysql: MysqlAddr {
                host: opts.ip_or_hostname().to_string(),
                port: opts.tcp_port(),
                user: opts.user().unwrap_or("root").to_string(),
                password: opts.pass().unwrap_or("").to_string(),
            },
            kafka,
            kafka_props: Vec::new(),
            mysql_socket: std::env::var_os("REPLICATOR_STACK_MYSQL_SOCKET").map(PathBuf::from),
            servers: None,
            startup: Duration::ZERO,
            producer: OnceLock::new(),
        })
    }

    /// This stack's ZooKeeper and MariaDB with another Kafka (`bootstrap`),
    /// whose clients get the librdkafka properties `props` (TLS, SASL).
    /// It owns no server.
    pub fn with_kafka(&self, bootstrap: &str, props: Vec<(String, String)>) -> Stack {
        Stack {
            zk: self.zk.clone(),
            mysql: self.mysql.clone(),
            kafka: bootstrap.to_string(),
            kafka_props: props,
            mysql_socket: self.mysql_socket.clone(),
            startup: Duration::ZERO,
            producer: OnceLock::new(),
            servers: None,
        }
    }

    /// This stack's MariaDB and Kafka with another ZooKeeper (`connect`, for
    /// example a [`crate::ZkEnsemble`]'s connect string). It owns no server.
    pub fn with_zk(&self, connect: &str) -> Stack {
        Stack {
            zk: connect.to_string(),
            mysql: self.mysql.clone(),
            kafka: self.kafka.clone(),
            kafka_props: self.kafka_props.clone(),
            mysql_socket: self.mysql_socket.clone(),
            startup: Duration::ZERO,
            producer: OnceLock::new(),
            servers: None,
        }
    }

    /// This stack's ZooKeeper and Kafka with another MariaDB on
    /// `127.0.0.1:port` (user `repl`/`repl`, as every harness MariaDB), for
    /// tests that start their own source servers ([`crate::mariadb_pair`]).
    /// It owns no server; [`Stack::leak`] gives the `'static` one scenarios take.
    pub fn with_mysql(&self, port: u16) -> Stack {
        Stack {
            zk: self.zk.clone(),
            mysql: MysqlAddr {
                host: "127.0.0.1".into(),
                port,
                user: "repl".into(),
                password: "repl".into(),
            },
            kafka: self.kafka.clone(),
            kafka_props: self.kafka_props.clone(),
            mysql_socket: None,
            startup: Duration::ZERO,
            producer: OnceLock::new(),
            servers: None,
        }
    }

    /// A `'static` reference for helpers that need one (a few bytes per test).
    pub fn leak(self) -> &'static Stack {
        Box::leak(Box::new(self))
    }

    /// ZooKeeper connect string, `127.0.0.1:PORT`.
    pub fn zk_connect(&self) -> &str {
        &self.zk
    }

    /// ZooKeeper's client port (owned stacks only).
    pub fn zk_port(&self) -> Option<u16> {
        self.servers.as_ref().map(|s| s.zk.port)
    }

    /// Starts a Core on this stack's ZooKeeper under `root` as `host`, with
    /// `args` (its `--task`/`--group` and any other flags), `RUST_LOG=info`
    /// and the variables of `env`.
    pub fn core(&self, root: &str, host: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut all = vec!["--zk", self.zk_connect(), "--root", root, "--host-id", host];
        all.extend_from_slice(args);
        let mut vars = vec![("RUST_LOG", "info")];
        vars.extend_from_slice(env);
        Process::spawn("replicator-core", all, &vars)
    }

    /// `mysql://repl:repl@127.0.0.1:PORT`.
    pub fn mysql_url(&self) -> String {
        let m = &self.mysql;
        format!("mysql://{}:{}@{}:{}", m.user, m.password, m.host, m.port)
    }
    pub fn mysql_host(&self) -> &str {
        &self.mysql.host
    }
    pub fn mysql_port(&self) -> u16 {
        self.mysql.port
    }
    /// A user with ALL PRIVILEGES (replication included), over TCP.
    pub fn mysql_user(&self) -> &str {
        &self.mysql.user
    }
    pub fn mysql_password(&self) -> &str {
        &self.mysql.password
    }
    /// The MariaDB socket, where root logs in without password (owned stacks,
    /// and reused ones whose `REPLICATOR_STACK_MYSQL_SOCKET` is set).
    pub fn mysql_socket(&self) -> Option<&Path> {
        self.mysql_socket.as_deref()
    }

    /// The MariaDB config file (owned stacks only): `mariadb
    /// --defaults-file=<it>` logs in as root over the socket.
    pub fn mysql_defaults_file(&self) -> Option<&Path> {
        self.servers.as_ref().map(|s| s.mysql_defaults.as_path())
    }

    /// The librdkafka properties this stack's Kafka clients use (TLS, SASL).
    pub fn kafka_properties(&self) -> &[(String, String)] {
        &self.kafka_props
    }

    /// Kafka bootstrap servers, `127.0.0.1:PORT`.
    pub fn kafka_bootstrap(&self) -> &str {
        &self.kafka
    }

    /// True when this process started the servers (false when reused).
    pub fn is_owned(&self) -> bool {
        self.servers.is_some()
    }
    /// How long starting the servers took (zero when reused).
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
    /// Directory of the servers' data and logs (owned stacks only).
    pub fn dir(&self) -> Option<&Path> {
        self.servers.as_ref().map(|s| s.dir.as_path())
    }
    /// PID of one of the servers (owned stacks only).
    pub fn server_pid(&self, server: Server) -> Option<u32> {
        self.servers.as_ref().map(|s| s.get(server).pid())
    }
    /// Log file of one of the servers (owned stacks only).
    pub fn server_log(&self, server: Server) -> Option<&Path> {
        self.servers.as_ref().map(|s| s.get(server).log.as_path())
    }

    /// Freezes a server with SIGSTOP (its clients see it hang: sessions
    /// time out, requests stall). Owned stacks only; use a private stack,
    /// since every test sharing this one would hang too.
    pub fn pause(&self, server: Server) {
        crate::process::signal(self.owned_pid(server), crate::process::Signal::Stop);
    }
    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self, server: Server) {
        crate::process::signal(self.owned_pid(server), crate::process::Signal::Cont);
    }

    /// SIGKILLs a server (owned stacks only; use a private stack) and
    /// reaps it. Its data stays; [`Stack::restart_server`] starts it again.
    pub fn kill_server(&self, server: Server) {
        self.owned(server).crash();
    }

    /// Starts a killed server again on the same port and data, and waits
    /// up to `timeout` until its port accepts connections (MariaDB accepts
    /// only after its crash recovery). Panics with its log tail otherwise.
    pub fn restart_server(&self, server: Server, timeout: Duration) {
        let running = self.owned(server);
        running
            .respawn()
            .unwrap_or_else(|e| panic!("cannot start {server} again: {e}"));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], running.port));
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            if Instant::now() >= deadline {
                panic!(
                    "{server} did not listen again on port {} within {timeout:?}\n{}",
                    running.port,
                    servers::log_tail(&running.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn owned(&self, server: Server) -> &servers::Running {
        self.servers
            .as_ref()
            .map(|s| s.get(server))
            .unwrap_or_else(|| panic!("{server} was not started by this test process"))
    }

    fn owned_pid(&self, server: Server) -> u32 {
        self.server_pid(server)
            .unwrap_or_else(|| panic!("{server} was not started by this test process"))
    }

    /// The last `lines` lines of every server's log (owned stacks only), to
    /// print when a test fails in a way that may be the server's doing.
    pub fn log_tails(&self, lines: usize) -> String {
        let Some(servers) = &self.servers else {
            return "(servers not started by this process: no logs)".into();
        };
        [Server::ZooKeeper, Server::MariaDb, Server::Tansu]
            .iter()
            .map(|&s| {
                let log = &servers.get(s).log;
                format!(
                    "--- {s}: {} ---\n{}\n",
                    log.display(),
                    servers::log_tail(log, lines)
                )
            })
            .collect()
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("zk", &self.zk)
            .field("mysql", &self.mysql_url())
            .field("kafka", &self.kafka)
            .field("owned", &self.is_owned())
            .finish()
    }
}
