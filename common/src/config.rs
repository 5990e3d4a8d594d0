//! TaskConfig (docs/design.md §8): what the Server validates and writes into a task
//! node, and what every Core of the task reads.
//!
//! [`TaskConfig::parse`] is the entry point for untrusted JSON (HTTP bodies, a
//! znode edited by hand). It never stops at the first problem: unknown fields,
//! wrong types, out-of-range numbers, bad names, regexes that do not compile
//! and missing values are all collected into one [`ConfigErrors`].

use crate::names::validate_name;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Default Kafka partitions of a topic the Core creates.
pub const DEFAULT_PARTITIONS: u32 = 4;
/// Default number of instances a hot task should have (one RUNNING, one STANDBY).
pub const DEFAULT_REDUNDANCY: u32 = 2;

/// A replication task: one source, its filters, one Kafka sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Task name, `[A-Za-z0-9_.-]{1,128}`.
    #[serde(default)]
    pub name: String,
    /// `None`: hot-standby task under `/tasks`; a group: cold-standby task under `/task-groups/<group>`.
    #[serde(default)]
    pub group: Option<String>,
    /// Instances a hot task should have; below it the Monitor raises `no_standby`.
    #[serde(default = "default_redundancy")]
    pub redundancy: u32,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub sink: SinkConfig,
}

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

/// Default rows per snapshot chunk.
pub const DEFAULT_SNAPSHOT_CHUNK_ROWS: u32 = 10_000;

fn default_snapshot_chunk_rows() -> u32 {
    DEFAULT_SNAPSHOT_CHUNK_ROWS
}

fn is_default_chunk_rows(v: &u32) -> bool {
    *v == DEFAULT_SNAPSHOT_CHUNK_ROWS
}

/// `source.tls`: how the Core secures its connections to the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// The Kafka sink of a task. Its `Debug` hides secret properties.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    #[serde(default)]
    pub brokers: String,
    /// Topic template; `{database}` and `{table}` are expanded.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Message format, one of [`MessageFormat::NAMES`] (`json` by default).
    #[serde(default = "default_format")]
    pub format: String,
    /// Send a tombstone (same key, null value) after each delete, as
    /// Debezium's `tombstones.on.delete` does, so compacted topics drop the row.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tombstones: bool,
    /// Options of the `debezium` format.
    #[serde(default, skip_serializing_if = "DebeziumOptions::is_default")]
    pub debezium: DebeziumOptions,
    /// Topic of transaction BEGIN/END events (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions_topic: Option<String>,
    /// Period of heartbeat messages (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// Topic of heartbeats; `__replicator-heartbeat.<task>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_topic: Option<String>,
    /// Producer settings (see [`crate::producer::ProducerSettings`]).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Partitions of topics the Core creates.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Replication factor of topics the Core creates; the broker's default
    /// (`default.replication.factor`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u16>,
    /// `min.insync.replicas` of topics the Core creates; the broker's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_insync_replicas: Option<u16>,
}

/// Options of the `debezium` message format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebeziumOptions {
    /// Add the `schema` block to keys and values (Kafka Connect's JSON
    /// converter with `schemas.enable=true`).
    #[serde(default)]
    pub schemas: bool,
}

impl DebeziumOptions {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The message formats a sink can write (docs/design.md §7 and docs/formats.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    /// Ours (docs/design.md §7), the default.
    Json,
    /// Debezium's MySQL connector envelope.
    Debezium,
    /// Canal's FlatMessage.
    Canal,
    /// Maxwell's JSON.
    Maxwell,
}

impl MessageFormat {
    /// Every valid `sink.format` value.
    pub const NAMES: [&'static str; 4] = ["json", "debezium", "canal", "maxwell"];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageFormat::Json => "json",
            MessageFormat::Debezium => "debezium",
            MessageFormat::Canal => "canal",
            MessageFormat::Maxwell => "maxwell",
        }
    }
}

/// A `sink.format` that is none of [`MessageFormat::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`; valid formats: {names}", names = MessageFormat::NAMES.join(", "))]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for MessageFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "json" => Ok(MessageFormat::Json),
            "debezium" => Ok(MessageFormat::Debezium),
            "canal" => Ok(MessageFormat::Canal),
            "maxwell" => Ok(MessageFormat::Maxwell),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

