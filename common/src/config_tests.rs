//! Unit tests of the task config: parsing, validation, redaction.

use super::*;
use serde_json::json;

fn good() -> Value {
    json!({"name": "orders", "group": null,
           "source": {"host": "127.0.0.1", "port": 3306, "user": "repl", "password": "pw",
                      "server_id": 4242, "include": ["shop\\..*"], "exclude": [],
                      "start": "earliest"},
           "sink": {"brokers": "127.0.0.1:9092", "topic": "{database}.{table}",
                    "format": "json", "properties": {}}})
}

fn problems(v: Value) -> Vec<String> {
    let e = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    e.0.iter().map(|p| p.field.clone()).collect()
}

#[test]
fn parses_the_design_example() {
    let cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    assert_eq!(cfg.name, "orders");
    assert_eq!(cfg.source.port, 3306);
    assert_eq!(cfg.source.start, StartPosition::Named(NamedStart::Earliest));
    assert_eq!(cfg.sink.partitions, DEFAULT_PARTITIONS);
    assert_eq!(cfg.redundancy, DEFAULT_REDUNDANCY);
    // typed round trip
    let again: TaskConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn start_forms() {
    for (start, want) in [
        (json!("current"), StartPosition::Named(NamedStart::Current)),
        (
            json!({"file": "mysql-bin.000001", "pos": 4}),
            StartPosition::File {
                file: "mysql-bin.000001".into(),
                pos: 4,
            },
        ),
        (
            json!({"gtid": "0-1-42"}),
            StartPosition::Gtid {
                gtid: "0-1-42".into(),
            },
        ),
    ] {
        let mut v = good();
        v["source"]["start"] = start;
        assert_eq!(
            TaskConfig::parse(v.to_string().as_bytes())
                .unwrap()
                .source
                .start,
            want
        );
    }
    let mut v = good();
    v["source"].as_object_mut().unwrap().remove("start");
    let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(
        cfg.source.start.normalized(),
        StartPosition::Named(NamedStart::Current)
    );
    for bad in [
        json!("latest"),
        json!({"file": "x"}),
        json!({"gtid": "zz"}),
        json!(3),
    ] {
        let mut v = good();
        v["source"]["start"] = bad.clone();
        assert_eq!(problems(v), vec!["source.start"], "{bad}");
    }
}

#[test]
fn reports_all_four_problems_at_once() {
    let mut v = good();
    v["colour"] = json!("blue");
    v["name"] = json!("../x");
    v["source"].as_object_mut().unwrap().remove("host");
    v["source"]["port"] = json!(70000);
    let e = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields.len(), 4, "{e}");
    for f in ["colour", "name", "source.host", "source.port"] {
        assert!(fields.contains(&f), "missing {f} in {e}");
    }
    let msg = e.to_string();
    assert!(msg.contains("4 problems"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
    assert!(msg.contains("70000 is out of range"), "{msg}");
    assert!(!msg.contains("pw"), "password leaked: {msg}");
}

#[test]
fn reports_nested_unknown_and_semantic_problems() {
    let mut v = good();
    v["sink"]["colour"] = json!(1);
    v["sink"]["format"] = json!("avro");
    v["sink"]["brokers"] = json!("");
    v["source"]["include"] = json!(["shop\\.(x"]);
    v["source"]["port"] = json!(0);
    v["source"]["password_env"] = json!("PW");
    v["sink"]["topic"] = json!("a/{table}");
    let mut got = problems(v);
    got.sort();
    assert_eq!(
        got,
        vec![
            "sink.brokers",
            "sink.colour",
            "sink.format",
            "sink.topic",
            "source.include[0]",
            "source.password",
            "source.port"
        ]
    );
}

#[test]
fn reports_bad_producer_properties_with_the_rest() {
    let mut v = good();
    v["sink"]["properties"] = json!({"acks": "1", "linger.ms": "soon"});
    v["source"]["port"] = json!(0);
    let mut got = problems(v);
    got.sort();
    assert_eq!(
        got,
        vec![
            "sink.properties.acks",
            "sink.properties.linger.ms",
            "source.port"
        ]
    );
}

#[test]
fn rejects_non_objects_and_bad_json() {
    assert!(TaskConfig::parse(b"{nope")
        .unwrap_err()
        .to_string()
        .contains("not valid JSON"));
    assert!(TaskConfig::parse(b"[]").is_err());
    assert!(TaskConfig::parse(b"{}").unwrap_err().0.len() >= 4);
    assert!(problems(json!({"name": "t", "source": 1, "sink": {}})).contains(&"source".to_string()));
}

#[test]
fn strict_serde_rejects_unknown_fields() {
    let mut v = good();
    v["extra"] = json!(1);
    assert!(serde_json::from_value::<TaskConfig>(v).is_err());
}

#[test]
fn replication_settings_are_checked() {
    let mut v = good();
    v["sink"]["replication_factor"] = json!(2);
    v["sink"]["min_insync_replicas"] = json!(3);
    let err = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("sink.min_insync_replicas"),
        "{err}"
    );
    v["sink"]["replication_factor"] = json!(0);
    let err = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("sink.replication_factor"), "{err}");
    v["sink"]["replication_factor"] = json!(3);
    v["sink"]["min_insync_replicas"] = json!(2);
    let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(cfg.sink.replication_factor, Some(3));
    let absent = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    assert_eq!(absent.sink.replication_factor, None);
    assert!(serde_json::to_value(&absent).unwrap()["sink"]
        .get("replication_factor")
        .is_none());
}

