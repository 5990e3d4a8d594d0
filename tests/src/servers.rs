//! Starts ZooKeeper, MariaDB and Tansu as child processes of the test process.
//!
//! In: the programs deploy/install.sh installs, and the config templates of
//! `deploy/conf/` (compiled in, the same files deploy/start-stack.sh fills in,
//! so the test stack and the demo stack are configured alike). Out:
//! [`Servers`], with the three loopback ports and a directory holding each
//! server's data and log.
//!
//! The three start in parallel threads, each on a port that was free a moment
//! before; a server that exits while starting (someone took its port) is
//! started again on another port, up to three times. A server that does not
//! become ready in time is a [`StartError`] carrying its log tail. Every PID
//! and the directory are registered with [`crate::reaper`], so they go away
//! with the test process even when no destructor runs.
//!
//! [`ServerOptions`] makes the three listen on every address (for Cores in
//! other network namespaces, [`crate::netns`]) and names the addresses
//! clients reach MariaDB and Tansu at. A server remembers the command that
//! started it, so a test can SIGKILL it and start it again on the same port
//! and data (`Stack::kill_server`, `Stack::restart_server`).

use crate::reaper;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const ZOO_CFG: &str = include_str!("../../deploy/conf/zoo.cfg.in");
pub(crate) const LOG4J: &str = include_str!("../../deploy/conf/log4j.properties");
pub(crate) const ZK_CLASSPATH: &str = include_str!("../../deploy/conf/zookeeper.classpath");
pub(crate) const ZK_JVM_OPTIONS: &str = include_str!("../../deploy/conf/zookeeper.jvm-options");
const MY_CNF: &str = include_str!("../../deploy/conf/my.cnf.in");
const USERS_SQL: &str = include_str!("../../deploy/conf/users.sql");

/// Variables of the MariaDB client that would override the defaults file.
const MYSQL_CLIENT_ENV: [&str; 4] = [
    "MYSQL_HOST",
    "MYSQL_TCP_PORT",
    "MYSQL_UNIX_PORT",
    "MYSQL_PWD",
];

const ATTEMPTS: u32 = 3;

/// One of the stack's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    ZooKeeper,
    MariaDb,
    Tansu,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Server::ZooKeeper => "ZooKeeper",
            Server::MariaDb => "MariaDB",
            Server::Tansu => "Tansu",
        })
    }
}