impl fmt::Display for MessageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SinkConfig {
    /// The configured format (validation refused any other value).
    pub fn message_format(&self) -> Result<MessageFormat, UnknownFormat> {
        self.format.parse()
    }
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let secret = crate::kafka_security::SECRET_KEYS.contains(&k.as_str());
                (k.as_str(), if secret { "***" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("SinkConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("format", &self.format)
            .field("tombstones", &self.tombstones)
            .field("debezium", &self.debezium)
            .field("transactions_topic", &self.transactions_topic)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("heartbeat_topic", &self.heartbeat_topic)
            .field("properties", &properties)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("min_insync_replicas", &self.min_insync_replicas)
            .finish()
    }
}

fn default_port() -> u16 {
    3306
}
fn default_topic() -> String {
    "{database}.{table}".to_string()
}
fn default_format() -> String {
    "json".to_string()
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn default_partitions() -> u32 {
    DEFAULT_PARTITIONS
}
fn default_redundancy() -> u32 {
    DEFAULT_REDUNDANCY
}

impl Default for SourceConfig {
    fn default() -> Self {
        serde_json::from_value(Value::Object(Map::new())).expect("all source fields have defaults")
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        serde_json::from_value(Value::Object(Map::new())).expect("all sink fields have defaults")
    }
}

/// One problem of a config, located by its dotted field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub field: String,
    pub message: String,
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid task config ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if p.field.is_empty() {
                f.write_str(&p.message)?;
            } else {
                write!(f, "{}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        // One problem per field: the first (structural) one explains it best.
        if !self.0.iter().any(|p| p.field == field) {
            self.0.push(ConfigProblem {
                field: field.to_string(),
                message: message.into(),
            });
        }
    }
}

/// Field kinds the lenient walker checks before typed deserialization.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    OptStr,
    UInt { min: u64, max: u64 },
    Bool,
    StrList,
    StrMap,
    Start,
    OneOf(&'static [&'static str]),
    Object(&'static [(&'static str, Kind)]),
}

const SOURCE_FIELDS: &[(&str, Kind)] = &[
    ("host", Kind::Str),
    ("port", Kind::UInt { min: 1, max: 65535 }),
    ("hosts", Kind::StrList),
    ("user", Kind::Str),
    ("password", Kind::OptStr),
    ("password_env", Kind::OptStr),
    ("password_file", Kind::OptStr),
    (
        "server_id",
        Kind::UInt {
            min: 1,
            max: u32::MAX as u64,
        },
    ),
    ("include", Kind::StrList),
    ("exclude", Kind::StrList),
    ("start", Kind::Start),
    (
        "snapshot",
        Kind::OneOf(&["initial", "never", "when_needed"]),
    ),
    (
        "snapshot_chunk_rows",
        Kind::UInt {
            min: 1,
            max: 1_000_000,
        },
    ),
    ("tls", Kind::Object(TLS_FIELDS)),
];

const TLS_FIELDS: &[(&str, Kind)] = &[
    (
        "mode",
        Kind::OneOf(&["disabled", "required", "verify_ca", "verify_identity"]),
    ),
    ("ca_file", Kind::OptStr),
];

const SINK_FIELDS: &[(&str, Kind)] = &[
    ("brokers", Kind::Str),
    ("topic", Kind::Str),
    ("format", Kind::Str),
    ("tombstones", Kind::Bool),
    ("debezium", Kind::Object(DEBEZIUM_FIELDS)),
    ("transactions_topic", Kind::OptStr),
    (
        "heartbeat_ms",
        Kind::UInt {
            min: 100,
            max: 3_600_000,
        },
    ),
    ("heartbeat_topic", Kind::OptStr),
    ("properties", Kind::StrMap),
    (
        "partitions",
        Kind::UInt {
            min: 1,
            max: 10_000,
        },
    ),
    (
        "replication_factor",
        Kind::UInt {
            min: 1,
            max: 32_767,
        },
    ),
    (
        "min_insync_replicas",
        Kind::UInt {
            min: 1,
            max: 32_767,
        },
    ),
];

const DEBEZIUM_FIELDS: &[(&str, Kind)] = &[("schemas", Kind::Bool)];

