//! Unit tests of the formats: one row of every column kind through each
//! format, compared with the format's reference rendering.

use super::*;
use crate::decode::table::types;
use crate::decode::Column;
use serde_json::{json, Value};

fn col(name: &str, type_code: u8, meta: u16) -> Column {
    let mut c = Column::new(0, type_code, meta);
    c.name = name.to_string();
    c
}

/// A table with one column of each kind, keyed by `id`.
fn table() -> Table {
    let mut cols = vec![
        col("id", types::LONG, 0),
        col("big", types::LONGLONG, 0),
        col("d", types::NEWDECIMAL, (10 << 8) | 2),
        col("f", types::FLOAT, 4),
        col("b1", types::BIT, 1),
        col("b12", types::BIT, (1 << 8) | 4),
        col("dt", types::DATE, 0),
        col("dtz", types::DATE, 0),
        col("ts3", types::DATETIME2, 3),
        col("ts6", types::DATETIME2, 6),
        col("tz", types::TIMESTAMP2, 2),
        col("tm", types::TIME2, 1),
        col("s", types::VARCHAR, 80),
        col("bin", types::VARCHAR, 8),
        col("j", types::JSON, 4),
        col("st", types::SET, 1),
        col("n", types::SHORT, 0),
        col("y", types::YEAR, 0),
    ];
    cols[0].nullable = false;
    cols[1].unsigned = true;
    cols[7].nullable = false;
    cols[12].charset = Some(45);
    cols[13].charset = Some(63);
    cols[15].set_values = vec!["a".into(), "b".into(), "c".into()];
    Table {
        table_id: 7,
        database: "shop".into(),
        name: "t".into(),
        columns: cols,
        primary_key: vec![0],
        has_names: true,
    }
}

const BEFORE: &str = r#"{"id":7,"big":18446744073709551615,"d":"12.50","f":1.5,"b1":1,"b12":2049,"dt":"2024-02-29","dtz":"0000-00-00","ts3":"2024-01-02T03:04:05.120","ts6":"1969-12-31T23:59:59.999999","tz":"2024-01-02T03:04:05.50Z","tm":"-838:59:59.0","s":"h\u00e9\"","bin":"AP9h","j":{"a": [1, 2]},"st":"a,c","n":null,"y":0}"#;
const AFTER: &str = r#"{"id":7,"big":1,"d":"12.50","f":1.5,"b1":0,"b12":2049,"dt":"2024-02-29","dtz":"0000-00-00","ts3":"2024-01-02T03:04:05.120","ts6":"1969-12-31T23:59:59.999999","tz":"2024-01-02T03:04:05.50Z","tm":"12:00:00.5","s":"x","bin":"AP9h","j":{"a": [1, 2]},"st":"","n":3,"y":2155}"#;

fn fmt(format: MessageFormat, tombstones: bool, schemas: bool) -> TaskFormat {
    TaskFormat {
        format,
        task: "orders".into(),
        tombstones,
        schemas,
    }
}

fn change(
    kind: ChangeType,
    before: Option<&'static str>,
    after: Option<&'static str>,
) -> RowChange<'static> {
    RowChange {
        kind,
        ts_ms: 1_732_300_000_123,
        server_id: 42,
        txn: Txn {
            file: "mysql-bin.000003",
            pos: 4711,
            gtid: Some("0-42-9"),
            json_position: br#"{"file":"mysql-bin.000003","pos":4711,"gtid":"0-42-9","row":"#,
        },
        row: 2,
        key: b"[7]",
        before: before.map(str::as_bytes),
        after: after.map(str::as_bytes),
        order: None,
        snapshot: SnapshotMark::Stream,
    }
}

fn render(f: &TaskFormat, r: &RowChange<'_>) -> (Value, Option<Value>) {
    let t = f.table(&table());
    let (mut out, mut key) = (Vec::new(), Vec::new());
    let k = t.row(&mut out, &mut key, r).unwrap();
    let key = match k {
        KeyOut::Row => Some(serde_json::from_slice(r.key).unwrap()),
        KeyOut::Written => Some(serde_json::from_slice(&key).unwrap()),
        KeyOut::Null => None,
    };
    (serde_json::from_slice(&out).unwrap(), key)
}

