//! The source part of a task config (docs/design.md §8): the server or
//! servers to read (`host`/`port` or `hosts`), credentials, filters, the
//! start position, snapshot mode and TLS, with their checks.

use super::{compile_table_regex, Problems};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The MySQL/MariaDB server a task reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(default)]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Ordered `host:port` list of servers to follow (a primary and the
    /// replicas that may replace it); instead of `host`/`port`. The Core reads
    /// from the first that answers and resumes on another one by GTID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub user: String,
    /// Password stored in the task node (prefer `password_env` or `password_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Name of an environment variable on the Core host holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Path of a file on the Core host holding the password (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// Replica server id the Core announces; must differ from every other replica's.
    #[serde(default)]
    pub server_id: u32,
    /// Regexes on `db.table`; a table is replicated when one matches (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Regexes on `db.table`; a table that matches one is skipped.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where a task with no progress context starts.
    #[serde(default)]
    pub start: StartPosition,
    /// Whether the rows that exist already are copied (see `docs/snapshots.md`).
    #[serde(default, skip_serializing_if = "SnapshotMode::is_default")]
    pub snapshot: SnapshotMode,
    /// Rows per snapshot chunk (memory and the size of a re-read after a crash).
    #[serde(
        default = "default_snapshot_chunk_rows",
        skip_serializing_if = "is_default_chunk_rows"
    )]
    pub snapshot_chunk_rows: u32,
    /// How each chunk is made consistent with the stream (see
    /// `docs/snapshots.md`): `auto` picks MariaDB's consistent snapshot on
    /// MariaDB and the signal-table watermarks on MySQL.
    #[serde(default, skip_serializing_if = "SnapshotMethod::is_default")]
    pub snapshot_method: SnapshotMethod,
    /// `db.table` of the watermark signal table (watermark method only).
    #[serde(
        default = "default_snapshot_signal_table",
        skip_serializing_if = "is_default_signal_table"
    )]
    pub snapshot_signal_table: String,
    /// TLS to the source server (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SourceTls>,
}

/// Copy of existing rows of a task (`source.snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// A new task copies its tables, merged with the stream (the default).
    #[default]
    Initial,
    /// Never copy: the stream only.
    Never,
    /// Copy for a new task, and again when the context points at a purged
    /// binlog (instead of stopping with an error).
    WhenNeeded,
}

impl SnapshotMode {
    pub fn is_default(&self) -> bool {
        *self == SnapshotMode::Initial
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMode::Initial => "initial",
            SnapshotMode::Never => "never",
            SnapshotMode::WhenNeeded => "when_needed",
        }
    }
}

/// How snapshot chunks are made consistent with the stream
/// (`source.snapshot_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMethod {
    /// MariaDB: `consistent_snapshot`; MySQL: `watermark` (the default).
    #[default]
    Auto,
    /// Low/high watermark rows written to the signal table around each
    /// chunk read (DBLog); needs a writable source.
    Watermark,
    /// `START TRANSACTION WITH CONSISTENT SNAPSHOT` and MariaDB's
    /// `binlog_snapshot_file/position` (MariaDB only; writes nothing).
    ConsistentSnapshot,
}

impl SnapshotMethod {
    pub fn is_default(&self) -> bool {
        *self == SnapshotMethod::Auto
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMethod::Auto => "auto",
            SnapshotMethod::Watermark => "watermark",
            SnapshotMethod::ConsistentSnapshot => "consistent_snapshot",
        }
    }
}

/// Default watermark signal table (`source.snapshot_signal_table`).
pub const DEFAULT_SNAPSHOT_SIGNAL_TABLE: &str = "mysql_replicator.snapshot_signal";

fn default_snapshot_signal_table() -> String {
    DEFAULT_SNAPSHOT_SIGNAL_TABLE.to_string()
}

fn is_default_signal_table(v: &String) -> bool {
    v == DEFAULT_SNAPSHOT_SIGNAL_TABLE
}

/// Default rows per snapshot chunk.
pub const DEFAULT_SNAPSHOT_CHUNK_ROWS: u32 = 10_000;

fn default_snapshot_chunk_rows() -> u32 {
    DEFAULT_SNAPSHOT_CHUNK_ROWS
}

fn is_default_chunk_rows(v: &u32) -> bool {
    *v == DEFAULT_SNAPSHOT_CHUNK_ROWS
}

/// `source.tls`: how the Core (and the Monitor) secure connections to the source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTls {
    #[serde(default)]
    pub mode: SourceTlsMode,
    /// PEM file of the CA(s) to trust (verify modes); absent: the built-in
    /// web PKI roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// The TLS modes of MySQL's `--ssl-mode`, same meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceTlsMode {
    /// Plain TCP.
    #[default]
    Disabled,
    /// Encrypted; the certificate is not checked.
    Required,
    /// Encrypted; the certificate must chain to `ca_file` (host name not checked).
    VerifyCa,
    /// As `verify_ca`, and the certificate must name the host connected to.
    VerifyIdentity,
}

