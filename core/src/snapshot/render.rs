//! Snapshot row values to message JSON, pure.
//!
//! In: the values of one row as the source sent them for a prepared
//! `SELECT` (binary protocol: integers, floats, dates and times as typed
//! values, everything else as bytes), with each column's kind taken from
//! `information_schema.COLUMNS`. Out: the after image and the key exactly as
//! the binlog decoder ([`crate::decode::value`]) renders the same row, so a
//! consumer sees no difference between a `read` and an `insert` of a row.
//! The session reading the rows uses `time_zone = '+00:00'` (TIMESTAMP in
//! UTC, as the binlog stores it) and `utf8mb4` results (text arrives as
//! UTF-8, as the decoder converts it).
//!
//! Also here: the raw form of ordering key values ([`RawValue`]), kept in
//! the context and in a message header, and bound back as statement
//! parameters to read the next chunk or compare keys in SQL.

use crate::decode::charset::{escape_utf8, write_base64};
use crate::decode::float::{write_f32, write_f64};
use crate::decode::rows::push_key;
use crate::decode::temporal::{push_date, push_frac, push_hms};
use base64::Engine;
use mysql_async::Value;
use replicator_common::nodes::RawValue;

/// How a column's values render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Integer types and YEAR: a number.
    Int,
    /// DECIMAL: the source's text (exactly the column's scale), quoted.
    Decimal,
    Float,
    Double,
    /// BIT: big-endian bytes as an unsigned number.
    Bit,
    Date,
    DateTime(u8),
    /// In UTC with a trailing `Z`.
    Timestamp(u8),
    Time(u8),
    /// Character columns, ENUM and SET: UTF-8 text.
    Text,
    /// MariaDB JSON (LONGTEXT with a `json_valid` check): raw when valid.
    JsonText,
    /// Binary strings: base64 (BINARY(n) arrives zero padded, as the decoder pads).
    Binary,
    /// GEOMETRY: base64 of the WKB (the 4-byte SRID stripped).
    Geometry,
    /// MySQL JSON: the text parsed and written compactly.
    Json,
}

/// A column kind from `information_schema.COLUMNS` (`DATA_TYPE`,
/// `DATETIME_PRECISION`, `CHARACTER_SET_NAME`) and whether a `json_valid`
/// check names the column.
pub fn kind_of(
    data_type: &str,
    fsp: Option<u8>,
    charset: Option<&str>,
    json_text: bool,
) -> Option<ColKind> {
    let fsp = fsp.unwrap_or(0).min(6);
    let binary = charset.is_none_or(|c| c.eq_ignore_ascii_case("binary"));
    Some(match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            ColKind::Int
        }
        "decimal" | "numeric" => ColKind::Decimal,
        "float" => ColKind::Float,
        "double" | "real" => ColKind::Double,
        "bit" => ColKind::Bit,
        "date" => ColKind::Date,
        "datetime" => ColKind::DateTime(fsp),
        "timestamp" => ColKind::Timestamp(fsp),
        "time" => ColKind::Time(fsp),
        "enum" | "set" => ColKind::Text,
        "json" => ColKind::Json,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "binary"
        | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            if binary {
                ColKind::Binary
            } else if json_text {
                ColKind::JsonText
            } else {
                ColKind::Text
            }
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ColKind::Geometry,
        _ => return None,
    })
}

/// A value the source sent that does not fit its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("geometry shorter than its SRID")]
    ShortGeometry,
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("unexpected value {value} for a {kind:?} column")]
    Unexpected { value: String, kind: ColKind },
}

/// A row that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{got} values for {want} columns")]
    Count { got: usize, want: usize },
    #[error("column `{column}`: {source}")]
    Value {
        column: String,
        #[source]
        source: ValueError,
    },
}