/// A server could not be started.
#[derive(Debug, Clone)]
pub struct StartError {
    pub server: Server,
    pub problem: String,
    pub log: Option<PathBuf>,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} did not start: {}", self.server, self.problem)?;
        if let Some(log) = &self.log {
            write!(
                f,
                "\n--- last lines of {} ---\n{}",
                log.display(),
                log_tail(log, 40)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// One running server, which can be SIGKILLed and started again with the
/// same command (same port, same data).
pub(crate) struct Running {
    pub port: u16,
    pub log: PathBuf,
    child: Mutex<Child>,
    relaunch: Relaunch,
}

/// What started a server: enough to start it again.
struct Relaunch {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
}

impl Relaunch {
    fn of(cmd: &Command) -> Relaunch {
        Relaunch {
            program: cmd.get_program().to_os_string(),
            args: cmd.get_args().map(OsStr::to_os_string).collect(),
            cwd: cmd.get_current_dir().map(Path::to_path_buf),
            env: cmd
                .get_envs()
                .map(|(k, v)| (k.to_os_string(), v.map(OsStr::to_os_string)))
                .collect(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).id()
    }

    pub(crate) fn kill(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        reaper::unregister_pid(child.id());
    }

    /// SIGKILLs the server and reaps it.
    pub fn crash(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        reaper::unregister_pid(child.id());
    }

    /// Starts the server again with the command that first started it
    /// (it must have been stopped), logging to the same file.
    pub fn respawn(&self) -> std::io::Result<()> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if child.try_wait()?.is_none() {
            return Err(std::io::Error::other("the server still runs"));
        }
        let out = File::options().create(true).append(true).open(&self.log)?;
        let err = out.try_clone()?;
        let new = self
            .relaunch
            .command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        reaper::register_pid(new.id());
        *child = new;
        Ok(())
    }
}

/// The three servers of a stack started by this process; dropping it kills
/// them and removes their directory.
pub(crate) struct Servers {
    pub dir: PathBuf,
    pub zk: Running,
    pub mysql: Running,
    pub kafka: Running,
    pub mysql_socket: PathBuf,
    pub mysql_defaults: PathBuf,
}

impl Servers {
    pub fn get(&self, server: Server) -> &Running {
        match server {
            Server::ZooKeeper => &self.zk,
            Server::MariaDb => &self.mysql,
            Server::Tansu => &self.kafka,
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.zk.kill();
        self.mysql.kill();
        self.kafka.kill();
        reaper::remove_dir(&self.dir);
    }
}

/// Where the servers of a private stack listen. The default is loopback
/// only; tests whose Cores run in other network namespaces
/// ([`crate::netns`]) make them listen on every address and name the
/// address those Cores reach them at.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Listen on 0.0.0.0 instead of 127.0.0.1 (ZooKeeper, MariaDB, Tansu).
    pub listen_all: bool,
    /// The address Tansu advertises (default 127.0.0.1): every client,
    /// in whatever namespace, must reach the broker at it.
    pub kafka_host: Option<String>,
    /// The address the stack hands out for MariaDB (default 127.0.0.1),
    /// which task configs name as their source.
    pub mysql_host: Option<String>,
}

impl ServerOptions {
    fn listen(&self) -> &'static str {
        if self.listen_all {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        }
    }
}

/// Starts the three servers in a fresh directory of the run directory.
pub(crate) fn start_with(opts: &ServerOptions) -> Result<Servers, StartError> {
    let dir = reaper::fresh_dir("stack");
    reaper::register_dir(&dir);
    let mysql_dir = dir.join("mariadb");
    let (zk, mysql, kafka) = std::thread::scope(|s| {
        let zk = s.spawn(|| start_zookeeper(&dir.join("zookeeper"), opts));
        let mysql = s.spawn(|| start_mariadb(&mysql_dir, opts, "", true));
        let kafka = s.spawn(|| start_tansu(&dir.join("tansu"), opts));
        (
            joined(Server::ZooKeeper, zk.join()),
            joined(Server::MariaDb, mysql.join()),
            joined(Server::Tansu, kafka.join()),
        )
    });
    match (zk, mysql, kafka) {
        (Ok(zk), Ok(mysql), Ok(kafka)) => Ok(Servers {
            dir,
            zk,
            mysql,
            kafka,
            mysql_socket: mysql_dir.join("mysql.sock"),
            mysql_defaults: mysql_dir.join("my.cnf"),
        }),
        (zk, mysql, kafka) => {
            let mut first_error = None;
            for result in [zk, mysql, kafka] {
                match result {
                    Ok(mut running) => running.kill(),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            // keep the directory: the error points into it
            Err(first_error.expect("one server failed"))
        }
    }
}

fn joined(
    server: Server,
    result: std::thread::Result<Result<Running, StartError>>,
) -> Result<Running, StartError> {
    result.unwrap_or_else(|panic| {
        let problem = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "its starter panicked".to_string());
        Err(StartError {
            server,
            problem,
            log: None,
        })
    })
}

fn start_zookeeper(dir: &Path, opts: &ServerOptions) -> Result<Running, StartError> {
    let server = Server::ZooKeeper;
    let io = |what: &str, e: std::io::Error| StartError {
        server,
        problem: format!("{what}: {e}"),
        log: None,
    };
    std::fs::create_dir_all(dir.join("data")).map_err(|e| io("create data dir", e))?;
    std::fs::write(dir.join("log4j.properties"), LOG4J).map_err(|e| io("write log4j", e))?;
    let classpath = format!("{}:{}", dir.display(), ZK_CLASSPATH.trim());
    start_with_retries(
        server,
        dir.join("zookeeper.log"),
        Duration::from_secs(60),
        |port| {
            let cfg = fill(ZOO_CFG, dir, port).replace(
                "clientPortAddress=127.0.0.1",
                &format!("clientPortAddress={}", opts.listen()),
            );
            std::fs::write(dir.join("zoo.cfg"), cfg)?;
            let mut cmd = Command::new("java");
            cmd.args(ZK_JVM_OPTIONS.split_whitespace())
                .arg("-cp")
                .arg(&classpath)
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(dir.join("zoo.cfg"))
                .current_dir(dir);
            Ok(cmd)
        },
        zk_ruok,
    )
}

/// A MariaDB of a test's own, started like the stack's with extra
/// `[mariadbd]` settings (e.g. `version=8.0.2-mariadb` for Debezium's MySQL
/// connector); dropping it kills it and removes its directory. Its `repl`
/// user has the stack's password (`repl`).
pub struct ExtraMariaDb {
    running: Running,
    dir: PathBuf,
}

impl ExtraMariaDb {
    pub fn start(extra_cnf: &str) -> Result<ExtraMariaDb, StartError> {
        let dir = reaper::fresh_dir("mariadb");
        reaper::register_dir(&dir);
        let running = start_mariadb(&dir, &ServerOptions::default(), extra_cnf, true)?;
        Ok(ExtraMariaDb { running, dir })
    }

    pub fn port(&self) -> u16 {
        self.running.port
    }

    /// `mysql://repl:repl@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mysql://repl:repl@127.0.0.1:{}", self.running.port)
    }

    pub fn log(&self) -> &Path {
        &self.running.log
    }
}

impl Drop for ExtraMariaDb {
    fn drop(&mut self) {
        self.running.kill();
        reaper::remove_dir(&self.dir);
    }
}

/// Starts a MariaDB in `dir` with the stack's my.cnf plus `extra` lines
/// appended to its `[mariadbd]` section (they override the template's), and
/// creates the `repl` user (outside the binlog unless `users_in_binlog`, so
/// that a replica's GTID history is only its primary's).
pub(crate) fn start_mariadb(
    dir: &Path,
    opts: &ServerOptions,
    extra: &str,
    users_in_binlog: bool,
) -> Result<Running, StartError> {
    let server = Server::MariaDb;
    let cnf = dir.join("my.cnf");
    let defaults = format!("--defaults-file={}", cnf.display());
    let io = |what: &str, e: std::io::Error| StartError {
        server,
        problem: format!("{what}: {e}"),
        log: None,
    };
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| io("create dirs", e))?;
    // the port is set again before each start; install-db does not listen
    let template = format!("{MY_CNF}\n{extra}\n");
    let my_cnf = |port| {
        fill(&template, dir, port).replace(
            "bind-address=127.0.0.1",
            &format!("bind-address={}", opts.listen()),
        )
    };
    std::fs::write(&cnf, my_cnf(0)).map_err(|e| io("write my.cnf", e))?;
    let install_log = dir.join("install.log");
    let out = File::create(&install_log).map_err(|e| io("create install.log", e))?;
    let status = Command::new("mariadb-install-db")
        .arg(&defaults)
        .args(["--user=root", "--skip-test-db"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| io("dup", e))?)
        .stderr(out)
        .status()
        .map_err(|e| io("run mariadb-install-db (deploy/install.sh installs it)", e))?;
    if !status.success() {
        return Err(StartError {
            server,
            problem: format!("mariadb-install-db exited with {status}"),
            log: Some(install_log),
        });
    }
    let client = |stdin: Option<&str>| {
        let mut cmd = Command::new("mariadb");
        cmd.arg(&defaults);
        for var in MYSQL_CLIENT_ENV {
            cmd.env_remove(var);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        match stdin {
            None => cmd.args(["-e", "SELECT 1"]).stdin(Stdio::null()),
            Some(_) => cmd.stdin(Stdio::piped()),
        };
        let mut child = cmd.spawn()?;
        if let (Some(sql), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(sql.as_bytes())?;
        }
        child.wait_with_output()
    };
    let running = start_with_retries(
        server,
        dir.join("mariadbd.err"),
        Duration::from_secs(60),
        |port| {
            std::fs::write(&cnf, my_cnf(port))?;
            let mut cmd = Command::new("mariadbd");
            cmd.arg(&defaults).current_dir(dir);
            Ok(cmd)
        },
        |_port| client(None).is_ok_and(|o| o.status.success()),
    )?;
    let users = if users_in_binlog {
        USERS_SQL.to_string()
    } else {
        format!("SET sql_log_bin = 0;\n{USERS_SQL}")
    };
    match client(Some(&users)) {
        Ok(o) if o.status.success() => Ok(running),
        other => {
            let problem = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            let mut running = running;
            running.kill();
            Err(StartError {
                server,
                problem: format!("creating the repl user failed: {problem}"),
                log: Some(running.log.clone()),
            })
        }
    }
}

fn start_tansu(dir: &Path, opts: &ServerOptions) -> Result<Running, StartError> {
    let server = Server::Tansu;
    let tansu = tansu_path().ok_or_else(|| StartError {
        server,
        problem: "the tansu binary was not found in $TANSU_BIN, $CARGO_HOME/bin, ~/.cargo/bin \
                  or PATH: run deploy/install.sh"
            .to_string(),
        log: None,
    })?;
    std::fs::create_dir_all(dir).map_err(|e| StartError {
        server,
        problem: format!("create dir: {e}"),
        log: None,
    })?;
    start_with_retries(
        server,
        dir.join("tansu.log"),
        Duration::from_secs(30),
        |port| {
            let url = format!("tcp://{}:{port}", opts.listen());
            let host = opts.kafka_host.as_deref().unwrap_or("127.0.0.1");
            let advertised = format!("tcp://{host}:{port}");
            let mut cmd = Command::new(&tansu);
            cmd.arg("broker")
                .args([
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &advertised,
                ])
                .args(["--storage-engine", "memory://tansu/"])
                // tansu reads a .env file from its working directory
                .current_dir(dir)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
            Ok(cmd)
        },
        |port| TcpStream::connect_timeout(&local(port), Duration::from_millis(500)).is_ok(),
    )
}

/// The tansu binary: `$TANSU_BIN`, `$CARGO_HOME/bin/tansu`,
/// `~/.cargo/bin/tansu`, or `tansu` on `PATH`.
pub fn tansu_path() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(Path::new(&home).join("bin/tansu"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/tansu"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Spawns the command `build` makes for a free port, logging to `log`, and
/// waits until `ready(port)`; a server that exits meanwhile is tried again on
/// another port.
fn start_with_retries(
    server: Server,
    log: PathBuf,
    timeout: Duration,
    mut build: impl FnMut(u16) -> std::io::Result<Command>,
    mut ready: impl FnMut(u16) -> bool,
) -> Result<Running, StartError> {
    let fail = |problem: String, log: Option<&Path>| StartError {
        server,
        problem,
        log: log.map(Path::to_path_buf),
    };
    for attempt in 1..=ATTEMPTS {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}"), None))?;
        let mut cmd = build(port).map_err(|e| fail(format!("prepare: {e}"), None))?;
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| fail(format!("open {}: {e}", log.display()), None))?;
        let err = out.try_clone().map_err(|e| fail(e.to_string(), None))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| fail(format!("spawn {:?}: {e}", cmd.get_program()), None))?;
        reaper::register_pid(child.id());
        let mut running = Running {
            port,
            log: log.clone(),
            child: Mutex::new(child),
            relaunch: Relaunch::of(&cmd),
        };
        let child = running.child.get_mut().unwrap_or_else(|p| p.into_inner());
        match wait_ready(child, timeout, || ready(port)) {
            Ok(()) => return Ok(running),
            Err(Some(status)) if attempt < ATTEMPTS => {
                reaper::unregister_pid(running.pid());
                eprintln!("replicator-tests: {server} exited ({status}) on port {port}; retrying");
            }
            Err(status) => {
                running.kill();
                let problem = match status {
                    Some(status) => format!("exited with {status} (port {port})"),
                    None => format!("not ready on port {port} after {timeout:?}"),
                };
                return Err(fail(problem, Some(&log)));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// `Err(Some(status))` when the child exited, `Err(None)` on timeout.
fn wait_ready(
    child: &mut Child,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Some(status));
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// ZooKeeper's four-letter health check.
pub(crate) fn zk_ruok(port: u16) -> bool {
    let check = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&local(port), Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"ruok")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer == "imok")
    };
    check().unwrap_or(false)
}

pub(crate) fn fill(template: &str, dir: &Path, port: u16) -> String {
    template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}