#[test]
fn redacts_the_password() {
    let cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    let r = cfg.redacted();
    assert_eq!(r["source"]["password"], "***");
    assert!(!format!("{cfg:?}").contains("\"pw\""));
    let mut v = good();
    v["sink"]["properties"] = json!({"security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "kafka-pw"});
    let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(cfg.redacted()["sink"]["properties"]["sasl.password"], "***");
    assert_eq!(cfg.redacted()["sink"]["properties"]["sasl.username"], "u");
    assert!(!format!("{cfg:?}").contains("kafka-pw"));
}

#[test]
fn resolves_password_from_env_and_file() {
    let mut cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    cfg.source.password = None;
    cfg.source.password_env = Some("REPLICATOR_TEST_PW_UNSET_XYZ".into());
    assert!(matches!(
        cfg.source.resolve_password(),
        Err(PasswordError::MissingEnv(_))
    ));
    let dir = std::env::temp_dir().join(format!("pwtest-{}", std::process::id()));
    std::fs::write(&dir, "s3cret\n").unwrap();
    cfg.source.password_env = None;
    cfg.source.password_file = Some(dir.display().to_string());
    assert_eq!(
        cfg.source.resolve_password().unwrap().unwrap().expose(),
        "s3cret"
    );
    std::fs::remove_file(&dir).ok();
}

/// The example configs the docs point to (`deploy/examples/*.json`) stay valid.
#[test]
fn deploy_examples_are_valid_task_configs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap();
            if let Err(e) = TaskConfig::parse(&bytes) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "expected the example configs in {}",
        dir.display()
    );
}

#[test]
fn source_hosts_list_replaces_host_and_port() {
    let mut v = good();
    v["source"].as_object_mut().unwrap().remove("host");
    v["source"]["hosts"] = json!(["db1:3306", "db2.example:3307", "[::1]:3308"]);
    let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(
        cfg.source.endpoints(),
        vec![
            ("db1".to_string(), 3306),
            ("db2.example".to_string(), 3307),
            ("::1".to_string(), 3308)
        ]
    );
    // one host: the classic form
    let cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    assert_eq!(
        cfg.source.endpoints(),
        vec![("127.0.0.1".to_string(), 3306)]
    );
}

#[test]
fn source_hosts_problems_are_all_reported() {
    let mut v = good();
    v["source"]["hosts"] = json!(["db1:3306", "nope", "db3:0", ":3306"]);
    assert_eq!(
        problems(v),
        vec![
            "source.hosts",
            "source.hosts[1]",
            "source.hosts[2]",
            "source.hosts[3]"
        ]
    );
    let mut v = good();
    v["source"].as_object_mut().unwrap().remove("host");
    v["source"]["hosts"] = json!([]);
    assert_eq!(problems(v), vec!["source.host"]);
    let mut v = good();
    v["source"]["hosts"] = json!("db1:3306");
    assert_eq!(problems(v), vec!["source.hosts"]);
}