/// A raw key value that cannot be bound back as a parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad base64 in a snapshot key: {0}")]
pub struct KeyError(#[from] base64::DecodeError);

/// Appends the JSON of `v` for a column of kind `kind`.
pub fn write_value(out: &mut Vec<u8>, v: &Value, kind: ColKind) -> Result<(), ValueError> {
    let mut buf = itoa::Buffer::new();
    match (kind, v) {
        (_, Value::NULL) => out.extend_from_slice(b"null"),
        (ColKind::Int, Value::Int(i)) => out.extend_from_slice(buf.format(*i).as_bytes()),
        (ColKind::Int, Value::UInt(u)) => out.extend_from_slice(buf.format(*u).as_bytes()),
        (ColKind::Int, Value::Bytes(b)) if is_integer(b) => out.extend_from_slice(b),
        (ColKind::Decimal, Value::Bytes(b)) => {
            out.push(b'"');
            out.extend_from_slice(b);
            out.push(b'"');
        }
        (ColKind::Float, Value::Float(f)) => write_f32(out, *f),
        (ColKind::Float, Value::Double(d)) => write_f32(out, *d as f32),
        (ColKind::Double, Value::Double(d)) => write_f64(out, *d),
        (ColKind::Double, Value::Float(f)) => write_f64(out, f64::from(*f)),
        (ColKind::Bit, Value::Bytes(b)) => {
            let n = b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
            out.extend_from_slice(buf.format(n).as_bytes());
        }
        (ColKind::Bit, Value::Int(i)) => out.extend_from_slice(buf.format(*i).as_bytes()),
        (ColKind::Bit, Value::UInt(u)) => out.extend_from_slice(buf.format(*u).as_bytes()),
        (ColKind::Date, Value::Date(y, m, d, ..)) => {
            out.push(b'"');
            push_date(out, u32::from(*y), u32::from(*m), u32::from(*d));
            out.push(b'"');
        }
        (ColKind::DateTime(fsp) | ColKind::Timestamp(fsp), Value::Date(y, mo, d, h, mi, s, us)) => {
            out.push(b'"');
            push_date(out, u32::from(*y), u32::from(*mo), u32::from(*d));
            out.push(b'T');
            push_hms(out, u32::from(*h), u32::from(*mi), u32::from(*s));
            push_frac(out, *us, fsp);
            if matches!(kind, ColKind::Timestamp(_)) {
                out.push(b'Z');
            }
            out.push(b'"');
        }
        (ColKind::Time(fsp), Value::Time(neg, days, h, m, s, us)) => {
            out.push(b'"');
            if *neg {
                out.push(b'-');
            }
            push_hms(out, days * 24 + u32::from(*h), u32::from(*m), u32::from(*s));
            push_frac(out, *us, fsp);
            out.push(b'"');
        }
        (ColKind::Text, Value::Bytes(b)) => {
            out.push(b'"');
            escape_utf8(out, b);
            out.push(b'"');
        }
        (ColKind::JsonText, Value::Bytes(b)) => {
            if std::str::from_utf8(b).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
            {
                out.extend_from_slice(b);
            } else {
                out.push(b'"');
                escape_utf8(out, b);
                out.push(b'"');
            }
        }
        (ColKind::Binary, Value::Bytes(b)) => write_base64(out, b),
        (ColKind::Geometry, Value::Bytes(b)) => {
            let wkb = b.get(4..).ok_or(ValueError::ShortGeometry)?;
            write_base64(out, wkb);
        }
        (ColKind::Json, Value::Bytes(b)) => {
            let v: serde_json::Value =
                serde_json::from_slice(b).map_err(|e| ValueError::Json(e.to_string()))?;
            serde_json::to_writer(&mut *out, &v).expect("writing to a Vec cannot fail");
        }
        (kind, v) => {
            return Err(ValueError::Unexpected {
                value: format!("{v:?}").chars().take(80).collect(),
                kind,
            })
        }
    }
    Ok(())
}

fn is_integer(b: &[u8]) -> bool {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// One column of a snapshot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapColumn {
    pub name: String,
    pub kind: ColKind,
}

/// A rendered row: the message's after image and key, and the raw
/// ordering key.
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    pub after: Vec<u8>,
    pub key: Vec<u8>,
    pub raw_key: Vec<RawValue>,
    /// Where each column's value lies in `after` (kept between rows).
    spans: Vec<(usize, usize)>,
}

