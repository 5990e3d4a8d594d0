//! A ZooKeeper ensemble of its own for tests that kill ZooKeeper servers:
//! [`ZkEnsemble`], N servers (3 for a real quorum, 1 for a standalone
//! server listening on every address) on loopback ports.
//!
//! In: the same config template as every other test ZooKeeper
//! (`deploy/conf/zoo.cfg.in`, through [`crate::servers`]), plus one
//! `server.N=127.0.0.1:QUORUM:ELECTION` line per member, a `myid` file, and
//! longer `initLimit`/`syncLimit` than the standalone template (a loaded
//! 2-core machine must not drop followers). Out: the client connect string
//! ([`ZkEnsemble::connect_string`]), who leads ([`ZkEnsemble::leader`], from
//! the `srvr` four-letter command the template enables), and SIGKILL /
//! restart of any member with its data kept ([`ZkEnsemble::kill`],
//! [`ZkEnsemble::restart`]).
//!
//! Each member keeps its ports for its whole life, so a restarted member
//! rejoins as the same peer and clients find it at the same address. Ports
//! are chosen free all together (held open while chosen); a member that
//! exits while starting fails the start with its log tail. Every PID and the
//! directory are registered with [`crate::reaper`]; dropping the ensemble
//! kills the members and removes the directory.

use crate::reaper;
use crate::servers::{fill, local, LOG4J, ZK_CLASSPATH, ZK_JVM_OPTIONS, ZOO_CFG};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a member (or the whole ensemble) may take to serve.
pub const ENSEMBLE_START_TIMEOUT: Duration = Duration::from_secs(90);

/// One member's role, as `srvr` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Standalone,
}

