//! A PostgreSQL server of a test's own: `initdb` into a fresh directory of
//! the run directory, `postgres` on a free loopback port (no Unix socket
//! elsewhere than its data directory), trust authentication for the
//! superuser `postgres`. Stopped (SIGINT, PostgreSQL's fast shutdown) when
//! the [`Postgres`] is dropped, and killed by the reaper if the test process
//! dies first.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (here and
//! in CI) the server runs as the system user `postgres` (created by the
//! Debian package), which then owns the data directory. The binaries are
//! taken from `$REPLICATOR_PG_BIN_DIR`, else the PostgreSQL 16 that
//! `deploy/install.sh` unpacks (Tansu 0.6.0's postgres storage needs 16 or
//! later), else the newest `/usr/lib/postgresql/<major>/bin` (Debian's
//! layout).

use crate::process::{Process, Signal};
use crate::reaper;
use crate::servers::free_port;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server.
pub struct Postgres {
    port: u16,
    bin_dir: PathBuf,
    server: Process,
}

/// Where `deploy/install.sh` unpacks PostgreSQL 16 (its default
/// `REPLICATOR_PG16_DIR`).
const PG16_BIN_DIR: &str = "/usr/local/lib/mysql-replicator/pg16/pgserver/pginstall/bin";

/// The directory holding `initdb`, `postgres` (see the module doc).
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REPLICATOR_PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let pg16 = Path::new(PG16_BIN_DIR);
    if pg16.join("postgres").is_file() {
        return Some(pg16.to_path_buf());
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// `(uid, gid)` of the system user `postgres` when this process is root
/// (PostgreSQL will not run as root), `None` otherwise.
fn server_user() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let uid = id(&["-u", "postgres"]).unwrap_or_else(|| {
        panic!("running as root, PostgreSQL needs the system user postgres (apt-get install postgresql)")
    });
    Some((
        uid,
        id(&["-g", "postgres"]).expect("the group of user postgres"),
    ))
}

fn as_server_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

impl Postgres {
    /// Initialises a cluster in a fresh directory and starts it; panics,
    /// with the server's log, when it does not come up.
    pub fn start() -> Postgres {
        let bin_dir = pg_bin_dir().unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server binaries (looked at $REPLICATOR_PG_BIN_DIR, {PG16_BIN_DIR} and \
                 /usr/lib/postgresql/*/bin): run deploy/install.sh"
            )
        });
        let dir = reaper::fresh_dir("postgres");
        let data = dir.join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        let user = server_user();
        if let Some((uid, gid)) = user {
            for d in [&dir, &data] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", d.display()));
            }
        }
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .arg("-D")
            .arg(&data)
            .current_dir(&dir);
        as_server_user(&mut initdb, user);
        let out = initdb
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin_dir.join("initdb").display()));
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port().expect("a free port");
        let mut cmd = Command::new(bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=100"])
            .current_dir(&dir);
        as_server_user(&mut cmd, user);
        let server = Process::spawn_command("postgres", cmd);
        let mut pg = Postgres {
            port,
            bin_dir,
            server,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = crate::servers::local(self.port);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
                && self.psql_command("postgres", "select 1").is_ok()
            {
                return;
            }
            assert!(
                self.server.is_running() && Instant::now() < deadline,
                "PostgreSQL did not accept connections on {}:\n{}",
                self.port,
                self.server.tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn psql(&self) -> Command {
        let psql = if self.bin_dir.join("psql").is_file() {
            self.bin_dir.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let mut cmd = Command::new(psql);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", "postgres"]);
        cmd
    }

    fn psql_command(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql()
            .args(["-d", database, "-At", "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `sql` in `database`; returns what psql printed (unaligned,
    /// tuples only); panics with psql's message.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        self.psql_command(database, sql)
            .unwrap_or_else(|e| panic!("psql -c {sql:?}: {e}"))
    }

    /// Runs the SQL file `file` against `database`; panics with psql's message.
    pub fn run_file(&self, database: &str, file: &Path) {
        let out = self
            .psql()
            .args(["-d", database, "-f"])
            .arg(file)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -f {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fast shutdown (SIGINT), waiting for the server to exit.
    pub async fn stop(mut self) {
        self.server.signal(Signal::Int);
        self.server.wait_exit(Duration::from_secs(30)).await;
    }
}