/// Renders `values` (one per column of `cols`). The key holds the
/// `key_cols` values, or every column when `key_cols` is empty (as the
/// stream keys tables without a primary key); the raw key holds the
/// `order_cols` values.
pub fn render_row(
    cols: &[SnapColumn],
    key_cols: &[usize],
    order_cols: &[usize],
    values: &[Value],
    out: &mut Rendered,
) -> Result<(), RenderError> {
    if values.len() < cols.len() {
        return Err(RenderError::Count {
            got: values.len(),
            want: cols.len(),
        });
    }
    out.after.clear();
    out.key.clear();
    out.raw_key.clear();
    out.spans.clear();
    out.after.push(b'{');
    for (i, (col, v)) in cols.iter().zip(values).enumerate() {
        if i > 0 {
            out.after.push(b',');
        }
        push_key(&mut out.after, &col.name);
        let start = out.after.len();
        write_value(&mut out.after, v, col.kind).map_err(|source| RenderError::Value {
            column: col.name.clone(),
            source,
        })?;
        out.spans.push((start, out.after.len()));
    }
    out.after.push(b'}');
    out.key.push(b'[');
    let mut push = |n: usize, i: usize| {
        if n > 0 {
            out.key.push(b',');
        }
        let (s, e) = out.spans[i];
        out.key.extend_from_slice(&out.after[s..e]);
    };
    if key_cols.is_empty() {
        (0..cols.len()).for_each(|i| push(i, i));
    } else {
        key_cols.iter().enumerate().for_each(|(n, &i)| push(n, i));
    }
    out.key.push(b']');
    for &i in order_cols {
        out.raw_key.push(raw_value(&values[i]));
    }
    Ok(())
}

/// The raw form of a value (bound back as a parameter later).
pub fn raw_value(v: &Value) -> RawValue {
    match v {
        Value::NULL => RawValue::Null,
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => RawValue::Text(s.to_string()),
            Err(_) => RawValue::Bytes {
                b64: base64::engine::general_purpose::STANDARD.encode(b),
            },
        },
        Value::Int(i) => RawValue::Text(i.to_string()),
        Value::UInt(u) => RawValue::Text(u.to_string()),
        Value::Float(f) => RawValue::Text(f.to_string()),
        Value::Double(d) => RawValue::Text(d.to_string()),
        Value::Date(y, mo, d, h, mi, s, us) => RawValue::Text(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        Value::Time(neg, days, h, m, s, us) => RawValue::Text(format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            days * 24 + u32::from(*h)
        )),
    }
}

