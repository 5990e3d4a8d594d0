//! A MariaDB primary and a replica following it by GTID, for source
//! failover tests.
//!
//! Both run the stack's my.cnf (the same template as deploy/start-stack.sh)
//! with their own `server_id`; the replica also logs what it applies
//! (`log_slave_updates`, so its binlog holds the primary's GTIDs and a Core
//! can resume there by GTID) and starts `read_only`. The `repl` user is
//! created outside the replica's binlog, so its GTID history is only the
//! primary's. [`MariaPair::kill_primary`] is a SIGKILL;
//! [`MariaPair::promote_replica`] is what an operator (or orchestrator) runs:
//! `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0`.
//!
//! The servers are children of the test process registered with
//! [`crate::reaper`]; dropping the pair kills them and removes their
//! directory. Every wait is bounded and panics with what it saw.

use crate::reaper;
use crate::servers::{self, Running, StartError};
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder};
use std::path::PathBuf;
use std::time::Duration;

/// One MariaDB of a pair.
pub struct MariaDb {
    running: Option<Running>,
    pub port: u16,
    pub server_id: u32,
    pub log: PathBuf,
}

impl MariaDb {
    /// `repl`/`repl` over TCP.
    pub fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("repl"))
            .pass(Some("repl"))
            .prefer_socket(false)
            .into()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn conn(&self) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts()).await
    }

    /// Runs statements; panics with the statement on error.
    pub async fn sql(&self, sql: &str) {
        let mut c = self
            .conn()
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.addr()));
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("SQL on {} failed: {e}\n  {sql}", self.addr()));
        let _ = c.disconnect().await;
    }

    /// Runs a query; panics with it on error.
    pub async fn query<T: FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        let mut c = self
            .conn()
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.addr()));
        let rows = c
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("query on {} failed: {e}\n  {sql}", self.addr()));
        let _ = c.disconnect().await;
        rows
    }

    /// `@@gtid_binlog_pos`.
    pub async fn gtid_binlog_pos(&self) -> String {
        self.query::<String>("SELECT @@global.gtid_binlog_pos")
            .await
            .pop()
            .unwrap_or_default()
    }

    /// SIGKILL, as a crashed host.
    pub fn kill(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.kill();
        }
    }
}

/// One MariaDB of its own (for a server option the shared stack lacks, such
/// as `log_bin_compress=ON`); dropping it kills it and removes its directory.
pub struct MariaSolo {
    dir: PathBuf,
    pub db: MariaDb,
}

impl MariaSolo {
    /// Starts a MariaDB with the stack's my.cnf plus `extra` lines.
    pub async fn start(extra: &str) -> Result<MariaSolo, StartError> {
        let dir = reaper::fresh_dir("mariadb");
        reaper::register_dir(&dir);
        let (d, extra) = (dir.join("mariadb"), extra.to_string());
        let r = tokio::task::spawn_blocking(move || {
            servers::start_mariadb(&d, &Default::default(), &extra, true)
        })
        .await
        .expect("start thread")?;
        Ok(MariaSolo {
            dir,
            db: MariaDb {
                port: r.port,
                log: r.log.clone(),
                server_id: 1,
                running: Some(r),
            },
        })
    }
}

impl Drop for MariaSolo {
    fn drop(&mut self) {
        self.db.kill();
        reaper::remove_dir(&self.dir);
    }
}

/// A primary and its GTID replica.
pub struct MariaPair {
    dir: PathBuf,
    pub primary: MariaDb,
    pub replica: MariaDb,
}

impl MariaPair {
    /// Starts both (in parallel) with `extra` my.cnf lines each, and starts
    /// replication; returns once the replica's IO and SQL threads run.
    pub async fn start(extra: &str) -> Result<MariaPair, StartError> {
        let dir = reaper::fresh_dir("pair");
        reaper::register_dir(&dir);
        let (pdir, rdir) = (dir.join("primary"), dir.join("replica"));
        let pextra = format!("server_id=1\n{extra}");
        let rextra = format!("server_id=2\nlog_slave_updates=ON\nread_only=ON\n{extra}");
        let (p, r) = tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                let p =
                    s.spawn(|| servers::start_mariadb(&pdir, &Default::default(), &pextra, true));
                let r =
                    s.spawn(|| servers::start_mariadb(&rdir, &Default::default(), &rextra, false));
                (p.join(), r.join())
            })
        })
        .await
        .expect("start thread");
        let into = |r: std::thread::Result<Result<Running, StartError>>| {
            r.unwrap_or_else(|_| panic!("a MariaDB start thread panicked"))
        };
        let (p, r) = match (into(p), into(r)) {
            (Ok(p), Ok(r)) => (p, r),
            (Err(e), Ok(mut other)) | (Ok(mut other), Err(e)) => {
                other.kill();
                return Err(e);
            }
            (Err(e), Err(_)) => return Err(e),
        };
        let db = |r: Running, id| MariaDb {
            port: r.port,
            log: r.log.clone(),
            server_id: id,
            running: Some(r),
        };
        let pair = MariaPair {
            dir,
            primary: db(p, 1),
            replica: db(r, 2),
        };
        pair.replica
            .sql(&format!(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, \
                 MASTER_USER = 'repl', MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos, \
                 MASTER_CONNECT_RETRY = 1; START SLAVE",
                pair.primary.port
            ))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let running: Vec<mysql_async::Row> = pair.replica.query("SHOW SLAVE STATUS").await;
            let ok = running.first().is_some_and(|row| {
                let io: Option<String> = row.get("Slave_IO_Running");
                let sql: Option<String> = row.get("Slave_SQL_Running");
                io.as_deref() == Some("Yes") && sql.as_deref() == Some("Yes")
            });
            if ok {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica did not start replicating within 30 s; see {}",
                pair.replica.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(pair)
    }

    /// Waits until the replica has applied everything the primary logged
    /// (same `@@gtid_binlog_pos`); false after `timeout`.
    pub async fn replica_caught_up(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let p = self.primary.gtid_binlog_pos().await;
            if self.replica.gtid_binlog_pos().await == p {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL of the primary.
    pub fn kill_primary(&mut self) {
        self.primary.kill();
    }

    /// Makes the replica a primary, as an operator would.
    pub async fn promote_replica(&self) {
        self.replica
            .sql("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
            .await;
    }
}

impl Drop for MariaPair {
    fn drop(&mut self) {
        self.primary.kill();
        self.replica.kill();
        reaper::remove_dir(&self.dir);
    }
}
