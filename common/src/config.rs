//! TaskConfig (docs/design.md §8): what the Server validates and writes into a task
//! node, and what every Core of the task reads.
//!
//! [`TaskConfig::parse`] is the entry point for untrusted JSON (HTTP bodies, a
//! znode edited by hand). It never stops at the first problem: unknown fields,
//! wrong types, out-of-range numbers, bad names, regexes that do not compile
//! and missing values are all collected into one [`ConfigErrors`].

mod fields;
mod source;

pub use source::{
    parse_host_port, NamedStart, PasswordError, SnapshotMethod, SnapshotMode, SourceConfig,
    SourceTls, SourceTlsMode, StartPosition, DEFAULT_SNAPSHOT_SIGNAL_TABLE,
};

use crate::names::validate_name;
use fields::check_fields;
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
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        // One problem per field: the first (structural) one explains it best.
        if !self.0.iter().any(|p| p.field == field) {
            self.0.push(ConfigProblem {
                field: field.to_string(),
                message: message.into(),
            });
        }
    }
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
        check_fields(obj, &mut problems);
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
