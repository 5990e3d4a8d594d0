//! Decoding of events captured from a real MariaDB 10.11 (bytes in
//! `fixture_data`). Expected values were checked against `SELECT` output of
//! the same server. The data was made with:
//!
//! ```sql
//! CREATE TABLE t_all (
//!   id INT NOT NULL PRIMARY KEY,
//!   ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
//!   mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
//!   bi BIGINT, biu BIGINT UNSIGNED, y YEAR,
//!   d1 DECIMAL(10,2), d2 DECIMAL(65,30), d3 DECIMAL(5,0), d4 DECIMAL(20,10) UNSIGNED,
//!   f FLOAT, dbl DOUBLE, b1 BIT(1), b13 BIT(13), b64 BIT(64),
//!   dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
//!   ts TIMESTAMP NULL, ts2 TIMESTAMP(2) NULL, tm TIME, tm1 TIME(1), tm6 TIME(6),
//!   c CHAR(10), bn BINARY(4), vc VARCHAR(300), vb VARBINARY(20),
//!   tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, tb TINYBLOB, bl BLOB, lb LONGBLOB,
//!   e ENUM('a','b','c'), s SET('x','y','z'), g GEOMETRY, p POINT, j JSON
//! ) DEFAULT CHARSET=utf8mb4;
//! CREATE TABLE t_cs (
//!   id BIGINT UNSIGNED NOT NULL, k VARCHAR(10) NOT NULL,
//!   l1 VARCHAR(50) CHARACTER SET latin1, u1 VARCHAR(50) CHARACTER SET utf8mb4,
//!   c1 CHAR(5) CHARACTER SET latin1, cu CHAR(5) CHARACTER SET utf8mb3,
//!   ca CHAR(200) CHARACTER SET ascii, cl CHAR(255) CHARACTER SET utf8mb4,
//!   g GEOMETRY, tl TEXT CHARACTER SET latin1,
//!   e ENUM('ä','ö','ü') CHARACTER SET latin1, s SET('α','β','γ') CHARACTER SET utf8mb4,
//!   e2 ENUM('x','y') CHARACTER SET ascii, u16 VARCHAR(20) CHARACTER SET utf16,
//!   PRIMARY KEY (k, id)
//! ) DEFAULT CHARSET=utf8mb3;
//! CREATE TABLE t_nopk (a INT, b VARCHAR(10)) DEFAULT CHARSET=utf8mb4;
//! -- with time_zone='+00:00', sql_mode='':
//! INSERT INTO t_all VALUES (1, <maxima>), (2, <minima>); -- see the expected rows
//! INSERT INTO t_all (id) VALUES (3);
//! INSERT INTO t_all (id, y, d1, d3, dt, dtm, dtm3, ts, ts2, tm, e, s)
//!   VALUES (4, 0, 0, 0, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
//!           '0000-00-00 00:00:00', 0, '00:00:00', 0, 0);
//! INSERT INTO t_all (id, dt, dtm, d1, d2)
//!   VALUES (5, '2024-00-15', '2024-02-00 10:00:00', -12.00, 0.000000000000000000000000000001);
//! UPDATE t_all SET i = i + 1, vc = 'updated' WHERE id = 1;
//! DELETE FROM t_all WHERE id = 2;
//! INSERT INTO t_cs VALUES (1, 'k1', _latin1 x'636166e9', 'café ✓', 'äö', 'ü', 'abc', 'x',
//!   ST_GeomFromText('POINT(5 6)'), _latin1 x'dc626572208075726f', 'ö', 'α,γ', 'y', 'hé');
//! INSERT INTO t_cs VALUES (18446744073709551615, 'k"2', NULL, ...);
//! INSERT INTO t_nopk VALUES (1, 'one'), (NULL, 'two');
//! UPDATE t_nopk SET b = 'uno' WHERE a = 1;
//! DELETE FROM t_nopk WHERE a IS NULL;
//! CREATE TABLE rnd (id INT PRIMARY KEY, d1 DECIMAL(12,4), d2 DECIMAL(30,15),
//!   d3 DECIMAL(9,9), d4 DECIMAL(18,0), f FLOAT, g DOUBLE, t0 TIME, t1 TIME(1),
//!   t2 TIME(2), t3 TIME(3), t4 TIME(4), t5 TIME(5), t6 TIME(6), dt2 DATETIME(2),
//!   dt4 DATETIME(4), dt5 DATETIME(5), ts4 TIMESTAMP(4) NULL, i24 MEDIUMINT, bt BIT(37));
//! -- 300 rows of random values, signs and fractions (12 kept as fixtures);
//! -- all 300 matched SELECT output when this was written.
//! ```