#[test]
fn json_is_the_design_shape_unchanged() {
    let f = fmt(MessageFormat::Json, false, false);
    let (v, key) = render(&f, &change(ChangeType::Insert, None, Some(AFTER)));
    assert_eq!(key, Some(json!([7])));
    assert_eq!(v["type"], "insert");
    assert_eq!(v["task"], "orders");
    assert_eq!(
        v["position"],
        json!({"file": "mysql-bin.000003", "pos": 4711, "gtid": "0-42-9", "row": 2})
    );
    assert_eq!(v["after"], serde_json::from_str::<Value>(AFTER).unwrap());
    let (v, _) = render(&f, &change(ChangeType::Read, None, Some(AFTER)));
    assert_eq!(v["type"], "read");
}

#[test]
fn debezium_renders_values_as_debezium_does() {
    let f = fmt(MessageFormat::Debezium, true, false);
    let (v, key) = render(&f, &change(ChangeType::Update, Some(BEFORE), Some(AFTER)));
    assert_eq!(key, Some(json!({"id": 7})));
    assert_eq!(v["op"], "u");
    let b = &v["before"];
    assert_eq!(b["big"], json!(-1), "bigint.unsigned.handling.mode=long");
    assert_eq!(b["d"], "12.50");
    assert_eq!(b["f"], json!(1.5));
    assert_eq!(b["b1"], json!(true));
    assert_eq!(v["after"]["b1"], json!(false));
    assert_eq!(b["b12"], "AQg=", "Bits: little-endian bytes");
    assert_eq!(b["dt"], json!(19_782));
    assert_eq!(b["dtz"], json!(0), "zero date of a NOT NULL column");
    assert_eq!(b["ts3"], json!(1_704_164_645_120i64));
    assert_eq!(b["ts6"], json!(-1));
    assert_eq!(b["tz"], "2024-01-02T03:04:05.50Z");
    assert_eq!(b["tm"], json!(-3_020_399_000_000i64));
    assert_eq!(v["after"]["tm"], json!(43_200_500_000i64));
    assert_eq!(b["s"], "hé\"");
    assert_eq!(b["bin"], "AP9h");
    assert_eq!(b["j"], r#"{"a": [1, 2]}"#, "JSON as its text");
    assert_eq!(b["st"], "a,c");
    assert_eq!(b["n"], Value::Null);
    assert_eq!(
        (b["y"].as_i64(), v["after"]["y"].as_i64()),
        (Some(1900), Some(2155)),
        "the zero year as Debezium's binlog client reads it"
    );
    let s = &v["source"];
    assert_eq!(
        (
            s["connector"].as_str(),
            s["name"].as_str(),
            s["db"].as_str(),
            s["table"].as_str()
        ),
        (Some("mysql"), Some("orders"), Some("shop"), Some("t"))
    );
    assert_eq!(s["snapshot"], "false");
    assert_eq!(
        (s["file"].as_str(), s["pos"].as_u64(), s["row"].as_u64()),
        (Some("mysql-bin.000003"), Some(4711), Some(2))
    );
    assert_eq!(
        (s["server_id"].as_u64(), s["gtid"].as_str()),
        (Some(42), Some("0-42-9"))
    );
    assert_eq!(s["ts_ms"], json!(1_732_300_000_123i64));
    assert!(v["ts_ms"].as_i64().unwrap() > 1_732_300_000_123);
    assert_eq!(v["transaction"], Value::Null);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "before",
            "after",
            "source",
            "transaction",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns"
        ]
    );

    let (v, _) = render(&f, &change(ChangeType::Insert, None, Some(AFTER)));
    assert_eq!((v["op"].as_str(), v["before"].is_null()), (Some("c"), true));
    let (v, key) = render(&f, &change(ChangeType::Delete, Some(BEFORE), None));
    assert_eq!((v["op"].as_str(), v["after"].is_null()), (Some("d"), true));
    assert_eq!(
        key,
        Some(json!({"id": 7})),
        "the delete's key comes from before"
    );
    let (v, _) = render(&f, &change(ChangeType::Read, None, Some(AFTER)));
    assert_eq!(
        (v["op"].as_str(), v["source"]["snapshot"].as_str()),
        (Some("r"), Some("true"))
    );
}

