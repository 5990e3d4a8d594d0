//! The project's binaries (`replicator-core`, `replicator-server`,
//! `replicatorctl`, `replicator-monitor`) as child processes of a test.
//!
//! Binaries come from the workspace target directory (see [`bin_path`]):
//! build them first (`cargo build --workspace`, which deploy/test.sh does).
//! stdout and stderr go to one log file in the run directory; a [`Process`]
//! that is dropped while its test panics prints the tail of that log. Every
//! process is killed when its [`Process`] is dropped, and registered with
//! [`crate::reaper`] in case no destructor runs.

use crate::reaper;
use regex::Regex;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long [`Process::stop`] waits after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the binary `bin` of this workspace is: `$REPLICATOR_BIN_DIR/bin`,
/// else next to the running test binary's profile directory (`target/debug`
/// when the test runs from `target/debug/deps`), else
/// `$CARGO_TARGET_DIR/debug` or `<workspace>/target/debug`. Panics, saying
/// how to build it, when none exists.
pub fn bin_path(bin: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("REPLICATOR_BIN_DIR") {
        candidates.push(PathBuf::from(dir).join(bin));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test>-<hash>
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join(bin));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    candidates.push(target.join("debug").join(bin));
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => panic!(
            "binary {bin} not found (looked at {candidates:?}); build it first: \
             cargo build --workspace --bins"
        ),
    }
}

/// A running project binary; killed (SIGKILL) on drop.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Spawns the workspace binary `bin` ([`bin_path`]) with `args` and extra
    /// environment `env`, logging to a fresh file. Panics when it cannot
    /// spawn.
    ///
    /// ```no_run
    /// # let stack = replicator_tests::Stack::shared();
    /// use replicator_tests::Process;
    /// let root = replicator_tests::unique_root();
    /// let core = Process::spawn(
    ///     "replicator-core",
    ///     ["--zk", stack.zk_connect(), "--root", &root, "--host-id", "a", "--task", "t1"],
    ///     &[("RUST_LOG", "debug")],
    /// );
    /// ```
    pub fn spawn<I, S>(bin: &str, args: I, env: &[(&str, &str)]) -> Process
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin_path(bin));
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Process::spawn_command(bin, cmd)
    }

    /// Spawns any prepared command under the harness's care (log file,
    /// clean-up); `name` names its log directory and messages. stdin is
    /// closed; stdout and stderr are replaced by the log file.
    pub fn spawn_command(name: &str, mut cmd: Command) -> Process {
        let dir = reaper::fresh_dir(&format!("proc-{name}"));
        let log = dir.join("output.log");
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out.try_clone().expect("dup log file");
        if std::env::var_os("RUST_BACKTRACE").is_none() {
            cmd.env("RUST_BACKTRACE", "1");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({:?}): {e}", cmd.get_program()));
        reaper::register_pid(child.id());
        Process {
            name: name.to_string(),
            child,
            log,
            exit: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// The file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    /// A mark for [`Process::wait_for_log_after`]: the log's current length.
    pub fn log_mark(&self) -> usize {
        std::fs::metadata(&self.log)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }
    /// Log lines matching the regex `pattern`.
    pub fn log_lines_matching(&self, pattern: &str) -> Vec<String> {
        let re = regex(pattern);
        self.log()
            .lines()
            .filter(|l| re.is_match(l))
            .map(str::to_string)
            .collect()
    }

    /// Waits until a log line matches the regex `pattern` and returns that
    /// line; panics (with the log tail) after `timeout` or when the process
    /// exits first.
    pub async fn wait_for_log(&mut self, pattern: &str, timeout: Duration) -> String {
        self.wait_for_log_after(0, pattern, timeout).await
    }

    /// [`Process::wait_for_log`], looking only at what was logged after
    /// `mark` (from [`Process::log_mark`]): for the next occurrence of a line.
    pub async fn wait_for_log_after(
        &mut self,
        mark: usize,
        pattern: &str,
        timeout: Duration,
    ) -> String {
        let re = regex(pattern);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let exited = self.try_exit();
            let bytes = std::fs::read(&self.log).unwrap_or_default();
            let tail = String::from_utf8_lossy(&bytes[mark.min(bytes.len())..]);
            if let Some(line) = tail.lines().find(|l| re.is_match(l)) {
                return line.to_string();
            }
            if let Some(status) = exited {
                panic!(
                    "{} exited ({status}) before logging /{pattern}/\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{} did not log /{pattern}/ within {timeout:?}\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
        }
    }

    /// The last `lines` lines of the log, with a heading.
    pub fn tail(&self, lines: usize) -> String {
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            crate::servers::log_tail(&self.log, lines)
        )
    }

    /// The exit status, if the process has exited (reaps it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                reaper::unregister_pid(self.child.id());
                self.exit = Some(status);
            }
        }
        self.exit
    }

    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Waits for the process to exit by itself; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{} still running after {timeout:?}\n{}",
                    self.name,
                    self.tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGKILL and reaps the process (no clean-up runs in it).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for killed process");
        reaper::unregister_pid(self.child.id());
        self.exit = Some(status);
        status
    }

    /// Graceful stop: SIGTERM, then waits up to [`STOP_TIMEOUT`]. Panics
    /// (after a SIGKILL) if the process did not exit in time.
    pub async fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        self.signal(Signal::Term);
        // a paused process cannot act on SIGTERM
        self.signal(Signal::Cont);
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but does nothing,
    /// as a hung machine would.
    pub fn pause(&self) {
        self.signal(Signal::Stop);
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::Cont);
    }

    /// Sends any signal (no-op once the process has been reaped).
    pub fn signal(&self, sig: Signal) {
        if self.exit.is_none() {
            signal(self.pid(), sig);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let was_running = self.exit.is_none();
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "{} ({})\n{}",
                self.name,
                if was_running { "killed" } else { "had exited" },
                self.tail(60)
            );
        }
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("log", &self.log)
            .field("exit", &self.exit)
            .finish()
    }
}

/// Signals the harness sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Graceful stop.
    Term,
    /// Ctrl-C.
    Int,
    /// Immediate death.
    Kill,
    /// Freeze.
    Stop,
    /// Unfreeze.
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Sends `sig` to `pid` with the shell's `kill` (the workspace forbids
/// `unsafe`, and `sh` is always there); a process that is already gone is
/// fine.
pub(crate) fn signal(pid: u32, sig: Signal) {
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\" 2>/dev/null", "sh"])
        .arg(sig.name())
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run sh to send SIG{} to {pid}: {e}", sig.name()));
    // non-zero: no such process any more
    let _ = status;
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad log pattern /{pattern}/: {e}"))
}