use std::collections::HashMap;

use serde_json::{json, Value};

use super::fixture_data::{MARIADB_DDL, MARIADB_DML, MARIADB_RANDOM, MARIADB_STREAM};
use super::*;

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits a whole event from a binlog file into header and body, checking
/// its CRC32.
fn split(event: &[u8]) -> (EventHeader, &[u8]) {
    let header = EventHeader::parse(event).unwrap();
    assert_eq!(header.event_size as usize, event.len());
    let (data, crc) = event.split_at(event.len() - 4);
    // The server computes the FDE's CRC with LOG_EVENT_BINLOG_IN_USE_F
    // clear; the file has it set while the binlog is open.
    let mut copy = data.to_vec();
    if header.type_code == 15 {
        copy[17] &= !1;
    }
    assert_eq!(
        crc32fast::hash(&copy).to_le_bytes(),
        crc,
        "crc of {header:?}"
    );
    (header, &data[EventHeader::LEN..])
}

/// One decoded row.
#[derive(Debug)]
struct Row {
    kind: RowKind,
    table: String,
    key: Value,
    before: Value,
    after: Value,
    after_text: String,
}

/// Decodes whole events in order: control events as `Debug` text, rows
/// decoded (and checked to be valid JSON).
fn replay(
    events: &[&str],
    prepare: impl Fn(&mut Table),
) -> (Vec<String>, Vec<Row>, HashMap<u64, Table>) {
    let mut tables: HashMap<u64, Table> = HashMap::new();
    let mut control = Vec::new();
    let mut rows_out = Vec::new();
    let mut out = RowOut::new();
    let parse = |b: &[u8]| -> Value {
        if b.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(b)
                .unwrap_or_else(|e| panic!("{e}: {:?}", std::str::from_utf8(b)))
        }
    };
    for hex in events {
        let bytes = unhex(hex);
        let (header, body) = split(&bytes);
        match parse_event(&header, body, Flavor::MariaDb).unwrap() {
            Event::TableMap(mut t) => {
                prepare(&mut t);
                tables.insert(t.table_id, t);
            }
            Event::Rows(mut rows) => {
                let table = &tables[&rows.table_id];
                while rows.next_row(table, &mut out).unwrap() {
                    assert_eq!(out.has_before, !out.before.is_empty());
                    assert_eq!(out.has_after, !out.after.is_empty());
                    rows_out.push(Row {
                        kind: rows.kind,
                        table: table.name.clone(),
                        key: parse(&out.key),
                        before: parse(&out.before),
                        after: parse(&out.after),
                        after_text: String::from_utf8(out.after.clone()).unwrap(),
                    });
                }
                assert!(rows.is_empty());
            }
            other => control.push(format!("{other:?}")),
        }
    }
    (control, rows_out, tables)
}

fn row1() -> Value {
    let mut v: Value = serde_json::from_str(
        r#"{"id":1,"ti":127,"tiu":255,"si":32767,"siu":65535,"mi":8388607,"miu":16777215,
        "i":2147483647,"iu":4294967295,"bi":9223372036854775807,"biu":18446744073709551615,
        "y":2155,"d1":"12345678.90",
        "d2":"12345678901234567890123456789012345.123456789012345678901234567890",
        "d3":"99999","d4":"1234567890.0123456789","f":1.1,"dbl":3.141592653589793,
        "b1":1,"b13":5461,"b64":18446744073709551615,
        "dt":"2024-02-29","dtm":"9999-12-31T23:59:59","dtm3":"2024-01-02T03:04:05.120",
        "dtm6":"2024-01-02T03:04:05.000001","ts":"2038-01-19T03:14:07Z",
        "ts2":"2024-06-01T12:00:00.50Z",
        "tm":"838:59:59","tm1":"12:00:00.5","tm6":"-01:02:03.000004",
        "c":"hello","bn":"YWIAAA==","vc":"","vb":"AP8Q",
        "tt":"tiny \"quoted\"\n","tx":"text \\ back","mt":"medium ✓","lt":"long 😀",
        "tb":"3q2+7w==","bl":"","lb":"AQI=","e":"b","s":"x,z",
        "g":"AQEAAAAAAAAAAADwPwAAAAAAAABA","p":"AQEAAAAAAAAAAAAIQAAAAAAAABBA",
        "j":"{\"a\": [1, 2.5, \"x\"], \"b\": null}"}"#,
    )
    .unwrap();
    // g, p: POINT(1 2) and POINT(3 4) as WKB.
    v["vc"] = json!("v".repeat(300));
    v
}