#[test]
fn debezium_schemas_wrap_key_and_value() {
    let f = fmt(MessageFormat::Debezium, false, true);
    let (v, key) = render(&f, &change(ChangeType::Insert, None, Some(AFTER)));
    assert_eq!(v["payload"]["op"], "c");
    assert_eq!(v["schema"]["name"], "orders.shop.t.Envelope");
    let fields = &v["schema"]["fields"][1]["fields"];
    let by_name = |n: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("dt")["name"], "io.debezium.time.Date");
    assert_eq!(by_name("ts6")["name"], "io.debezium.time.MicroTimestamp");
    assert_eq!(by_name("ts3")["name"], "io.debezium.time.Timestamp");
    assert_eq!(by_name("tm")["name"], "io.debezium.time.MicroTime");
    assert_eq!(by_name("st")["parameters"]["allowed"], "a,b,c");
    assert_eq!(by_name("b12")["parameters"]["length"], "12");
    assert_eq!(by_name("id")["optional"], json!(false));
    let key = key.unwrap();
    assert_eq!(key["payload"], json!({"id": 7}));
    assert_eq!(key["schema"]["fields"][0]["type"], "int32");
}

#[test]
fn debezium_table_without_key_has_a_null_key() {
    let f = fmt(MessageFormat::Debezium, false, false);
    let mut t = table();
    t.primary_key.clear();
    let (mut out, mut key) = (Vec::new(), Vec::new());
    let k = f
        .table(&t)
        .row(
            &mut out,
            &mut key,
            &change(ChangeType::Insert, None, Some(AFTER)),
        )
        .unwrap();
    assert_eq!(k, KeyOut::Null);
}

#[test]
fn canal_flat_message() {
    let f = fmt(MessageFormat::Canal, false, false);
    let (v, key) = render(&f, &change(ChangeType::Update, Some(BEFORE), Some(AFTER)));
    assert_eq!(key, Some(json!([7])));
    assert_eq!(v["type"], "UPDATE");
    assert_eq!(v["isDdl"], json!(false));
    assert_eq!(v["pkNames"], json!(["id"]));
    assert_eq!(
        (v["database"].as_str(), v["table"].as_str()),
        (Some("shop"), Some("t"))
    );
    assert_eq!(v["es"], json!(1_732_300_000_123i64));
    let d = &v["data"][0];
    assert_eq!(d["id"], "7");
    assert_eq!(d["big"], "1");
    assert_eq!(d["d"], "12.50");
    assert_eq!(d["f"], "1.5");
    assert_eq!(d["ts3"], "2024-01-02 03:04:05.120");
    assert_eq!(d["tz"], "2024-01-02 03:04:05.50");
    assert_eq!(d["bin"], "\u{0}\u{ff}a", "binary as ISO-8859-1");
    assert_eq!(d["j"], r#"{"a": [1, 2]}"#);
    assert_eq!(d["n"], "3");
    // old: only the changed columns, with their old values
    assert_eq!(
        v["old"],
        json!([{"big": "18446744073709551615", "b1": "1", "tm": "-838:59:59.0", "s": "hé\"", "st": "a,c", "n": null, "y": "0"}])
    );
    assert_eq!(v["sqlType"]["id"], json!(4));
    assert_eq!(v["sqlType"]["big"], json!(3), "BIGINT UNSIGNED is DECIMAL");
    assert_eq!(v["mysqlType"]["d"], "decimal(10,2)");
    assert_eq!(v["mysqlType"]["big"], "bigint unsigned");
    assert_eq!(v["id"], json!(4711));
    let (v, _) = render(&f, &change(ChangeType::Delete, Some(BEFORE), None));
    assert_eq!(
        (
            v["type"].as_str(),
            v["data"][0]["s"].as_str(),
            v["old"].is_null()
        ),
        (Some("DELETE"), Some("hé\""), true)
    );
    let (v, _) = render(&f, &change(ChangeType::Read, None, Some(AFTER)));
    assert_eq!(v["type"], "INSERT");
}

#[test]
fn maxwell_json() {
    let f = fmt(MessageFormat::Maxwell, false, false);
    let (v, key) = render(&f, &change(ChangeType::Update, Some(BEFORE), Some(AFTER)));
    assert_eq!(
        key,
        Some(json!({"database": "shop", "table": "t", "pk.id": 7}))
    );
    assert_eq!(v["type"], "update");
    assert_eq!(v["ts"], json!(1_732_300_000i64));
    assert_eq!(v["position"], "mysql-bin.000003:4711");
    assert_eq!(v["xid"], json!(4711));
    assert_eq!(v["primary_key"], json!([7]));
    assert_eq!(v["primary_key_columns"], json!(["id"]));
    let d = &v["data"];
    assert_eq!(d["d"], json!(12.5));
    let (mut out, mut k) = (Vec::new(), Vec::new());
    f.table(&table())
        .row(
            &mut out,
            &mut k,
            &change(ChangeType::Insert, None, Some(AFTER)),
        )
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\"d\":12.50,"),
        "DECIMAL as a number of its scale: {text}"
    );
    assert_eq!(d["b1"], json!(false));
    assert_eq!(d["ts6"], "1969-12-31 23:59:59.999999");
    assert_eq!(d["tz"], "2024-01-02 03:04:05.50");
    assert_eq!(d["st"], json!([]));
    assert_eq!(d["j"], json!({"a": [1, 2]}));
    assert_eq!(d["bin"], "AP9h");
    assert_eq!(
        v["old"],
        json!({"big": 18446744073709551615u64, "b1": true, "tm": "-838:59:59.0", "s": "hé\"", "st": ["a", "c"], "n": null, "y": 0})
    );
    let (v, _) = render(&f, &change(ChangeType::Delete, Some(BEFORE), None));
    assert_eq!(
        (v["type"].as_str(), v["data"]["st"].clone(), v.get("old")),
        (Some("delete"), json!(["a", "c"]), None)
    );
    let (v, _) = render(&f, &change(ChangeType::Read, None, Some(AFTER)));
    assert_eq!(v["type"], "bootstrap-insert");
}