const TASK_FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("group", Kind::OptStr),
    ("redundancy", Kind::UInt { min: 1, max: 100 }),
    ("source", Kind::Object(SOURCE_FIELDS)),
    ("sink", Kind::Object(SINK_FIELDS)),
];

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Reports unknown and ill-typed fields of `obj` and removes them, so that
/// typed deserialization of what remains succeeds and semantic validation can
/// still report the rest.
fn walk(obj: &mut Map<String, Value>, schema: &[(&str, Kind)], prefix: &str, out: &mut Problems) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let path = join(prefix, &key);
        let Some((_, kind)) = schema.iter().find(|(k, _)| *k == key) else {
            out.add(&path, "unknown field");
            obj.remove(&key);
            continue;
        };
        let value = obj.get_mut(&key).expect("key listed above");
        let problem = match (*kind, &mut *value) {
            (Kind::Str, Value::String(_)) => None,
            (Kind::Str, _) => Some("must be a string".to_string()),
            (Kind::OptStr, Value::String(_) | Value::Null) => None,
            (Kind::OptStr, _) => Some("must be a string or null".to_string()),
            (Kind::UInt { min, max }, Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => None,
                _ => Some(format!("{n} is out of range {min}..={max}")),
            },
            (Kind::UInt { .. }, _) => Some("must be a whole number".to_string()),
            (Kind::Bool, Value::Bool(_)) => None,
            (Kind::Bool, _) => Some("must be true or false".to_string()),
            (Kind::StrList, Value::Array(a)) if a.iter().all(Value::is_string) => None,
            (Kind::StrList, _) => Some("must be a list of strings".to_string()),
            (Kind::StrMap, Value::Object(m)) if m.values().all(Value::is_string) => None,
            (Kind::StrMap, _) => Some("must be an object of string values".to_string()),
            (Kind::Start, v) => check_start(v),
            (Kind::OneOf(opts), Value::String(s)) if opts.contains(&s.as_str()) => None,
            (Kind::OneOf(opts), _) => Some(format!("must be one of {}", opts.join(", "))),
            (Kind::Object(fields), Value::Object(m)) => {
                walk(m, fields, &path, out);
                None
            }
            (Kind::Object(_), _) => Some("must be an object".to_string()),
        };
        if let Some(p) = problem {
            out.add(&path, p);
            obj.remove(&key);
        }
    }
}

fn check_start(v: &Value) -> Option<String> {
    const HINT: &str =
        "must be \"earliest\", \"current\", {\"file\": \"...\", \"pos\": N} or {\"gtid\": \"...\"}";
    let ok = match v {
        Value::String(s) => s == "earliest" || s == "current",
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            match keys.as_slice() {
                ["gtid"] => m["gtid"].as_str().is_some_and(|g| !g.trim().is_empty()),
                ["file", "pos"] | ["pos", "file"] => {
                    m["file"].as_str().is_some_and(|f| !f.is_empty()) && m["pos"].as_u64().is_some()
                }
                _ => false,
            }
        }
        _ => false,
    };
    (!ok).then(|| HINT.to_string())
}

impl TaskConfig {
    /// Parses untrusted JSON and validates it, reporting every problem at once.
    pub fn parse(bytes: &[u8]) -> Result<TaskConfig, ConfigErrors> {
        let mut value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ConfigErrors(vec![ConfigProblem {
                field: String::new(),
                message: format!("not valid JSON: {e}"),
            }])
        })?;
        Self::parse_value(&mut value)
    }

    /// Like [`TaskConfig::parse`] on an already parsed JSON value.
    pub fn parse_value(value: &mut Value) -> Result<TaskConfig, ConfigErrors> {
        let mut problems = Problems::default();
        let Value::Object(obj) = value else {
            problems.add("", "a task config must be a JSON object");
            return Err(ConfigErrors(problems.0));
        };
        walk(obj, TASK_FIELDS, "", &mut problems);
        match serde_json::from_value::<TaskConfig>(Value::Object(obj.clone())) {
            Ok(cfg) => {
                cfg.check(&mut problems);
                if problems.0.is_empty() {
                    Ok(cfg)
                } else {
                    Err(ConfigErrors(problems.0))
                }
            }
            Err(e) => {
                problems.add("", e.to_string());
                Err(ConfigErrors(problems.0))
            }
        }
    }

    /// Validates a typed config (every problem at once).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::default();
        self.check(&mut problems);
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems.0))
        }
    }

    fn check(&self, p: &mut Problems) {
        if let Err(e) = validate_name(&self.name) {
            p.add("name", e.to_string());
        }
        if let Some(g) = &self.group {
            if let Err(e) = validate_name(g) {
                p.add("group", e.to_string());
            }
        }
        if self.redundancy == 0 {
            p.add("redundancy", "must be at least 1");
        }
        self.source.check(p);
        self.sink.check(p);
    }

    /// The config as JSON with the stored password replaced by `"***"`, for
    /// API answers and logs.
    pub fn redacted(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("config serializes");
        if let Some(pw) = v.pointer_mut("/source/password") {
            *pw = Value::String("***".into());
        }
        for key in crate::kafka_security::SECRET_KEYS {
            if let Some(pw) = v.pointer_mut(&format!("/sink/properties/{key}")) {
                *pw = Value::String("***".into());
            }
        }
        v
    }
}

