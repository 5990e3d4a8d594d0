//! The lenient first pass over untrusted task-config JSON: every unknown
//! or ill-typed field is reported with its dotted path and removed, so the
//! typed deserialization of the rest succeeds and the semantic checks still
//! report everything else at once.
//!
//! Nothing here restates the config structs: the field names of each level
//! are the ones serde's derived `Deserialize` accepts (read from serde
//! itself, [`field_names`]), and a field's type is checked by deserializing
//! that field alone into its struct. What serde does not know is listed:
//! the allowed ranges of numbers ([`RANGES`]), the start position's shape,
//! and which fields are nested config objects ([`nested`]).

use super::source::{SourceConfig, SourceTls};
use super::{DebeziumOptions, Problems, SinkConfig, TaskConfig};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

/// The allowed range of each whole-number field, by dotted path.
const RANGES: &[(&str, u64, u64)] = &[
    ("redundancy", 1, 100),
    ("source.port", 1, 65535),
    ("source.server_id", 1, u32::MAX as u64),
    ("source.snapshot_chunk_rows", 1, 1_000_000),
    ("sink.heartbeat_ms", 100, 3_600_000),
    ("sink.partitions", 1, 10_000),
    ("sink.replication_factor", 1, 32_767),
    ("sink.min_insync_replicas", 1, 32_767),
];

/// One JSON object level of the config: the struct it deserializes into.
#[derive(Clone, Copy)]
struct Level {
    /// The field names serde accepts.
    names: fn() -> &'static [&'static str],
    /// Deserializes an object of some of the fields (serde's error when one
    /// has the wrong type).
    trial: fn(Value) -> Result<(), serde_json::Error>,
}

fn level<T: DeserializeOwned>() -> Level {
    Level {
        names: field_names::<T>,
        trial: |v| serde_json::from_value::<T>(v).map(drop),
    }
}

/// The nested config objects, by dotted path.
fn nested(path: &str) -> Option<Level> {
    match path {
        "source" => Some(level::<SourceConfig>()),
        "source.tls" => Some(level::<SourceTls>()),
        "sink" => Some(level::<SinkConfig>()),
        "sink.debezium" => Some(level::<DebeziumOptions>()),
        _ => None,
    }
}

/// Reports (and removes) the unknown and ill-typed fields of a task config.
pub(super) fn check_fields(obj: &mut Map<String, Value>, out: &mut Problems) {
    walk(obj, level::<TaskConfig>(), "", out);
}

/// The field names `T`'s derived `Deserialize` accepts: what serde passes
/// to `deserialize_struct`, taken by a deserializer that reads nothing.
pub(super) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut names));
    names
}

/// Every field path of the config, dotted (`source.tls.mode`).
#[cfg(test)]
pub(super) fn known_paths() -> Vec<String> {
    fn collect(level: Level, prefix: &str, out: &mut Vec<String>) {
        for key in (level.names)() {
            let path = join(prefix, key);
            if let Some(sub) = nested(&path) {
                collect(sub, &path, out);
            }
            out.push(path);
        }
    }
    let mut out = Vec::new();
    collect(level::<TaskConfig>(), "", &mut out);
    out.sort();
    out
}

/// The paths that carry a check serde does not know.
#[cfg(test)]
pub(super) fn checked_paths() -> Vec<&'static str> {
    let mut out: Vec<&str> = RANGES.iter().map(|(p, _, _)| *p).collect();
    out.push("source.start");
    out
}

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
fn walk(obj: &mut Map<String, Value>, level: Level, prefix: &str, out: &mut Problems) {
    let names = (level.names)();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let path = join(prefix, &key);
        if !names.contains(&key.as_str()) {
            out.add(&path, "unknown field");
            obj.remove(&key);
            continue;
        }
        let value = obj.get_mut(&key).expect("key listed above");
        let problem = match (&mut *value, RANGES.iter().find(|(p, _, _)| *p == path)) {
            _ if path == "source.start" => check_start(value),
            (Value::Number(n), Some(&(_, min, max))) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => None,
                _ => Some(format!("{n} is out of range {min}..={max}")),
            },
            (Value::Object(m), _) if nested(&path).is_some() => {
                walk(m, nested(&path).expect("matched"), &path, out);
                None
            }
            _ => None,
        };
        // the field alone, into its struct: serde's type check
        let problem = problem.or_else(|| {
            let mut one = Map::new();
            one.insert(key.clone(), value.clone());
            (level.trial)(Value::Object(one))
                .err()
                .map(|e| e.to_string())
                .filter(|e| !e.starts_with("missing field"))
        });
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