/// A raw value as a statement parameter.
pub fn param(v: &RawValue) -> Result<Value, KeyError> {
    Ok(match v {
        RawValue::Null => Value::NULL,
        RawValue::Text(s) => Value::Bytes(s.as_bytes().to_vec()),
        RawValue::Bytes { b64 } => {
            Value::Bytes(base64::engine::general_purpose::STANDARD.decode(b64)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(v: Value, kind: ColKind) -> String {
        let mut out = Vec::new();
        write_value(&mut out, &v, kind).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn kinds_from_information_schema() {
        assert_eq!(kind_of("bigint", None, None, false), Some(ColKind::Int));
        assert_eq!(
            kind_of("DATETIME", Some(3), None, false),
            Some(ColKind::DateTime(3))
        );
        assert_eq!(
            kind_of("varchar", None, Some("utf8mb4"), false),
            Some(ColKind::Text)
        );
        assert_eq!(
            kind_of("varbinary", None, None, false),
            Some(ColKind::Binary)
        );
        assert_eq!(
            kind_of("longtext", None, Some("utf8mb4"), true),
            Some(ColKind::JsonText)
        );
        assert_eq!(kind_of("point", None, None, false), Some(ColKind::Geometry));
        assert_eq!(kind_of("vector", None, None, false), None);
    }

    #[test]
    fn values_render_as_the_decoder_renders_them() {
        assert_eq!(render(Value::Int(-5), ColKind::Int), "-5");
        assert_eq!(
            render(Value::UInt(u64::MAX), ColKind::Int),
            "18446744073709551615"
        );
        assert_eq!(
            render(Value::Bytes(b"-0.50".to_vec()), ColKind::Decimal),
            "\"-0.50\""
        );
        assert_eq!(render(Value::Float(1.1), ColKind::Float), "1.1");
        assert_eq!(render(Value::Double(1.0), ColKind::Double), "1");
        assert_eq!(render(Value::Bytes(vec![0x15, 0x55]), ColKind::Bit), "5461");
        assert_eq!(
            render(Value::Date(2024, 2, 29, 0, 0, 0, 0), ColKind::Date),
            "\"2024-02-29\""
        );
        assert_eq!(
            render(Value::Date(0, 0, 0, 0, 0, 0, 0), ColKind::DateTime(0)),
            "\"0000-00-00T00:00:00\""
        );
        assert_eq!(
            render(
                Value::Date(2024, 1, 2, 3, 4, 5, 120_000),
                ColKind::DateTime(3)
            ),
            "\"2024-01-02T03:04:05.120\""
        );
        assert_eq!(
            render(Value::Date(2038, 1, 19, 3, 14, 7, 0), ColKind::Timestamp(0)),
            "\"2038-01-19T03:14:07Z\""
        );
        assert_eq!(
            render(Value::Time(true, 34, 22, 59, 59, 0), ColKind::Time(0)),
            "\"-838:59:59\""
        );
        assert_eq!(
            render(Value::Time(false, 0, 12, 0, 0, 500_000), ColKind::Time(1)),
            "\"12:00:00.5\""
        );
        assert_eq!(
            render(Value::Bytes(b"a\"b".to_vec()), ColKind::Text),
            r#""a\"b""#
        );
        assert_eq!(
            render(Value::Bytes(b"{\"a\":1}".to_vec()), ColKind::JsonText),
            "{\"a\":1}"
        );
        assert_eq!(
            render(Value::Bytes(b"{x}".to_vec()), ColKind::JsonText),
            "\"{x}\""
        );
        assert_eq!(
            render(Value::Bytes(vec![0, 0xff]), ColKind::Binary),
            "\"AP8=\""
        );
        assert_eq!(
            render(Value::Bytes(vec![0, 0, 0, 0, 1]), ColKind::Geometry),
            "\"AQ==\""
        );
        assert_eq!(render(Value::NULL, ColKind::Text), "null");
        let mut out = Vec::new();
        assert!(write_value(&mut out, &Value::Int(1), ColKind::Date).is_err());
        assert!(write_value(&mut out, &Value::Bytes(vec![1]), ColKind::Geometry).is_err());
    }

    #[test]
    fn rows_keys_and_raw_keys() {
        let cols = vec![
            SnapColumn {
                name: "id".into(),
                kind: ColKind::Int,
            },
            SnapColumn {
                name: "name".into(),
                kind: ColKind::Text,
            },
        ];
        let values = vec![Value::Int(7), Value::Bytes(b"x".to_vec())];
        let mut r = Rendered::default();
        render_row(&cols, &[0], &[0], &values, &mut r).unwrap();
        assert_eq!(r.after, br#"{"id":7,"name":"x"}"#);
        assert_eq!(r.key, b"[7]");
        assert_eq!(r.raw_key, vec![RawValue::Text("7".into())]);
        render_row(&cols, &[], &[1, 0], &values, &mut r).unwrap();
        assert_eq!(r.key, br#"[7,"x"]"#, "no primary key: the whole row");
        assert_eq!(
            r.raw_key,
            vec![RawValue::Text("x".into()), RawValue::Text("7".into())]
        );
        assert!(render_row(&cols, &[0], &[0], &values[..1], &mut r).is_err());
    }

    #[test]
    fn raw_values_round_trip_as_parameters() {
        let raw = raw_value(&Value::Bytes(vec![0xff, 0]));
        assert_eq!(raw, RawValue::Bytes { b64: "/wA=".into() });
        assert_eq!(param(&raw).unwrap(), Value::Bytes(vec![0xff, 0]));
        assert_eq!(
            raw_value(&Value::Date(2024, 1, 2, 3, 4, 5, 6)),
            RawValue::Text("2024-01-02 03:04:05.000006".into())
        );
        assert_eq!(
            raw_value(&Value::Time(true, 1, 2, 3, 4, 0)),
            RawValue::Text("-26:03:04.000000".into())
        );
        assert_eq!(param(&RawValue::Null).unwrap(), Value::NULL);
        assert!(param(&RawValue::Bytes { b64: "!".into() }).is_err());
        let json = serde_json::to_string(&vec![
            RawValue::Text("a".into()),
            RawValue::Null,
            raw.clone(),
        ])
        .unwrap();
        assert_eq!(json, r#"["a",null,{"b64":"/wA="}]"#);
        let back: Vec<RawValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[2], raw);
    }
}