/// Where a task with no context starts reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartPosition {
    /// `"earliest"` or `"current"` (the default).
    Named(NamedStart),
    /// `{"file": "...", "pos": 4}`.
    File { file: String, pos: u64 },
    /// `{"gtid": "0-1-42"}` (MariaDB) or a MySQL GTID set.
    Gtid { gtid: String },
}

impl Default for StartPosition {
    fn default() -> Self {
        StartPosition::Named(NamedStart::Current)
    }
}

/// The named start positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamedStart {
    Earliest,
    Current,
}

impl StartPosition {
    /// The position itself (kept for callers written against older versions
    /// that had a separate default form).
    pub fn normalized(&self) -> StartPosition {
        self.clone()
    }
}

fn default_port() -> u16 {
    3306
}

impl Default for SourceConfig {
    fn default() -> Self {
        serde_json::from_value(Value::Object(Map::new())).expect("all source fields have defaults")
    }
}

impl SourceConfig {
    pub(super) fn check(&self, p: &mut Problems) {
        if self.hosts.is_empty() && self.host.trim().is_empty() {
            p.add("source.host", "is required (or give source.hosts)");
        }
        if !self.hosts.is_empty() && !self.host.trim().is_empty() {
            p.add(
                "source.hosts",
                "give either source.host/port or source.hosts, not both",
            );
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if parse_host_port(h).is_none() {
                p.add(
                    &format!("source.hosts[{i}]"),
                    format!("`{h}` is not HOST:PORT"),
                );
            }
        }
        if self.port == 0 {
            p.add("source.port", "0 is out of range 1..=65535");
        }
        if self.user.is_empty() {
            p.add("source.user", "is required");
        }
        if self.server_id == 0 {
            p.add("source.server_id", "is required and must not be 0");
        }
        let given = [
            self.password.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            p.add(
                "source.password",
                "give only one of password, password_env and password_file",
            );
        }
        for (field, list) in [
            ("source.include", &self.include),
            ("source.exclude", &self.exclude),
        ] {
            for (i, re) in list.iter().enumerate() {
                if let Err(e) = compile_table_regex(re) {
                    p.add(&format!("{field}[{i}]"), format!("bad regex `{re}`: {e}"));
                }
            }
        }
        if self.snapshot_signal().is_none() {
            p.add(
                "source.snapshot_signal_table",
                format!("`{}` is not DATABASE.TABLE", self.snapshot_signal_table),
            );
        }
        if let Some(tls) = &self.tls {
            if tls.ca_file.as_deref().is_some_and(|f| f.trim().is_empty()) {
                p.add("source.tls.ca_file", "must not be empty");
            }
        }
        if let StartPosition::Gtid { gtid } = &self.start {
            if let Err(e) = gtid.parse::<crate::gtid::GtidSet>() {
                p.add("source.start", format!("bad GTID `{gtid}`: {e}"));
            }
        }
    }

    /// The watermark signal table as `(database, table)`; `None` when
    /// `snapshot_signal_table` is not `DATABASE.TABLE` (validation says so).
    pub fn snapshot_signal(&self) -> Option<(&str, &str)> {
        let (db, table) = self.snapshot_signal_table.split_once('.')?;
        let ok = |s: &str| !s.trim().is_empty() && !s.contains('.') && s.trim() == s;
        (ok(db) && ok(table)).then_some((db, table))
    }

    /// The servers to try, in order: `hosts` when given, else `host:port`.
    /// Entries that do not parse are left out (validation reports them).
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        if self.hosts.is_empty() {
            vec![(self.host.clone(), self.port)]
        } else {
            self.hosts
                .iter()
                .filter_map(|h| parse_host_port(h))
                .collect()
        }
    }

    /// The password from wherever the config says it is.
    pub fn resolve_password(&self) -> Result<Option<Secret>, PasswordError> {
        if let Some(pw) = &self.password {
            return Ok(Some(pw.clone()));
        }
        if let Some(var) = &self.password_env {
            return std::env::var(var)
                .map(|v| Some(Secret::new(v)))
                .map_err(|_| PasswordError::MissingEnv(var.clone()));
        }
        if let Some(file) = &self.password_file {
            return std::fs::read_to_string(file)
                .map(|v| Some(Secret::new(v.trim_end_matches(['\n', '\r']))))
                .map_err(|e| PasswordError::File(file.clone(), e.kind().to_string()));
        }
        Ok(None)
    }
}

/// Splits `host:port` (`[v6]:port` too); None when it is not that.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (h, port) = s.trim().rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!h.is_empty()).then(|| (h.to_string(), port))
}

/// The password could not be read on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("environment variable `{0}` named by source.password_env is not set on this host")]
    MissingEnv(String),
    #[error("cannot read source.password_file `{0}`: {1}")]
    File(String, String),
}