fn row2() -> Value {
    serde_json::from_str(
        r#"{"id":2,"ti":-128,"tiu":0,"si":-32768,"siu":0,"mi":-8388608,"miu":0,
        "i":-2147483648,"iu":0,"bi":-9223372036854775808,"biu":0,"y":1901,
        "d1":"-0.50","d2":"-12345678901234567890123456789012345.123456789012345678901234567890",
        "d3":"-99999","d4":"0.0000000001","f":-1.5e-10,"dbl":-1.7976931348623157e308,
        "b1":0,"b13":0,"b64":0,"dt":"1000-01-01","dtm":"1000-01-01T00:00:00",
        "dtm3":"1000-01-01T00:00:00.999","dtm6":"1970-01-01T00:00:00.000000",
        "ts":"1970-01-01T00:00:01Z","ts2":"1999-12-31T23:59:59.99Z",
        "tm":"-838:59:59","tm1":"-00:00:00.5","tm6":"00:00:00.000000",
        "c":"","bn":"AAAAAA==","vc":"","vb":"","tt":"","tx":"","mt":"","lt":"",
        "tb":"","bl":"","lb":"","e":"a","s":"",
        "g":"AQIAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPA/AAAAAAAA8D8=",
        "p":"AQEAAAAAAAAAAAAAAAAAAAAAAAAA","j":"[]"}"#,
    )
    .unwrap()
    // g, p: LINESTRING(0 0,1 1) and POINT(0 0).
}

/// A row of `t_all` where only `set` columns are non-null.
fn sparse(set: Value) -> Value {
    let mut all = row1();
    for v in all.as_object_mut().unwrap().values_mut() {
        *v = Value::Null;
    }
    for (k, v) in set.as_object().unwrap() {
        all[k] = v.clone();
    }
    all
}