#[test]
fn every_format_is_accepted_and_an_unknown_one_lists_the_valid_ones() {
    for f in MessageFormat::NAMES {
        let mut v = good();
        v["sink"]["format"] = json!(f);
        v["sink"]["tombstones"] = json!(true);
        v["sink"]["debezium"] = json!({"schemas": true});
        v["sink"]["transactions_topic"] = json!("shop.transactions");
        v["sink"]["heartbeat_ms"] = json!(1000);
        let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(cfg.sink.message_format().unwrap().as_str(), f);
        assert!(cfg.sink.tombstones && cfg.sink.debezium.schemas);
    }
    let mut v = good();
    v["sink"]["format"] = json!("avro");
    v["sink"]["transactions_topic"] = json!("tx.{table}");
    v["sink"]["heartbeat_ms"] = json!(5);
    v["sink"]["heartbeat_topic"] = json!("hb/x");
    v["sink"]["tombstones"] = json!("yes");
    v["sink"]["debezium"] = json!({"schemas": 1, "colour": 2});
    let err = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown format `avro`; valid formats: json, debezium, canal, maxwell"),
        "{msg}"
    );
    let mut got: Vec<String> = err.0.iter().map(|p| p.field.clone()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "sink.debezium.colour",
            "sink.debezium.schemas",
            "sink.format",
            "sink.heartbeat_ms",
            "sink.heartbeat_topic",
            "sink.tombstones",
            "sink.transactions_topic"
        ]
    );
    // the default stays `json`, and an unchanged config serializes unchanged
    let cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    assert_eq!(cfg.sink.message_format(), Ok(MessageFormat::Json));
    let back = serde_json::to_value(&cfg.sink).unwrap();
    assert!(back.get("tombstones").is_none() && back.get("debezium").is_none());
}

#[test]
fn source_tls_modes() {
    let mut v = good();
    v["source"]["tls"] = json!({"mode": "verify_ca", "ca_file": "/etc/ca.pem"});
    let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
    let tls = cfg.source.tls.unwrap();
    assert_eq!(tls.mode, SourceTlsMode::VerifyCa);
    assert_eq!(tls.ca_file.as_deref(), Some("/etc/ca.pem"));
    for mode in ["disabled", "required", "verify_identity"] {
        let mut v = good();
        v["source"]["tls"] = json!({ "mode": mode });
        assert!(
            TaskConfig::parse(v.to_string().as_bytes()).is_ok(),
            "{mode}"
        );
    }
    let mut v = good();
    v["source"]["tls"] = json!({"mode": "sometimes", "ca_file": "", "pin": 1});
    assert_eq!(
        problems(v),
        vec!["source.tls.mode", "source.tls.pin", "source.tls.ca_file"]
    );
}