#[test]
fn ddl_per_format() {
    use crate::source::schema::{ColumnDef, TableDef};
    let def = TableDef {
        charset: Some("utf8mb4".into()),
        columns: vec![
            ColumnDef {
                name: "id".into(),
                data_type: "int".into(),
                column_type: "int(10) unsigned".into(),
                length: Some(10),
                auto_increment: true,
                ..ColumnDef::default()
            },
            ColumnDef {
                name: "c".into(),
                data_type: "enum".into(),
                column_type: "enum('a','b')".into(),
                nullable: true,
                charset: Some("utf8mb4".into()),
                ..ColumnDef::default()
            },
        ],
        primary_key: vec!["id".into()],
    };
    let d = DdlChange {
        database: "shop",
        table: "t",
        sql: "ALTER TABLE t ADD c INT",
        ts_ms: 5_000,
        server_id: 1,
        txn: change(ChangeType::Ddl, None, None).txn,
        row: 0,
        def: Some(&def),
    };
    let run = |f: MessageFormat, schemas: bool| {
        let (mut out, mut key) = (Vec::new(), Vec::new());
        fmt(f, false, schemas).ddl(&mut out, &mut key, &d);
        (
            serde_json::from_slice::<Value>(&out).unwrap(),
            serde_json::from_slice::<Value>(&key).unwrap(),
        )
    };
    let (v, k) = run(MessageFormat::Json, false);
    assert_eq!(
        (v["type"].as_str(), v["sql"].as_str(), k),
        (Some("ddl"), Some(d.sql), json!(["shop", "t"]))
    );
    let (v, k) = run(MessageFormat::Debezium, false);
    assert_eq!(
        (
            v["ddl"].as_str(),
            v["databaseName"].as_str(),
            v["source"]["table"].as_str()
        ),
        (Some(d.sql), Some("shop"), Some("t"))
    );
    assert_eq!(k, json!({"databaseName": "shop"}));
    let change = &v["tableChanges"][0];
    assert_eq!(change["type"], "ALTER");
    assert_eq!(change["id"], "\"shop\".\"t\"");
    let t = &change["table"];
    assert_eq!(t["primaryKeyColumnNames"], json!(["id"]));
    assert_eq!(t["defaultCharsetName"], "utf8mb4");
    let id = &t["columns"][0];
    assert_eq!(
        (
            &id["typeName"],
            &id["jdbcType"],
            &id["position"],
            &id["optional"],
            &id["autoIncremented"]
        ),
        (
            &json!("INT UNSIGNED"),
            &json!(-5),
            &json!(1),
            &json!(false),
            &json!(true)
        )
    );
    assert_eq!(t["columns"][1]["enumValues"], json!(["a", "b"]));
    let (v, k) = run(MessageFormat::Debezium, true);
    // the schema describes the payload's tableChanges
    let fields = &v["schema"]["fields"][5]["items"]["fields"][2]["fields"][2]["items"]["fields"];
    let names: Vec<&str> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    let payload_names: Vec<String> = v["payload"]["tableChanges"][0]["table"]["columns"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        names, payload_names,
        "column fields of schema and payload, in order"
    );
    assert_eq!(
        (v["payload"]["ddl"].as_str(), k["payload"].clone()),
        (Some(d.sql), json!({"databaseName": "shop"}))
    );
    let (v, _) = run(MessageFormat::Canal, false);
    assert_eq!(
        (v["isDdl"].clone(), v["type"].as_str(), v["sql"].as_str()),
        (json!(true), Some("ALTER"), Some(d.sql))
    );
    let (v, k) = run(MessageFormat::Maxwell, false);
    assert_eq!(
        (v["type"].as_str(), v["sql"].as_str()),
        (Some("table-alter"), Some(d.sql))
    );
    assert_eq!(k, json!({"database": "shop", "table": "t"}));
    assert_eq!(
        v["def"],
        json!({"database": "shop", "charset": "utf8mb4", "table": "t", "primary-key": ["id"],
               "columns": [{"type": "int", "name": "id", "signed": false},
                           {"type": "enum", "name": "c", "charset": "utf8mb4",
                            "enum-values": ["a", "b"]}]})
    );
    assert_eq!(
        (v["ts"].as_i64(), v["position"].as_str()),
        (Some(5_000), Some("mysql-bin.000003:4711"))
    );
    // a drop carries no definition; a statement without one neither
    let drop = DdlChange {
        sql: "DROP TABLE t",
        ..d
    };
    let (mut out, mut key) = (Vec::new(), Vec::new());
    fmt(MessageFormat::Maxwell, false, false).ddl(&mut out, &mut key, &drop);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["type"].as_str(), v.get("def")),
        (Some("table-drop"), None)
    );
    fmt(MessageFormat::Debezium, false, false).ddl(&mut out, &mut key, &drop);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["tableChanges"],
        json!([{"type": "DROP", "id": "\"shop\".\"t\"", "table": null}])
    );
    let none = DdlChange { def: None, ..d };
    fmt(MessageFormat::Debezium, false, false).ddl(&mut out, &mut key, &none);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["tableChanges"], json!([]));
}

