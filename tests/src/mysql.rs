//! SQL helpers on [`Stack`]: connections as the `repl` user over TCP.
//!
//! Each helper opens its own connection and closes it before returning, so
//! they work from any test's runtime. They panic with the failing statement in
//! the message: they are for tests. Use [`Stack::conn`] or [`Stack::pool`] to
//! handle errors yourself or to keep a connection (for a transaction, say).

use crate::Stack;
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, Pool};

impl Stack {
    /// Connection options for the `repl` user, without a default database.
    pub fn mysql_opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.mysql_host())
            .tcp_port(self.mysql_port())
            .user(Some(self.mysql_user()))
            .pass(Some(self.mysql_password()))
            .prefer_socket(false)
            .into()
    }

    /// A new pool; the caller owns it (call `disconnect().await` at the end).
    pub fn pool(&self) -> Pool {
        Pool::new(self.mysql_opts())
    }

    /// A new connection; panics when it cannot connect.
    pub async fn conn(&self) -> Conn {
        Conn::new(self.mysql_opts())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to MariaDB at {}: {e}", self.mysql_url()))
    }

    /// Runs one or more `;`-separated statements (text protocol), discarding
    /// results. Panics on error.
    pub async fn sql(&self, sql: &str) {
        let mut conn = self.conn().await;
        if let Err(e) = conn.query_drop(sql).await {
            panic!("SQL failed: {e}\n  statement: {sql}");
        }
        let _ = conn.disconnect().await;
    }

    /// Runs a query and returns its rows as `T` (a tuple, `mysql_async::Row`,
    /// `String`, ...). Panics on error.
    ///
    /// ```no_run
    /// # async fn f(stack: &replicator_tests::Stack) {
    /// let rows: Vec<(i64, String)> = stack.query("SELECT id, note FROM db.t").await;
    /// # }
    /// ```
    pub async fn query<T: FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        let mut conn = self.conn().await;
        let rows = conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n  query: {sql}"));
        let _ = conn.disconnect().await;
        rows
    }

    /// Creates a database with a fresh name built from `prefix`
    /// ([`crate::unique_name`]) and returns the name.
    pub async fn create_database(&self, prefix: &str) -> String {
        let name = crate::unique_name(prefix);
        self.sql(&format!("CREATE DATABASE `{name}`")).await;
        name
    }

    /// The source's current binlog file and position (`SHOW MASTER STATUS`).
    pub async fn binlog_position(&self) -> (String, u64) {
        let rows: Vec<mysql_async::Row> = self.query("SHOW MASTER STATUS").await;
        let row = rows.into_iter().next().expect("binary logging is off");
        let file: String = row.get(0).expect("File column");
        let pos: u64 = row.get(1).expect("Position column");
        (file, pos)
    }

    /// The source's current GTID position (`@@gtid_binlog_pos`, MariaDB).
    pub async fn gtid_position(&self) -> String {
        let rows: Vec<Option<String>> = self.query("SELECT @@GLOBAL.gtid_binlog_pos").await;
        rows.into_iter().next().flatten().unwrap_or_default()
    }
}