#[test]
fn every_format_copies_existing_rows_by_default() {
    for format in ["json", "debezium", "canal", "maxwell"] {
        let mut v = good();
        v["sink"]["format"] = json!(format);
        let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(cfg.source.snapshot, SnapshotMode::Initial, "{format}");
        for mode in ["initial", "when_needed", "never"] {
            v["source"]["snapshot"] = json!(mode);
            let cfg = TaskConfig::parse(v.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{format} with {mode}: {e}"));
            assert_eq!(cfg.source.snapshot.as_str(), mode);
        }
    }
}

/// The lenient walker takes its field names from serde: they are exactly
/// the fields the structs serialize, and every check it adds (ranges, the
/// start position) names one of them.
#[test]
fn the_walker_knows_exactly_the_struct_fields() {
    let every_field = json!({
        "name": "t", "group": "g", "redundancy": 3,
        "source": {
            "host": "h", "port": 3307, "hosts": ["a:1"], "user": "u",
            "password": "p", "password_env": "E", "password_file": "/f",
            "server_id": 9, "include": ["d\\..*"], "exclude": ["x\\..*"],
            "start": "current", "snapshot": "when_needed", "snapshot_chunk_rows": 7,
            "snapshot_method": "watermark", "snapshot_signal_table": "ops.signal",
            "tls": {"mode": "verify_ca", "ca_file": "/ca.pem"}
        },
        "sink": {
            "brokers": "k:9092", "topic": "{table}", "format": "debezium",
            "tombstones": true, "debezium": {"schemas": true},
            "transactions_topic": "tx", "heartbeat_ms": 1000, "heartbeat_topic": "hb",
            "properties": {"linger.ms": "5"}, "partitions": 8,
            "replication_factor": 3, "min_insync_replicas": 2
        }
    });
    let cfg: TaskConfig = serde_json::from_value(every_field.clone()).unwrap();
    fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        let Value::Object(m) = v else { return };
        for (k, v) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            // maps of free keys and the start position are values, not fields
            if !matches!(k.as_str(), "properties" | "start") {
                paths(v, &path, out);
            }
            out.push(path);
        }
    }
    let mut serialized = Vec::new();
    paths(&serde_json::to_value(&cfg).unwrap(), "", &mut serialized);
    serialized.sort();
    let known = fields::known_paths();
    assert_eq!(serialized, known);
    for p in fields::checked_paths() {
        assert!(known.iter().any(|k| k == p), "check on unknown field {p}");
    }
    assert_eq!(
        fields::field_names::<SourceTls>(),
        ["mode", "ca_file"],
        "names as serde reads them"
    );
    // the full config passes the walker untouched
    let mut obj = every_field.as_object().unwrap().clone();
    let mut problems = Problems::default();
    fields::check_fields(&mut obj, &mut problems);
    let found: Vec<&ConfigProblem> = problems.0.iter().collect();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(Value::Object(obj), every_field);
}

/// Wrong types are reported with serde's own words, one per field, next to
/// the unknown ones.
#[test]
fn wrong_types_are_reported_per_field() {
    let mut v = good();
    v["source"]["include"] = json!([1]);
    v["source"]["snapshot"] = json!("sometimes");
    v["sink"]["tombstones"] = json!("yes");
    v["sink"]["properties"] = json!({"acks": 1});
    v["sink"]["debezium"] = json!({"schemas": 1, "colour": 2});
    v["source"]["port"] = json!("3306");
    let e = TaskConfig::parse(v.to_string().as_bytes()).unwrap_err();
    let mut got: Vec<&str> = e.0.iter().map(|p| p.field.as_str()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "sink.debezium.colour",
            "sink.debezium.schemas",
            "sink.properties",
            "sink.tombstones",
            "source.include",
            "source.port",
            "source.snapshot"
        ],
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("unknown variant `sometimes`"), "{msg}");
    assert!(msg.contains("sink.debezium.colour: unknown field"), "{msg}");
}

#[test]
fn snapshot_method_and_signal_table() {
    let cfg = TaskConfig::parse(good().to_string().as_bytes()).unwrap();
    assert_eq!(cfg.source.snapshot_method, SnapshotMethod::Auto);
    assert_eq!(
        cfg.source.snapshot_signal(),
        Some(("mysql_replicator", "snapshot_signal"))
    );
    assert_eq!(
        cfg.source.snapshot_signal_table,
        DEFAULT_SNAPSHOT_SIGNAL_TABLE
    );
    for method in ["auto", "watermark", "consistent_snapshot"] {
        let mut v = good();
        v["source"]["snapshot_method"] = json!(method);
        v["source"]["snapshot_signal_table"] = json!("ops.sig");
        let cfg = TaskConfig::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(cfg.source.snapshot_method.as_str(), method);
        assert_eq!(cfg.source.snapshot_signal(), Some(("ops", "sig")));
    }
    // bad values are reported with their field, all at once
    let mut v = good();
    v["source"]["snapshot_method"] = json!("locks");
    v["source"]["snapshot_signal_table"] = json!("nodot");
    let e = TaskConfig::parse(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("source.snapshot_method"), "{e}");
    assert!(e.contains("source.snapshot_signal_table"), "{e}");
    for bad in ["a.b.c", ".t", "d.", " d.t", ""] {
        let mut v = good();
        v["source"]["snapshot_signal_table"] = json!(bad);
        let e = TaskConfig::parse(v.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not DATABASE.TABLE"), "{bad}: {e}");
    }
}