struct Member {
    id: usize,
    dir: PathBuf,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) {
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let err = out.try_clone().expect("dup log");
        let classpath = format!("{}:{}", self.dir.display(), ZK_CLASSPATH.trim());
        let child = Command::new("java")
            .args(ZK_JVM_OPTIONS.split_whitespace())
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.join("zoo.cfg"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn java for ZooKeeper (deploy/install.sh): {e}"));
        reaper::register_pid(child.id());
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            reaper::unregister_pid(child.id());
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

/// N ZooKeeper servers forming one ensemble. See the module docs.
pub struct ZkEnsemble {
    dir: PathBuf,
    members: Vec<Member>,
}

impl ZkEnsemble {
    /// Starts `n` members listening on 127.0.0.1 and waits until each
    /// serves. Panics with the failing member's log tail.
    pub fn start(n: usize) -> ZkEnsemble {
        ZkEnsemble::start_on(n, "127.0.0.1")
    }

    /// Like [`ZkEnsemble::start`], the client port listening on `address`
    /// (`0.0.0.0` for clients in other network namespaces).
    pub fn start_on(n: usize, address: &str) -> ZkEnsemble {
        assert!(n >= 1, "an ensemble has at least one member");
        let dir = reaper::fresh_dir("zk-ensemble");
        reaper::register_dir(&dir);
        let ports = free_ports(3 * n).unwrap_or_else(|e| panic!("no free ports: {e}"));
        let mut members: Vec<Member> = (0..n)
            .map(|i| {
                let member_dir = dir.join(format!("zk{}", i + 1));
                Member {
                    id: i + 1,
                    log: member_dir.join("zookeeper.log"),
                    dir: member_dir,
                    client_port: ports[3 * i],
                    quorum_port: ports[3 * i + 1],
                    election_port: ports[3 * i + 2],
                    child: None,
                }
            })
            .collect();
        let servers: String = members
            .iter()
            .map(|m| {
                format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    m.id, m.quorum_port, m.election_port
                )
            })
            .collect();
        for m in &members {
            write_config(m, address, if n > 1 { &servers } else { "" })
                .unwrap_or_else(|e| panic!("write config of ZooKeeper {}: {e}", m.id));
        }
        for m in &mut members {
            m.spawn();
        }
        let mut ensemble = ZkEnsemble { dir, members };
        ensemble.wait_serving(ENSEMBLE_START_TIMEOUT);
        ensemble
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false (an ensemble has at least one member).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,..`.
    pub fn connect_string(&self) -> String {
        self.connect_string_via("127.0.0.1")
    }

    /// The connect string with `host` instead of 127.0.0.1 (for a client in
    /// another network namespace; start the ensemble with
    /// [`ZkEnsemble::start_on`] `0.0.0.0`).
    pub fn connect_string_via(&self, host: &str) -> String {
        self.members
            .iter()
            .map(|m| format!("{host}:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client port of member `i` (0-based).
    pub fn client_port(&self, i: usize) -> u16 {
        self.members[i].client_port
    }

    /// What member `i` says it is, `None` when it does not serve.
    pub fn mode(&self, i: usize) -> Option<Mode> {
        let answer = four_letter(self.members[i].client_port, b"srvr")?;
        let mode = answer
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))?
            .trim();
        match mode {
            "leader" => Some(Mode::Leader),
            "follower" => Some(Mode::Follower),
            "standalone" => Some(Mode::Standalone),
            _ => None,
        }
    }

    /// The member that leads now, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len()).find(|&i| matches!(self.mode(i), Some(Mode::Leader | Mode::Standalone)))
    }

    /// Waits up to `timeout` for a leader; panics with the logs otherwise.
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no ZooKeeper leader after {timeout:?}\n{}",
                    self.log_tails(20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs member `i` (its data stays).
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member `i` again on the same ports and data (it must have been
    /// killed); does not wait for it to serve.
    pub fn restart(&mut self, i: usize) {
        assert!(
            self.members[i].child.is_none(),
            "ZooKeeper {} still runs",
            i + 1
        );
        self.members[i].spawn();
    }

    /// SIGKILLs every member.
    pub fn kill_all(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }

    /// Starts every killed member again.
    pub fn restart_all(&mut self) {
        for m in &mut self.members {
            if m.child.is_none() {
                m.spawn();
            }
        }
    }

    /// Waits until every running member serves (as leader, follower or
    /// standalone) and one leads. Panics with the logs after `timeout` or
    /// when a member exits.
    pub fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for m in &mut self.members {
                if let Some(status) = m.exited() {
                    let tail = crate::servers::log_tail(&m.log, 40);
                    panic!(
                        "ZooKeeper {} exited ({status}) while starting:\n{tail}",
                        m.id
                    );
                }
            }
            let running: Vec<usize> = (0..self.len())
                .filter(|&i| self.members[i].child.is_some())
                .collect();
            let modes: Vec<Option<Mode>> = running.iter().map(|&i| self.mode(i)).collect();
            if modes.iter().all(Option::is_some) && self.leader().is_some() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "ZooKeeper ensemble not serving after {timeout:?} (modes {modes:?})\n{}",
                    self.log_tails(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Directory of the members' data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines of every member's log.
    pub fn log_tails(&self, lines: usize) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- ZooKeeper {}: {} ---\n{}\n",
                    m.id,
                    m.log.display(),
                    crate::servers::log_tail(&m.log, lines)
                )
            })
            .collect()
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        self.kill_all();
        reaper::remove_dir(&self.dir);
    }
}

fn write_config(m: &Member, address: &str, servers: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(m.dir.join("data"))?;
    std::fs::write(m.dir.join("log4j.properties"), LOG4J)?;
    std::fs::write(m.dir.join("data/myid"), format!("{}\n", m.id))?;
    let mut cfg: String = fill(ZOO_CFG, &m.dir, m.client_port)
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("clientPortAddress", _)) => format!("clientPortAddress={address}"),
            // a follower that falls behind on a busy 2-core test machine
            // must not be dropped: 5 s to sync, 2 s to answer
            Some(("initLimit", _)) => "initLimit=50".to_string(),
            Some(("syncLimit", _)) => "syncLimit=20".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    cfg.push('\n');
    cfg.push_str(servers);
    let mut f = File::create(m.dir.join("zoo.cfg"))?;
    f.write_all(cfg.as_bytes())
}

/// `n` distinct free loopback ports, held open together while chosen.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The answer to a ZooKeeper four-letter command, `None` when the server
/// does not answer.
fn four_letter(port: u16, command: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&local(port), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(command).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}
