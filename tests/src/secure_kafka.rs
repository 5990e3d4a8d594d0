//! A secured Kafka for tests: a private Tansu behind a real TLS server.
//!
//! Tansu 0.6.0 cannot serve TLS itself (its CLI refuses `--cert` and `--key`
//! together), so socat's `OPENSSL-LISTEN` terminates TLS in front of it and
//! Tansu advertises socat's port: every client connection, bootstrap or
//! not, goes through TLS. The certificates are made here with the `openssl`
//! command: a CA, a server certificate for `localhost` signed by it, and a
//! second CA that signed nothing (for the "wrong CA" case).
//!
//! With `authentication`, Tansu also requires SASL SCRAM. Its memory
//! storage keeps no user, so no login can succeed there;
//! [`SecureKafka::start_on_postgres`] puts the TLS front before a Tansu on
//! PostgreSQL ([`crate::pg_kafka`]), where users made with `tansu user
//! create` survive the restart that turns `--authentication` on.

use crate::certs::make_certificates;
use crate::pg_kafka::PgKafka;
use crate::process::Process;
use crate::reaper;
use crate::servers::tansu_path;
use crate::stack::Stack;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Tansu behind a TLS terminator, on free loopback ports.
pub struct SecureKafka {
    /// `localhost:PORT`: TLS, the name the server certificate carries.
    pub bootstrap: String,
    /// The TLS port.
    pub port: u16,
    /// PEM of the CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// PEM of a CA that signed nothing here.
    pub wrong_ca_file: PathBuf,
    pub dir: PathBuf,
    broker: Broker,
    socat: Process,
}

/// The Tansu behind the TLS front.
enum Broker {
    Memory(Process),
    Postgres(Box<PgKafka>),
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16, what: &str, proc: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
        assert!(
            Instant::now() < deadline && proc.is_running(),
            "{what} did not listen on {port}:\n{}",
            proc.tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl SecureKafka {
    /// Starts Tansu (memory storage; with `--authentication` when asked)
    /// and socat in front of it; panics with their logs when they do not start.
    pub fn start(authentication: bool) -> SecureKafka {
        let dir = reaper::fresh_dir("secure-kafka");
        make_certificates(&dir, "localhost", "DNS:localhost");
        let inner = free_port();
        let port = free_port();
        let tansu = tansu_path().expect("tansu binary: run deploy/install.sh");
        let mut cmd = Command::new(tansu);
        cmd.arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{inner}")])
            .args([
                "--advertised-listener-url",
                &format!("tcp://localhost:{port}"),
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(&dir)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        if authentication {
            cmd.arg("--authentication");
        }
        let mut tansu = Process::spawn_command("tansu-secure", cmd);
        wait_port(inner, "tansu", &mut tansu);
        SecureKafka::front(dir, inner, port, Broker::Memory(tansu))
    }

    /// Starts PostgreSQL, a Tansu on it (without `--authentication`; see
    /// [`SecureKafka::postgres`] to add users and turn it on) and socat in
    /// front of it.
    pub fn start_on_postgres() -> SecureKafka {
        let dir = reaper::fresh_dir("secure-kafka");
        make_certificates(&dir, "localhost", "DNS:localhost");
        let inner = free_port();
        let port = free_port();
        let kafka = PgKafka::start_advertising(inner, &format!("tcp://localhost:{port}"));
        SecureKafka::front(dir, inner, port, Broker::Postgres(Box::new(kafka)))
    }

    /// socat on `port` terminating TLS for the broker on `inner`.
    fn front(dir: PathBuf, inner: u16, port: u16, broker: Broker) -> SecureKafka {
        let mut cmd = Command::new("socat");
        cmd.arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ))
        .arg(format!("TCP:127.0.0.1:{inner}"));
        let mut socat = Process::spawn_command("socat-tls", cmd);
        wait_port(port, "socat", &mut socat);
        SecureKafka {
            bootstrap: format!("localhost:{port}"),
            port,
            ca_file: dir.join("ca.pem"),
            wrong_ca_file: dir.join("other-ca.pem"),
            dir,
            broker,
            socat,
        }
    }

    /// The Tansu on PostgreSQL behind the front (its plaintext port is for
    /// `tansu user create`); panics for [`SecureKafka::start`]'s memory broker.
    pub fn postgres(&mut self) -> &mut PgKafka {
        match &mut self.broker {
            Broker::Postgres(k) => k,
            Broker::Memory(_) => panic!("SecureKafka::start_on_postgres has a PostgreSQL storage"),
        }
    }

    /// The `sink.properties` (and librdkafka properties) for TLS with `ca`.
    pub fn tls_properties(ca: &Path) -> Vec<(String, String)> {
        vec![
            ("security.protocol".into(), "ssl".into()),
            ("ssl.ca.location".into(), ca.display().to_string()),
        ]
    }

    /// A stack with `base`'s ZooKeeper and MariaDB and this Kafka, whose
    /// clients (topic reads, produce) use `props`.
    pub fn stack(&self, base: &Stack, props: Vec<(String, String)>) -> Stack {
        base.with_kafka(&self.bootstrap, props)
    }

    /// Stops the front and the broker (and its PostgreSQL).
    pub async fn stop(mut self) {
        self.socat.kill();
        match self.broker {
            Broker::Memory(mut tansu) => {
                tansu.kill();
            }
            Broker::Postgres(kafka) => kafka.stop().await,
        }
    }
}
