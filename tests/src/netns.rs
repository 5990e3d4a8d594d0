//! Network partitions for tests: a Linux network namespace ([`Netns`])
//! joined to the test's own namespace by one veth pair per *link*, so that a
//! test can cut one path (Core to ZooKeeper, Core to Kafka, Core to the
//! source) and keep the others.
//!
//! In: the link labels a test asks for. Each link gets a /30 of
//! 10.200.0.0/13 that no interface of this host uses yet: the host side is
//! `.1`, the namespace side `.2`. A server of the test stack listening on
//! every address ([`crate::ServerOptions::listen_all`]) is reachable from
//! the namespace at [`Netns::host_addr`] of a link, and only through it: the
//! namespace has no default route. Out: [`Netns::command`] (a command run
//! inside the namespace, `ip netns exec`), [`Netns::cut`] and
//! [`Netns::restore`]: the *host* side of a link goes down or up. Packets
//! the namespace sends on a cut link are dropped silently (its side stays
//! up, without carrier), as in a partition between two hosts: connections
//! time out rather than fail at once. While a link is cut, its host-side
//! address is gone for the host's processes too, so they should use
//! 127.0.0.1 or another link's address. [`Netns::cut_local`] takes the
//! namespace's own side down instead (its interface fails: connections fail
//! at once with "network unreachable").
//!
//! Uses the `ip` program of iproute2 (installed by deploy/install.sh);
//! needs root (CAP_NET_ADMIN). [`Netns::create`] fails with a clear message
//! otherwise; tests skip only when `REPLICATOR_TEST_SKIP_NETNS=1`
//! ([`skip_netns_tests`]). Clean-up: dropping a [`Netns`] (also while its
//! test panics) deletes the namespace, which deletes its veth pairs; a
//! namespace left by a killed test process (`rtest-<pid>-<n>`, pid gone) is
//! deleted by the next [`Netns::create`].

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Set to `1` to make the network-partition tests return at once.
pub const SKIP_NETNS_ENV: &str = "REPLICATOR_TEST_SKIP_NETNS";

/// True (after printing why) when `REPLICATOR_TEST_SKIP_NETNS=1`.
pub fn skip_netns_tests() -> bool {
    let skip = std::env::var(SKIP_NETNS_ENV).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: {SKIP_NETNS_ENV} is set");
    }
    skip
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// One veth pair between the host and the namespace.
#[derive(Debug, Clone)]
pub struct Link {
    pub label: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_addr: String,
    pub ns_addr: String,
}

/// A network namespace with its links. See the module docs.
#[derive(Debug)]
pub struct Netns {
    name: String,
    links: Vec<Link>,
}

impl Netns {
    /// Creates a namespace with one link per label (labels: a few letters,
    /// e.g. `zk`, `kafka`, `mysql`). Fails with what `ip` said.
    pub fn create(labels: &[&str]) -> Result<Netns, String> {
        remove_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("rtest-{pid}-{n}");
        ip(["netns", "add", &name])
            .map_err(|e| format!("cannot create network namespace {name} (root needed; {SKIP_NETNS_ENV}=1 skips these tests): {e}"))?;
        // from here on, Drop deletes the namespace
        let mut ns = Netns {
            name,
            links: Vec::new(),
        };
        ns.exec_ip(["link", "set", "lo", "up"])?;
        let used = used_addresses()?;
        let mut subnet = (pid.wrapping_mul(2654435761) ^ n.wrapping_mul(40503)) % (1 << 17);
        for (i, label) in labels.iter().enumerate() {
            let (host_addr, ns_addr) = loop {
                let base = (10u32 << 24) | (200 << 16) | (subnet << 2);
                subnet = (subnet + 1) % (1 << 17);
                let host = addr(base + 1);
                if !used.iter().any(|u| u == &host || u == &addr(base + 2)) {
                    break (host, addr(base + 2));
                }
            };
            let tag = format!("{:x}", pid % 0xfffff);
            let host_if = format!("rth{tag}{n}{i}");
            let ns_if = format!("rtn{tag}{n}{i}");
            if host_if.len() > 15 {
                return Err(format!("interface name {host_if} too long"));
            }
            ip([
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ])?;
            ip(["link", "set", &ns_if, "netns", &ns.name])?;
            ip(["addr", "add", &format!("{host_addr}/30"), "dev", &host_if])?;
            ip(["link", "set", &host_if, "up"])?;
            ns.exec_ip(["addr", "add", &format!("{ns_addr}/30"), "dev", &ns_if])?;
            ns.exec_ip(["link", "set", &ns_if, "up"])?;
            ns.links.push(Link {
                label: label.to_string(),
                host_if,
                ns_if,
                host_addr,
                ns_addr,
            });
        }
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link labelled `label`; panics when there is none.
    pub fn link(&self, label: &str) -> &Link {
        self.links
            .iter()
            .find(|l| l.label == label)
            .unwrap_or_else(|| panic!("no link {label} in {}", self.name))
    }

    /// The host-side address of a link: where the namespace reaches the
    /// host's servers through it.
    pub fn host_addr(&self, label: &str) -> &str {
        &self.link(label).host_addr
    }

    /// Cuts a link: its host side goes down, the namespace's packets on it
    /// are dropped. Panics when `ip` fails.
    pub fn cut(&self, label: &str) {
        let host_if = &self.link(label).host_if;
        ip(["link", "set", host_if, "down"]).unwrap_or_else(|e| panic!("cut {label}: {e}"));
    }

    /// Takes the namespace's own side of a link down (as when a host's
    /// interface goes down): connections from the namespace on it fail at
    /// once with "network unreachable" instead of timing out. Undo with
    /// [`Netns::restore_local`].
    pub fn cut_local(&self, label: &str) {
        let ns_if = self.link(label).ns_if.clone();
        self.exec_ip(["link", "set", &ns_if, "down"])
            .unwrap_or_else(|e| panic!("cut {label} inside the namespace: {e}"));
    }

    /// Brings the namespace's side of a link up again.
    pub fn restore_local(&self, label: &str) {
        let ns_if = self.link(label).ns_if.clone();
        self.exec_ip(["link", "set", &ns_if, "up"])
            .unwrap_or_else(|e| panic!("restore {label} inside the namespace: {e}"));
    }

    /// Restores a cut link.
    pub fn restore(&self, label: &str) {
        let host_if = &self.link(label).host_if;
        ip(["link", "set", host_if, "up"]).unwrap_or_else(|e| panic!("restore {label}: {e}"));
    }

    /// `program` to run inside the namespace (through `ip netns exec`,
    /// which execs it: its pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    fn exec_ip<const N: usize>(&self, args: [&str; N]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(&args);
        ip(all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(["netns", "del", &self.name]) {
            eprintln!(
                "replicator-tests: could not delete namespace {}: {e}",
                self.name
            );
        }
        // deleting the namespace deletes the pairs; make sure of the host side
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["link", "del", &l.host_if])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn addr(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// Runs `ip ARGS`; the error is its stderr.
fn ip<I, S>(args: I) -> Result<(), String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip (iproute2, deploy/install.sh): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// IPv4 addresses of this host's interfaces.
fn used_addresses() -> Result<Vec<String>, String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.split_once('/').map(|(a, _)| a.to_string()))
        .filter(|a| a.starts_with("10."))
        .collect())
}

/// Deletes `rtest-<pid>-<n>` namespaces whose test process is gone.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix("rtest-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(["netns", "del", name]);
        }
    }
}
