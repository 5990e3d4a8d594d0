//! Clean-up that survives the test process.
//!
//! A test binary keeps its shared [`crate::Stack`] in a `static`, which is
//! never dropped, and a test that fails may be torn down before its guards
//! run. So every server and project binary the harness spawns is registered
//! here, together with the directories it writes. On first use this module
//! creates one *run directory* for the test process and spawns a reaper: a
//! small `sh` loop in its own process group (so Ctrl-C on the terminal does not
//! kill it first) that polls the test process PID and, once it is gone,
//! SIGKILLs every PID still registered and removes every registered directory,
//! the run directory last.
//!
//! The registry lives in two files of the run directory (`kill.list`,
//! `rm.list`), rewritten atomically on each change. Guards that clean up
//! themselves unregister, so the reaper never signals a recycled PID.
//! `PR_SET_PDEATHSIG` is deliberately not used: it fires when the spawning
//! *thread* exits, and cargo's test harness runs each test on its own thread.
//!
//! Set `REPLICATOR_TEST_KEEP=1` to keep the directories (logs, data) after the
//! run; the processes are still killed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

const REAPER_SCRIPT: &str = r#"
parent=$1; run=$2; keep=$3
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
pids=$(cat "$run/kill.list" 2>/dev/null)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
[ "$keep" = 1 ] && exit 0
sleep 0.3
while IFS= read -r d; do [ -n "$d" ] && rm -rf "$d"; done < "$run/rm.list"
rm -rf "$run"
"#;

struct Registry {
    dir: PathBuf,
    /// Never waited for: it outlives this process on purpose.
    _reaper: std::process::Child,
    pids: BTreeSet<u32>,
    dirs: BTreeSet<PathBuf>,
}

static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();

fn registry() -> &'static Mutex<Registry> {
    REGISTRY.get_or_init(|| {
        let dir = create_run_dir();
        let keep = if keep_files() { "1" } else { "0" };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(REAPER_SCRIPT)
            .arg("replicator-tests-reaper")
            .arg(std::process::id().to_string())
            .arg(&dir)
            .arg(keep)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let reaper = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn the clean-up process (sh): {e}"));
        let registry = Registry {
            dir,
            _reaper: reaper,
            pids: BTreeSet::new(),
            dirs: BTreeSet::new(),
        };
        registry.write();
        Mutex::new(registry)
    })
}

fn keep_files() -> bool {
    std::env::var("REPLICATOR_TEST_KEEP").is_ok_and(|v| v == "1")
}

/// A short path: the MariaDB socket lives below it and unix socket paths are
/// limited to 107 bytes.
fn create_run_dir() -> PathBuf {
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 40 {
        base = PathBuf::from("/tmp");
    }
    for _ in 0..100 {
        let dir = base.join(format!(
            "replicator-tests-{}-{}",
            std::process::id(),
            crate::names::random_hex(6)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
    panic!("cannot create a run directory under {}", base.display())
}

impl Registry {
    fn write(&self) {
        let pids: String = self.pids.iter().map(|p| format!("{p}\n")).collect();
        let dirs: String = self
            .dirs
            .iter()
            .map(|d| format!("{}\n", d.display()))
            .collect();
        for (name, text) in [("kill.list", pids), ("rm.list", dirs)] {
            let tmp = self.dir.join(format!("{name}.tmp"));
            let write = std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, self.dir.join(name)));
            if let Err(e) = write {
                eprintln!("replicator-tests: cannot update {name}: {e}");
            }
        }
    }
}

fn update(change: impl FnOnce(&mut Registry)) {
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    change(&mut reg);
    reg.write();
}

/// The run directory of this test process (created on first use).
pub fn run_dir() -> PathBuf {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .dir
        .clone()
}

/// A fresh directory inside the run directory, named `<prefix>-<n>`.
pub fn fresh_dir(prefix: &str) -> PathBuf {
    let run = run_dir();
    for n in 1.. {
        let dir = run.join(format!("{prefix}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
    unreachable!()
}

/// Kill `pid` when the test process ends, unless unregistered first.
pub fn register_pid(pid: u32) {
    update(|r| {
        r.pids.insert(pid);
    });
}

/// The process was stopped and reaped by its owner.
pub fn unregister_pid(pid: u32) {
    update(|r| {
        r.pids.remove(&pid);
    });
}

/// Remove `dir` when the test process ends (if not removed before).
pub fn register_dir(dir: &Path) {
    update(|r| {
        r.dirs.insert(dir.to_path_buf());
    });
}

/// Removes `dir` now (unless `REPLICATOR_TEST_KEEP=1`) and forgets it.
pub fn remove_dir(dir: &Path) {
    if !keep_files() {
        let _ = std::fs::remove_dir_all(dir);
    }
    update(|r| {
        r.dirs.remove(dir);
    });
}