#[test]
fn bad_images_are_errors_naming_the_problem() {
    for f in [
        MessageFormat::Debezium,
        MessageFormat::Canal,
        MessageFormat::Maxwell,
    ] {
        let t = fmt(f, false, false).table(&table());
        let (mut out, mut key) = (Vec::new(), Vec::new());
        let short = change(ChangeType::Insert, None, Some(r#"{"id":1}"#));
        let e = t.row(&mut out, &mut key, &short).unwrap_err();
        assert!(
            matches!(e, FormatError::Columns { got: 1, want: 18 }),
            "{f:?}: {e}"
        );
        let broken = change(ChangeType::Insert, None, Some(r#"{"id":1"#));
        assert!(matches!(
            t.row(&mut out, &mut key, &broken),
            Err(FormatError::Image(_))
        ));
    }
    let t = fmt(MessageFormat::Debezium, false, false).table(&table());
    let bad = AFTER.replace("\"2024-02-29\"", "\"2024-2x-29\"");
    let bad: &'static str = Box::leak(bad.into_boxed_str());
    let e = t
        .row(
            &mut Vec::new(),
            &mut Vec::new(),
            &change(ChangeType::Insert, None, Some(bad)),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("`dt`") && e.contains("2024-2x-29"), "{e}");
}

#[test]
fn debezium_splits_an_update_of_the_key_and_the_others_do_not() {
    let moved = AFTER.replacen("\"id\":7", "\"id\":8", 1);
    let (b, a) = (Some(BEFORE.as_bytes()), Some(moved.as_bytes()));
    let t = fmt(MessageFormat::Debezium, false, false).table(&table());
    assert!(t.splits_key_change(b, a).unwrap());
    assert!(!t.splits_key_change(b, Some(AFTER.as_bytes())).unwrap());
    for f in [
        MessageFormat::Json,
        MessageFormat::Canal,
        MessageFormat::Maxwell,
    ] {
        assert!(!fmt(f, false, false)
            .table(&table())
            .splits_key_change(b, a)
            .unwrap());
    }
}

#[test]
fn debezium_rows_name_their_transaction_when_asked() {
    let f = fmt(MessageFormat::Debezium, false, false);
    let mut r = change(ChangeType::Insert, None, Some(AFTER));
    r.order = Some(transaction::TxnOrder {
        id: "0-42-9",
        total_order: 3,
        data_collection_order: 2,
    });
    let (v, _) = render(&f, &r);
    assert_eq!(
        v["transaction"],
        json!({"id": "0-42-9", "total_order": 3, "data_collection_order": 2})
    );
}

#[test]
fn snapshot_marks_follow_debeziums_precedence() {
    use SnapshotMark as M;
    // one table of one row: last wins over first
    assert_eq!(M::of(true, true, true, true), M::Last);
    assert_eq!(M::of(true, false, true, true), M::First);
    assert_eq!(M::of(false, false, true, true), M::LastInTable);
    assert_eq!(M::of(true, false, true, false), M::First);
    assert_eq!(M::of(false, false, true, false), M::FirstInTable);
    assert_eq!(M::of(false, true, false, true), M::Last);
    assert_eq!(M::of(false, false, false, false), M::Row);
    let f = fmt(MessageFormat::Debezium, false, false);
    for (mark, want) in [
        (M::Stream, "true"),
        (M::Row, "true"),
        (M::First, "first"),
        (M::FirstInTable, "first_in_data_collection"),
        (M::LastInTable, "last_in_data_collection"),
        (M::Last, "last"),
    ] {
        let r = RowChange {
            snapshot: mark,
            ..change(ChangeType::Read, None, Some(AFTER))
        };
        let (v, _) = render(&f, &r);
        assert_eq!(v["source"]["snapshot"], want, "{mark:?}");
        assert_eq!(v["op"], "r");
    }
    // a stream row is never marked
    let r = RowChange {
        snapshot: M::Last,
        ..change(ChangeType::Insert, None, Some(AFTER))
    };
    assert_eq!(render(&f, &r).0["source"]["snapshot"], "false");
}

#[test]
fn maxwell_commit_mark_follows_xid() {
    let f = fmt(MessageFormat::Maxwell, false, false);
    let t = f.table(&Table {
        name: "a\",\"position\":\"x".into(),
        ..table()
    });
    let (mut out, mut key) = (Vec::new(), Vec::new());
    t.row(
        &mut out,
        &mut key,
        &change(ChangeType::Insert, None, Some(AFTER)),
    )
    .unwrap();
    maxwell::mark_commit(&mut out);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains(r#""xid":4711,"commit":true,"position":"#),
        "{text}"
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["commit"], true);
    assert_eq!(v["table"], "a\",\"position\":\"x");
    assert_eq!(v["position"], "mysql-bin.000003:4711");
}

#[test]
fn debezium_reads_render_as_its_jdbc_snapshot() {
    let f = fmt(MessageFormat::Debezium, false, false);
    let row = |kind| {
        let after = r#"{"id":7,"big":1,"d":"12.50","f":16777216,"b1":0,"b12":2049,"dt":"2024-02-29","dtz":"0000-00-00","ts3":"2024-01-02T03:04:05.120","ts6":"1969-12-31T23:59:59.999999","tz":"2024-01-02T03:04:05.00Z","tm":"12:00:00.5","s":"x","bin":"AP9h","j":{"a": [1, 2]},"st":"","n":3,"y":0}"#;
        render(&f, &change(kind, None, Some(after))).0["after"].clone()
    };
    let (stream, read) = (row(ChangeType::Insert), row(ChangeType::Read));
    assert_eq!(
        (&stream["f"], &stream["tz"], &stream["y"]),
        (
            &json!(16777216),
            &json!("2024-01-02T03:04:05.00Z"),
            &json!(1900)
        )
    );
    assert_eq!(
        (&read["f"], &read["tz"], &read["y"]),
        (
            &json!(16777200),
            &json!("2024-01-02T03:04:05Z"),
            &json!(2000)
        )
    );
    // everything else as the stream
    for c in ["id", "d", "dt", "ts3", "ts6", "tm", "s", "bin", "j"] {
        assert_eq!(stream[c], read[c], "{c}");
    }
}