impl SourceConfig {
    fn check(&self, p: &mut Problems) {
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
        if let Some(tls) = &self.tls {
            if tls.ca_file.as_deref().is_some_and(|f| f.trim().is_empty()) {
                p.add("source.tls.ca_file", "must not be empty");
            }
        }
        if let StartPosition::Gtid { gtid } = &self.start {
            if !crate::position::is_mysql_gtid_set(gtid)
                && gtid.parse::<crate::position::MariaGtidState>().is_err()
            {
                p.add("source.start", format!("bad GTID `{gtid}`"));
            }
        }
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

/// Compiles an include/exclude pattern anchored on the whole `db.table`.
pub fn compile_table_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{re})$"))
}

impl SinkConfig {
    fn check(&self, p: &mut Problems) {
        if self.brokers.trim().is_empty() {
            p.add("sink.brokers", "is required");
        } else {
            for b in self.brokers.split(',') {
                let ok = b.trim().rsplit_once(':').is_some_and(|(h, port)| {
                    !h.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0)
                });
                if !ok {
                    p.add("sink.brokers", format!("`{b}` is not HOST:PORT"));
                }
            }
        }
        if let Err(e) = self.message_format() {
            p.add("sink.format", e.to_string());
        }
        if let Err(e) = check_topic_template(&self.topic) {
            p.add("sink.topic", e.to_string());
        }
        for (field, topic) in [
            ("sink.transactions_topic", &self.transactions_topic),
            ("sink.heartbeat_topic", &self.heartbeat_topic),
        ] {
            if let Some(t) = topic {
                if t.contains('{') {
                    p.add(
                        field,
                        "is one topic: {database} and {table} are not expanded here",
                    );
                } else if let Err(e) = check_topic_template(t) {
                    p.add(field, e.to_string());
                }
            }
        }
        if self.partitions == 0 {
            p.add("sink.partitions", "must be at least 1");
        }
        if let (Some(rf), Some(isr)) = (self.replication_factor, self.min_insync_replicas) {
            if isr > rf {
                p.add(
                    "sink.min_insync_replicas",
                    format!(
                        "{isr} is more than sink.replication_factor {rf}: no write could succeed"
                    ),
                );
            }
        }
        if let Err(bad) = crate::producer::ProducerSettings::parse(&self.properties) {
            for (key, problem) in bad {
                p.add(&format!("sink.properties.{key}"), problem);
            }
        }
    }
}

/// Checks a topic template: literal parts must be legal in Kafka topic names,
/// and only `{database}` and `{table}` may be expanded.
pub fn check_topic_template(t: &str) -> Result<(), TopicTemplateError> {
    if t.is_empty() {
        return Err(TopicTemplateError::Empty);
    }
    let literal = t.replace("{database}", "").replace("{table}", "");
    if let Some(c) = literal
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicTemplateError::BadChar(c));
    }
    if t.len() > 249 {
        return Err(TopicTemplateError::TooLong);
    }
    Ok(())
}

/// Why a topic template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicTemplateError {
    #[error("is required")]
    Empty,
    #[error("`{0}` is not allowed in a topic; use letters, digits, `.`, `_`, `-`, {{database}} and {{table}}")]
    BadChar(char),
    #[error("is longer than 249 characters")]
    TooLong,
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