#[test]
fn every_type_of_t_all() {
    let (_, rows, _) = replay(MARIADB_DML, |_| {});
    let all: Vec<&Row> = rows.iter().filter(|r| r.table == "t_all").collect();
    assert_eq!(all.len(), 7);
    let (r1, r2) = (row1(), row2());

    assert_eq!(all[0].kind, RowKind::Insert);
    assert_eq!(all[0].key, json!([1]));
    assert_eq!(all[0].before, Value::Null);
    assert_eq!(all[0].after, r1);
    assert_eq!(all[1].after, r2);
    assert_eq!(all[2].after, sparse(json!({"id": 3})));
    assert_eq!(
        all[3].after,
        sparse(json!({"id":4,"y":0,"d1":"0.00","d3":"0","dt":"0000-00-00",
            "dtm":"0000-00-00T00:00:00","dtm3":"0000-00-00T00:00:00.000",
            "ts":"0000-00-00T00:00:00Z","ts2":"0000-00-00T00:00:00.00Z","tm":"00:00:00",
            "e":"","s":""}))
    );
    assert_eq!(
        all[4].after,
        sparse(
            json!({"id":5,"dt":"2024-00-15","dtm":"2024-02-00T10:00:00","d1":"-12.00",
            "d2":"0.000000000000000000000000000001"})
        )
    );

    // UPDATE ... WHERE id = 1 (i was already at its maximum).
    assert_eq!(all[5].kind, RowKind::Update);
    assert_eq!(all[5].before, r1);
    let mut r1_after = r1.clone();
    r1_after["vc"] = json!("updated");
    assert_eq!(all[5].after, r1_after);
    assert_eq!(all[5].key, json!([1]));

    assert_eq!(all[6].kind, RowKind::Delete);
    assert_eq!(all[6].before, r2);
    assert_eq!(all[6].after, Value::Null);
    assert_eq!(all[6].key, json!([2]));

    // Exact text: columns in table order, compact, numbers as written.
    let text = &all[2].after_text;
    assert!(
        text.starts_with(r#"{"id":3,"ti":null,"tiu":null,"si":null,"#),
        "{text}"
    );
    assert!(all[1]
        .after_text
        .contains(r#""f":-1.5e-10,"dbl":-1.7976931348623157e308,"#));
    assert!(all[0]
        .after_text
        .contains(r#""f":1.1,"dbl":3.141592653589793,"#));
}

#[test]
fn table_map_of_t_all() {
    let (_, _, tables) = replay(MARIADB_DML, |_| {});
    let t = tables.values().find(|t| t.name == "t_all").unwrap();
    assert_eq!(t.database, "shop");
    assert!(t.has_names);
    assert_eq!(t.primary_key, vec![0]);
    assert_eq!(t.columns.len(), 46);
    let col = |n: &str| t.columns.iter().find(|c| c.name == n).unwrap();
    assert!(!col("id").nullable && col("ti").nullable);
    for n in ["tiu", "siu", "miu", "iu", "biu", "d4"] {
        assert!(col(n).unsigned, "{n}");
    }
    for n in [
        "id", "ti", "si", "mi", "i", "bi", "d1", "d2", "d3", "f", "dbl",
    ] {
        assert!(!col(n).unsigned, "{n}");
    }
    assert_eq!((col("e").type_code, col("e").meta), (247, 1));
    assert_eq!(col("e").enum_values, ["a", "b", "c"]);
    assert_eq!((col("s").type_code, col("s").meta), (248, 1));
    assert_eq!(col("s").set_values, ["x", "y", "z"]);
    assert_eq!((col("c").type_code, col("c").meta), (254, 40));
    assert_eq!(
        (col("bn").type_code, col("bn").meta, col("bn").charset),
        (254, 4, Some(63))
    );
    assert_eq!((col("vc").type_code, col("vc").meta), (15, 1200));
    assert_eq!(col("d2").meta, (65 << 8) | 30);
    assert_eq!(col("b13").meta, (1 << 8) | 5);
    assert_eq!(col("dtm6").meta, 6);
    assert_eq!(col("tt").meta, 1);
    assert_eq!(col("lb").meta, 4);
    assert_eq!(col("tb").charset, Some(63));
    assert_eq!(col("mt").charset, col("c").charset);
    assert_eq!(col("j").type_code, 252);
}

#[test]
fn charsets_enums_sets_and_composite_key_of_t_cs() {
    let (_, rows, tables) = replay(MARIADB_DML, |_| {});
    let cs: Vec<&Row> = rows.iter().filter(|r| r.table == "t_cs").collect();
    assert_eq!(cs.len(), 2);
    assert_eq!(
        cs[0].after,
        json!({"id":1,"k":"k1","l1":"café","u1":"café ✓","c1":"äö","cu":"ü","ca":"abc",
            "cl":"x","g":"AQEAAAAAAAAAAAAUQAAAAAAAABhA","tl":"Über €uro","e":"ö","s":"α,γ",
            "e2":"y","u16":"hé"})
    );
    assert_eq!(cs[0].key, json!(["k1", 1]));
    assert_eq!(cs[1].key, json!(["k\"2", 18446744073709551615u64]));
    assert_eq!(cs[1].after["l1"], Value::Null);

    let t = tables.values().find(|t| t.name == "t_cs").unwrap();
    assert_eq!(t.primary_key, vec![1, 0]);
    assert_eq!(t.primary_key_names().collect::<Vec<_>>(), ["k", "id"]);
    let col = |n: &str| t.columns.iter().find(|c| c.name == n).unwrap();
    // MariaDB counts GEOMETRY as a character column in the charset metadata.
    let charsets: Vec<_> = [
        "k", "l1", "u1", "c1", "cu", "ca", "cl", "g", "tl", "e", "s", "e2", "u16",
    ]
    .iter()
    .map(|n| col(n).charset)
    .collect();
    assert_eq!(
        charsets,
        [33, 8, 45, 8, 33, 11, 45, 63, 8, 8, 45, 11, 54].map(Some)
    );
    assert_eq!(col("e").enum_values, ["ä", "ö", "ü"]);
    assert_eq!(col("s").set_values, ["α", "β", "γ"]);
    // CHAR(255) utf8mb4: 1020 bytes, length bits 8-9 kept in the type byte.
    assert_eq!((col("cl").type_code, col("cl").meta), (254, 1020));
    assert_eq!((col("ca").type_code, col("ca").meta), (254, 200));
}

#[test]
fn tables_without_primary_key_key_on_every_column() {
    let (_, rows, _) = replay(MARIADB_DML, |_| {});
    let got: Vec<(RowKind, Value, Value, Value)> = rows
        .iter()
        .filter(|r| r.table == "t_nopk")
        .map(|r| (r.kind, r.key.clone(), r.before.clone(), r.after.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                RowKind::Insert,
                json!([1, "one"]),
                Value::Null,
                json!({"a":1,"b":"one"})
            ),
            (
                RowKind::Insert,
                json!([null, "two"]),
                Value::Null,
                json!({"a":null,"b":"two"})
            ),
            (
                RowKind::Update,
                json!([1, "uno"]),
                json!({"a":1,"b":"one"}),
                json!({"a":1,"b":"uno"})
            ),
            (
                RowKind::Delete,
                json!([null, "two"]),
                json!({"a":null,"b":"two"}),
                Value::Null
            ),
        ]
    );
}

#[test]
fn json_text_columns_are_emitted_as_json() {
    let (_, rows, _) = replay(MARIADB_DML, |t| {
        if let Some(j) = t.columns.iter().position(|c| c.name == "j") {
            t.apply_schema(&[], &[], &[j]);
        }
    });
    assert_eq!(rows[0].after["j"], json!({"a": [1, 2.5, "x"], "b": null}));
    assert_eq!(rows[1].after["j"], json!([]));
    assert!(rows[0]
        .after_text
        .ends_with(r#""j":{"a": [1, 2.5, "x"], "b": null}}"#));
}

#[test]
fn control_events_of_the_file() {
    let (control, _, _) = replay(MARIADB_DML, |_| {});
    assert_eq!(
        &control[..6],
        [
            r#"FormatDescription { server_version: "10.11.19-MariaDB-0+deb12u1-log", checksum: true }"#,
            "MariaGtidList([MariaGtid { domain: 0, server: 1, seq: 4 }])",
            "Other { type_code: 161 }",
            "Other { type_code: 161 }",
            "MariaGtid { gtid: MariaGtid { domain: 0, server: 1, seq: 5 }, standalone: false }",
            "Other { type_code: 160 }",
        ]
    );
    let xids: Vec<&String> = control.iter().filter(|c| c.starts_with("Xid")).collect();
    assert_eq!(xids.len(), 12);
    assert_eq!(xids[0], "Xid { xid: 47 }");
}

#[test]
fn ddl_is_a_standalone_gtid_and_a_query() {
    let (control, rows, _) = replay(MARIADB_DDL, |_| {});
    assert!(rows.is_empty());
    assert_eq!(control[0], "MariaGtidList([])");
    assert_eq!(
        control[1],
        "MariaGtid { gtid: MariaGtid { domain: 0, server: 1, seq: 4 }, standalone: true }"
    );
    let bytes = unhex(MARIADB_DDL[2]);
    let (header, body) = split(&bytes);
    match parse_event(&header, body, Flavor::MariaDb).unwrap() {
        Event::Query { database, sql } => {
            assert_eq!(database, "shop");
            assert_eq!(
                sql,
                "CREATE TABLE t_nopk (a INT, b VARCHAR(10)) DEFAULT CHARSET=utf8mb4"
            );
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        control[3],
        r#"Rotate { next_file: "mysql-bin.000002", pos: 4 }"#
    );
}

#[test]
fn stream_as_mysql_async_delivers_it() {
    let got: Vec<String> = MARIADB_STREAM
        .iter()
        .map(|(h, hex)| {
            let body = unhex(hex);
            format!("{:?}", parse_event(h, &body, Flavor::MariaDb).unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            // The artificial rotate's trailing CRC32 is recognised and dropped.
            r#"Rotate { next_file: "mysql-bin.000002", pos: 4 }"#,
            // mysql_common strips the checksum-algorithm byte of the FDE.
            r#"FormatDescription { server_version: "10.11.19-MariaDB-0+deb12u1-log", checksum: false }"#,
            "MariaGtidList([MariaGtid { domain: 0, server: 1, seq: 4 }])",
            "Other { type_code: 161 }",
            "Other { type_code: 161 }",
            "MariaGtid { gtid: MariaGtid { domain: 0, server: 1, seq: 5 }, standalone: false }",
        ]
    );
}

#[test]
fn fde_checksum_from_whole_or_crc_stripped_body() {
    let bytes = unhex(MARIADB_DML[0]);
    let header = EventHeader::parse(&bytes).unwrap();
    for body in [&bytes[19..], &bytes[19..bytes.len() - 4]] {
        match parse_event(&header, body, Flavor::MariaDb).unwrap() {
            Event::FormatDescription { checksum, .. } => assert!(checksum),
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn rows_against_the_wrong_table_fail() {
    let bytes = unhex(MARIADB_DML[6]);
    let (h, body) = split(&bytes);
    let Event::TableMap(mut table) = parse_event(&h, body, Flavor::MariaDb).unwrap() else {
        panic!("not a table map")
    };
    let bytes = unhex(MARIADB_DML[7]);
    let (h, body) = split(&bytes);
    let Event::Rows(rows) = parse_event(&h, body, Flavor::MariaDb).unwrap() else {
        panic!("not rows")
    };
    let mut out = RowOut::new();
    table.columns.pop();
    assert_eq!(
        rows.clone().next_row(&table, &mut out),
        Err(DecodeError::ColumnCountMismatch {
            table: "shop.t_all".into(),
            expected: 45,
            got: 46
        })
    );
    table.table_id += 1;
    assert!(matches!(
        rows.clone().next_row(&table, &mut out),
        Err(DecodeError::TableIdMismatch { .. })
    ));
    // A truncated rows body fails without panicking, at every length.
    let Event::TableMap(table) = parse_event(
        &split(&unhex(MARIADB_DML[6])).0,
        split(&unhex(MARIADB_DML[6])).1,
        Flavor::MariaDb,
    )
    .unwrap() else {
        panic!("not a table map")
    };
    for cut in 0..body.len() {
        if let Ok(Event::Rows(mut r)) = parse_event(&h, &body[..cut], Flavor::MariaDb) {
            let nothing_left = r.is_empty();
            assert!(
                r.next_row(&table, &mut out).is_err() || nothing_left,
                "{cut}"
            );
        }
    }
}

#[test]
fn truncated_table_maps_fail_cleanly() {
    for hex in MARIADB_DML.iter().filter(|h| h[8..10] == *"13") {
        let bytes = unhex(hex);
        let (h, body) = split(&bytes);
        for cut in 0..body.len() {
            // Either an error or a table (optional metadata cut at a field
            // boundary); never a panic.
            let _ = parse_event(&h, &body[..cut], Flavor::MariaDb);
        }
    }
}

/// `SELECT json_object(...)` of the first rows of `rnd` (DATETIME with `T`,
/// TIMESTAMP with `Z`; FLOAT and DOUBLE as the server prints them: FLOAT
/// with 6 significant digits).
const RANDOM_SELECTED: &[&str] = &[
    r#"{"id":0,"d1":"60181.5000","d2":"-166131.800000000000000","d3":"0.000000000","d4":"9099603","f":"113330","g":"-420781.4273366475","t0":"-553:07:36","t1":"573:52:43.1","t2":"595:36:40.51","t3":"560:45:04.937","t4":"-696:34:27.7975","t5":"306:15:50.31948","t6":"-506:56:21.491186","dt2":"3490-08-14T01:42:04.25","dt4":"6737-10-16T18:51:29.8955","dt5":"1994-12-23T09:41:36.11471","ts4":"1973-08-12T05:39:07.7465Z","i24":8176980,"bt":56087782144}"#,
    r#"{"id":1,"d1":"3667.1000","d2":"-84268465632122.330792440268000","d3":"-0.952890786","d4":"617603137215","f":"-7.95241e25","g":"-697470.1354411441","t0":"372:39:01","t1":"212:39:24.4","t2":"-355:38:23.11","t3":"-499:29:30.412","t4":"-104:47:21.7280","t5":"210:33:23.80841","t6":"-712:54:16.253888","dt2":"4197-04-27T12:47:51.53","dt4":"6825-12-01T00:50:17.3387","dt5":"8327-12-12T11:05:14.74395","ts4":"2014-04-16T19:57:39.1373Z","i24":-8324576,"bt":97293799865}"#,
    r#"{"id":2,"d1":"6.0000","d2":"651676122202972.997520000000000","d3":"0.000000000","d4":"826","f":"652310","g":"-944012.54874714","t0":"-299:32:15","t1":"265:34:26.0","t2":"-757:22:57.98","t3":"430:52:58.828","t4":"-522:01:55.2902","t5":"176:09:30.80588","t6":"568:30:50.803340","dt2":"8408-09-01T02:28:20.18","dt4":"4267-12-09T14:32:34.9898","dt5":"4319-08-05T13:07:25.78384","ts4":"2025-02-07T21:19:50.7513Z","i24":-4283228,"bt":101620027951}"#,
    r#"{"id":3,"d1":"-27.3100","d2":"-326865635515058.770650000000000","d3":"0.113114400","d4":"-26462889","f":"400835","g":"-4.418753973018154e205","t0":"187:27:57","t1":"275:01:40.4","t2":"85:38:54.14","t3":"-124:29:00.864","t4":"636:08:02.1240","t5":"-185:12:59.48347","t6":"-512:43:11.504000","dt2":"4104-09-16T07:59:28.88","dt4":"7440-09-10T22:13:14.1678","dt5":"1891-03-01T02:40:47.53265","ts4":"1981-11-27T12:55:32.4620Z","i24":1071503,"bt":66996243140}"#,
    r#"{"id":4,"d1":"-7224.0000","d2":"-0.558530430000000","d3":"-0.050000000","d4":"74","f":"-503641","g":"-818296.6073726314","t0":"147:25:37","t1":"-403:01:19.3","t2":"86:37:33.96","t3":"-782:20:46.249","t4":"-658:09:02.8288","t5":"582:53:52.93100","t6":"136:40:23.678008","dt2":"5321-01-15T02:47:59.37","dt4":"2082-12-24T15:16:51.8818","dt5":"8542-08-28T12:04:30.14333","ts4":"1980-10-05T10:16:41.4093Z","i24":1825936,"bt":573124782}"#,
    r#"{"id":5,"d1":"-7413748.0000","d2":"71834170471874.633191284529840","d3":"0.377600000","d4":"0","f":"0.00000000000000363176","g":"-396097.91744973126","t0":"-426:22:24","t1":"123:53:21.5","t2":"-768:21:53.13","t3":"-730:00:57.451","t4":"402:24:55.5640","t5":"-287:06:03.23468","t6":"-323:12:49.606883","dt2":"7731-08-20T04:41:55.10","dt4":"3085-03-16T13:21:18.4708","dt5":"5928-08-18T21:25:07.44463","ts4":"2035-08-18T07:28:58.2213Z","i24":2779456,"bt":117896682389}"#,
    r#"{"id":6,"d1":"33.1258","d2":"-5493066683.645074900000000","d3":"0.880000000","d4":"-43","f":"-0.00000000000000200486","g":"-1.363266266294783e-195","t0":"833:55:01","t1":"-33:27:45.9","t2":"-501:00:04.87","t3":"459:15:50.322","t4":"-534:43:06.1800","t5":"801:08:14.42486","t6":"715:48:07.148936","dt2":"1018-01-18T09:29:17.43","dt4":"4846-09-08T00:26:45.5378","dt5":"7881-02-09T07:42:27.40037","ts4":"2014-12-14T11:43:25.5370Z","i24":-1742159,"bt":56124195071}"#,
    r#"{"id":7,"d1":"-4337344.1000","d2":"76092.603092600000000","d3":"0.000000000","d4":"-751125328704","f":"0.00000000000000678254","g":"-115129.7067215899","t0":"02:05:17","t1":"359:26:56.8","t2":"-777:13:24.46","t3":"-89:03:45.358","t4":"-457:12:20.7063","t5":"-831:40:49.06071","t6":"-822:58:03.319554","dt2":"1714-05-24T22:44:20.59","dt4":"2070-01-27T07:06:30.4409","dt5":"3174-08-06T00:51:59.76467","ts4":"2012-06-15T11:50:50.4293Z","i24":-5737309,"bt":53738135966}"#,
    r#"{"id":8,"d1":"-361078.8000","d2":"11491.316772326793800","d3":"-0.449400000","d4":"-43732332","f":"7.68336e25","g":"-623499.7313270282","t0":"405:16:15","t1":"-665:51:06.0","t2":"104:00:30.75","t3":"41:56:18.103","t4":"614:52:37.1582","t5":"459:38:16.19953","t6":"38:23:21.034093","dt2":"7700-11-12T05:39:19.05","dt4":"9979-08-03T13:06:50.1307","dt5":"3681-07-23T08:26:18.68281","ts4":"2016-07-14T00:55:49.4604Z","i24":3817869,"bt":54307620385}"#,
    r#"{"id":9,"d1":"-306261.1690","d2":"20082619958225.428210000000000","d3":"-0.734207000","d4":"-9","f":"-8.27411e25","g":"240685.93514288287","t0":"655:50:54","t1":"635:25:39.7","t2":"187:36:13.68","t3":"160:24:22.233","t4":"42:56:35.5169","t5":"-466:35:54.64936","t6":"-398:42:23.872009","dt2":"4854-08-25T19:49:52.77","dt4":"2754-02-05T11:27:23.7276","dt5":"1666-11-05T02:59:46.17880","ts4":"2035-07-21T04:01:54.5810Z","i24":-6161243,"bt":33565124113}"#,
    r#"{"id":10,"d1":"742.3000","d2":"25947248739.498355030000000","d3":"0.245624000","d4":"-578891486546592","f":"-338342","g":"-115436.74424220179","t0":"-630:47:03","t1":"-528:16:19.0","t2":"765:02:14.49","t3":"-640:27:26.027","t4":"232:39:41.0009","t5":"-363:19:06.83694","t6":"-603:08:13.972203","dt2":"2569-02-21T04:55:42.27","dt4":"1919-11-27T17:57:22.4640","dt5":"9074-04-06T00:02:03.99798","ts4":"2001-03-02T03:00:39.8062Z","i24":-1769723,"bt":112280179840}"#,
    r#"{"id":11,"d1":"986.9284","d2":"780667172.300000000000000","d3":"-0.301500000","d4":"-4","f":"3.71467e25","g":"9.437834660007989e-195","t0":"657:59:57","t1":"87:56:32.2","t2":"266:57:15.25","t3":"-196:56:24.936","t4":"-645:58:44.7800","t5":"-447:46:14.36991","t6":"578:58:10.001192","dt2":"1470-01-02T04:44:41.52","dt4":"6954-04-27T17:57:42.0101","dt5":"4328-02-02T01:54:58.16133","ts4":"1987-02-26T20:13:18.1471Z","i24":2319915,"bt":117409441393}"#,
];

#[test]
fn random_values_match_select() {
    let (_, rows, _) = replay(MARIADB_RANDOM, |_| {});
    assert_eq!(rows.len(), RANDOM_SELECTED.len());
    for (row, want) in rows.iter().zip(RANDOM_SELECTED) {
        let mut want: Value = serde_json::from_str(want).unwrap();
        let mut got = row.after.clone();
        // Floats: the server's text is rounded; the decoder's is exact.
        for (k, tolerance) in [("f", 6e-6), ("g", 1e-15)] {
            let w: f64 = want[k].as_str().unwrap().parse().unwrap();
            let g = got[k].as_f64().unwrap();
            assert!((w - g).abs() <= g.abs() * tolerance, "{k}: {w} vs {g}");
            want[k] = Value::Null;
            got[k] = Value::Null;
        }
        assert_eq!(got, want);
    }
}
