//! The lenient first pass over untrusted task-config JSON: every unknown
//! or ill-typed field is reported with its dotted path and removed, so the
//! typed deserialization of the rest succeeds and the semantic checks still
//! report everything else at once. The field lists mirror the config
//! structs; a test in `config_tests.rs` checks that they name exactly the
//! fields the structs serialize.

use super::Problems;
use serde_json::{Map, Value};

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
    (
        "snapshot_method",
        Kind::OneOf(&["auto", "watermark", "consistent_snapshot"]),
    ),
    ("snapshot_signal_table", Kind::Str),
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

/// Reports (and removes) the unknown and ill-typed fields of a task config.
pub(super) fn check_fields(obj: &mut Map<String, Value>, out: &mut Problems) {
    walk(obj, TASK_FIELDS, "", out);
}

/// Every field path the lists know, dotted (`source.tls.mode`).
#[cfg(test)]
pub(super) fn known_paths() -> Vec<String> {
    fn collect(schema: &[(&str, Kind)], prefix: &str, out: &mut Vec<String>) {
        for (key, kind) in schema {
            let path = join(prefix, key);
            if let Kind::Object(fields) = kind {
                collect(fields, &path, out);
            }
            out.push(path);
        }
    }
    let mut out = Vec::new();
    collect(TASK_FIELDS, "", &mut out);
    out.sort();
    out
}

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
