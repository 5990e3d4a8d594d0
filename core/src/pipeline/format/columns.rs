//! Column kinds and value conversions shared by the formats, pure.
//!
//! In: a [`Column`] of a table map, and one value of a row image as the
//! decoder rendered it (docs/design.md §7, raw JSON text). Out: what the column is
//! ([`ColKind`], chosen once per table) and the parsed pieces the formats
//! re-render: days and epoch microseconds of temporal values, the bytes of
//! base64 values, the text of strings. Every parse failure is a
//! [`FormatError`] naming the column: a value the decoder could not have
//! written is never guessed at.

use super::{FormatError, Image};
use crate::decode::table::types;
use crate::decode::{Column, Table};
use base64::Engine;
use serde_json::value::RawValue;

/// What a column holds, as far as the formats care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// TINYINT .. BIGINT: bits 8, 16, 24, 32, 64.
    Int {
        bits: u8,
        unsigned: bool,
    },
    Year,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float,
    Double,
    Bit {
        bits: u16,
    },
    Date,
    DateTime {
        fsp: u8,
    },
    Timestamp {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    /// CHAR/VARCHAR/TEXT (`blob`: a TEXT type, `fixed`: CHAR).
    Text {
        fixed: bool,
        blob: bool,
    },
    /// BINARY/VARBINARY/BLOB.
    Bytes {
        fixed: bool,
        blob: bool,
    },
    Enum,
    Set,
    Json,
    Geometry,
}

impl ColKind {
    pub fn of(c: &Column) -> ColKind {
        let fsp = |m: u16| (m as u8).min(6);
        match c.type_code {
            types::TINY => ColKind::Int {
                bits: 8,
                unsigned: c.unsigned,
            },
            types::SHORT => ColKind::Int {
                bits: 16,
                unsigned: c.unsigned,
            },
            types::INT24 => ColKind::Int {
                bits: 24,
                unsigned: c.unsigned,
            },
            types::LONG => ColKind::Int {
                bits: 32,
                unsigned: c.unsigned,
            },
            types::LONGLONG => ColKind::Int {
                bits: 64,
                unsigned: c.unsigned,
            },
            types::YEAR => ColKind::Year,
            types::NEWDECIMAL | types::DECIMAL => ColKind::Decimal {
                precision: (c.meta >> 8) as u8,
                scale: c.meta as u8,
            },
            types::FLOAT => ColKind::Float,
            types::DOUBLE => ColKind::Double,
            types::BIT => ColKind::Bit {
                bits: (c.meta >> 8) * 8 + (c.meta & 0xff),
            },
            types::DATE | types::NEWDATE => ColKind::Date,
            types::DATETIME2 => ColKind::DateTime { fsp: fsp(c.meta) },
            types::DATETIME => ColKind::DateTime { fsp: 0 },
            types::TIMESTAMP2 => ColKind::Timestamp { fsp: fsp(c.meta) },
            types::TIMESTAMP => ColKind::Timestamp { fsp: 0 },
            types::TIME2 => ColKind::Time { fsp: fsp(c.meta) },
            types::TIME => ColKind::Time { fsp: 0 },
            types::ENUM => ColKind::Enum,
            types::SET => ColKind::Set,
            types::JSON => ColKind::Json,
            types::GEOMETRY => ColKind::Geometry,
            t => {
                let fixed = t == types::STRING;
                let blob = t == types::BLOB;
                if c.json_text {
                    ColKind::Json
                } else if c.charset == Some(crate::decode::charset::BINARY_COLLATION) {
                    ColKind::Bytes { fixed, blob }
                } else {
                    ColKind::Text { fixed, blob }
                }
            }
        }
    }

    /// The column type as MySQL names it (without display widths or
    /// lengths, which the binlog does not carry).
    pub fn mysql_type(self, c: &Column) -> String {
        let blob_name = |kind: &str| -> String {
            let size = match c.meta {
                1 => "tiny",
                3 => "medium",
                4 => "long",
                _ => "",
            };
            format!("{size}{kind}")
        };
        let unsigned = |name: &str, u: bool| {
            if u {
                format!("{name} unsigned")
            } else {
                name.to_string()
            }
        };
        match self {
            ColKind::Int { bits, unsigned: u } => unsigned(
                match bits {
                    8 => "tinyint",
                    16 => "smallint",
                    24 => "mediumint",
                    32 => "int",
                    _ => "bigint",
                },
                u,
            ),
            ColKind::Year => "year".into(),
            ColKind::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColKind::Float => unsigned("float", c.unsigned),
            ColKind::Double => unsigned("double", c.unsigned),
            ColKind::Bit { bits } => format!("bit({bits})"),
            ColKind::Date => "date".into(),
            ColKind::DateTime { fsp: 0 } => "datetime".into(),
            ColKind::DateTime { fsp } => format!("datetime({fsp})"),
            ColKind::Timestamp { fsp: 0 } => "timestamp".into(),
            ColKind::Timestamp { fsp } => format!("timestamp({fsp})"),
            ColKind::Time { fsp: 0 } => "time".into(),
            ColKind::Time { fsp } => format!("time({fsp})"),
            ColKind::Text { blob: true, .. } => blob_name("text"),
            ColKind::Text { fixed: true, .. } => "char".into(),
            ColKind::Text { .. } => "varchar".into(),
            ColKind::Bytes { blob: true, .. } => blob_name("blob"),
            ColKind::Bytes { fixed: true, .. } => "binary".into(),
            ColKind::Bytes { .. } => "varbinary".into(),
            ColKind::Enum => "enum".into(),
            ColKind::Set => "set".into(),
            ColKind::Json => "json".into(),
            ColKind::Geometry => "geometry".into(),
        }
    }

    /// The `java.sql.Types` code Canal reports for the column.
    pub fn java_sql_type(self) -> i32 {
        match self {
            ColKind::Int { bits: 8, unsigned } => {
                if unsigned {
                    5
                } else {
                    -6
                }
            }
            ColKind::Int { bits: 16, unsigned } => {
                if unsigned {
                    4
                } else {
                    5
                }
            }
            ColKind::Int { bits: 24, .. } => 4,
            ColKind::Int { bits: 32, unsigned } => {
                if unsigned {
                    -5
                } else {
                    4
                }
            }
            ColKind::Int { unsigned, .. } => {
                if unsigned {
                    3
                } else {
                    -5
                }
            }
            ColKind::Year => 12,
            ColKind::Decimal { .. } => 3,
            ColKind::Float => 7,
            ColKind::Double => 8,
            ColKind::Bit { .. } => -7,
            ColKind::Date => 91,
            ColKind::Time { .. } => 92,
            ColKind::DateTime { .. } | ColKind::Timestamp { .. } => 93,
            ColKind::Text { blob: true, .. } => 2005,
            ColKind::Text { fixed: true, .. } | ColKind::Enum | ColKind::Set => 1,
            ColKind::Text { .. } | ColKind::Json => 12,
            ColKind::Bytes { blob: true, .. } => 2004,
            ColKind::Bytes { fixed: true, .. } | ColKind::Geometry => -2,
            ColKind::Bytes { .. } => -3,
        }
    }
}

/// One column as the formats write it: its `"name":` label (escaped
/// once per table), name, kind and nullability.
#[derive(Debug, Clone)]
pub struct Col {
    pub label: Vec<u8>,
    pub name: String,
    pub kind: ColKind,
    pub nullable: bool,
}

impl Col {
    /// The columns of `table`, in table order.
    pub fn of_table(table: &Table) -> Vec<Col> {
        table
            .columns
            .iter()
            .map(|c| {
                let mut label = Vec::with_capacity(c.name.len() + 3);
                push_str(&mut label, &c.name);
                label.push(b':');
                Col {
                    label,
                    name: c.name.clone(),
                    kind: ColKind::of(c),
                    nullable: c.nullable,
                }
            })
            .collect()
    }
}

/// Writes an image as `{"col": value, ...}`, each value by the format's
/// `value`; with `changed_in`, only the columns whose value differs there
/// (the old values of an update, as Canal and Maxwell write them).
pub fn write_image(
    out: &mut Vec<u8>,
    cols: &[Col],
    img: &Image<'_>,
    changed_in: Option<&Image<'_>>,
    value: impl Fn(&mut Vec<u8>, &Col, &RawValue) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    out.push(b'{');
    let mut first = true;
    for (i, (c, v)) in cols.iter().zip(&img.0).enumerate() {
        if changed_in.is_some_and(|a| a.0[i].get() == v.get()) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&c.label);
        value(out, c, v)?;
    }
    out.push(b'}');
    Ok(())
}

/// The text of a JSON string value.
pub fn string<'a>(raw: &'a RawValue, col: &str) -> Result<std::borrow::Cow<'a, str>, FormatError> {
    let s = raw.get();
    if s.len() >= 2 && !s[1..s.len() - 1].contains(['\\', '"']) && s.starts_with('"') {
        return Ok(std::borrow::Cow::Borrowed(&s[1..s.len() - 1]));
    }
    serde_json::from_str::<String>(s)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| FormatError::value(col, "a string", s))
}

/// The bytes of a base64 string value.
pub fn bytes(raw: &RawValue, col: &str) -> Result<Vec<u8>, FormatError> {
    let s = string(raw, col)?;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|_| FormatError::value(col, "base64", raw.get()))
}

/// Appends the base64 of `b`.
pub fn push_base64(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + b.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(b, &mut out[start..])
        .expect("buffer sized for base64");
    out.truncate(start + n);
    out.push(b'"');
}

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Appends a number.
pub fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The digits `part` of the value `whole` as a number.
fn num(part: &str, whole: &str, col: &str, what: &'static str) -> Result<i64, FormatError> {
    if part.is_empty() || part.len() > 12 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormatError::value(col, what, whole));
    }
    part.parse()
        .map_err(|_| FormatError::value(col, what, whole))
}

/// `YYYY-MM-DD` as days since the epoch; `None` for a zero or partly zero
/// date (`0000-00-00`, `2024-00-10`), which no calendar holds.
pub fn date_days(s: &str, col: &str) -> Result<Option<i64>, FormatError> {
    let mut it = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(FormatError::value(col, "a date", s));
    };
    let (y, m, d) = (
        num(y, s, col, "a date")?,
        num(m, s, col, "a date")?,
        num(d, s, col, "a date")?,
    );
    if m == 0 || d == 0 || m > 12 || d > 31 {
        return Ok(None);
    }
    Ok(Some(days_from_civil(y, m as u32, d as u32)))
}

/// Microseconds of a fraction `f` (up to 6 digits).
fn fraction_us(f: &str, col: &str) -> Result<i64, FormatError> {
    if f.len() > 6 {
        return Err(FormatError::value(col, "a fraction", f));
    }
    let n = num(f, f, col, "a fraction")?;
    Ok(n * 10i64.pow(6 - f.len() as u32))
}

/// `hh:mm:ss[.f]` (hours may exceed 24) as microseconds.
fn clock_us(s: &str, col: &str) -> Result<i64, FormatError> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let (Some(h), Some(m), Some(sec)) = (it.next(), it.next(), it.next()) else {
        return Err(FormatError::value(col, "a time", s));
    };
    let us = if frac.is_empty() {
        0
    } else {
        fraction_us(frac, col)?
    };
    let n = |part| num(part, s, col, "a time");
    Ok(((n(h)? * 60 + n(m)?) * 60 + n(sec)?) * 1_000_000 + us)
}

/// `YYYY-MM-DDThh:mm:ss[.f][Z]` as microseconds since the epoch (the
/// wall clock read as UTC); `None` for a zero date.
pub fn datetime_us(s: &str, col: &str) -> Result<Option<i64>, FormatError> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let Some((d, t)) = s.split_once('T') else {
        return Err(FormatError::value(col, "a datetime", s));
    };
    let Some(days) = date_days(d, col)? else {
        return Ok(None);
    };
    Ok(Some(days * 86_400_000_000 + clock_us(t, col)?))
}

/// `[-]hhh:mm:ss[.f]` as (signed) microseconds.
pub fn time_us(s: &str, col: &str) -> Result<i64, FormatError> {
    match s.strip_prefix('-') {
        Some(rest) => Ok(-clock_us(rest, col)?),
        None => clock_us(s, col),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_convert_like_java_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date_days("2024-02-29", "c").unwrap(), Some(19_782));
        assert_eq!(date_days("1000-01-01", "c").unwrap(), Some(-354_285));
        assert_eq!(date_days("9999-12-31", "c").unwrap(), Some(2_932_896));
        assert_eq!(date_days("0000-00-00", "c").unwrap(), None);
        assert_eq!(date_days("2024-00-05", "c").unwrap(), None);
        assert!(date_days("2024-1", "c").is_err());
        assert!(date_days("20x4-01-01", "c").is_err());
        assert_eq!(
            datetime_us("1970-01-01T00:00:01.5", "c").unwrap(),
            Some(1_500_000)
        );
        assert_eq!(
            datetime_us("2024-01-02T03:04:05.000120Z", "c").unwrap(),
            Some(1_704_164_645_000_120)
        );
        assert_eq!(datetime_us("0000-00-00T00:00:00", "c").unwrap(), None);
        assert_eq!(time_us("-838:59:59", "c").unwrap(), -3_020_399_000_000);
        assert_eq!(time_us("12:00:00.5", "c").unwrap(), 43_200_500_000);
        assert_eq!(time_us("00:00:00", "c").unwrap(), 0);
        let e = time_us("12:00", "tm").unwrap_err().to_string();
        assert!(e.contains("tm") && e.contains("12:00"), "{e}");
    }

    #[test]
    fn strings_and_base64_round_trip() {
        let raw = RawValue::from_string(r#""a\"b\u00e9""#.into()).unwrap();
        assert_eq!(string(&raw, "c").unwrap(), "a\"bé");
        let raw = RawValue::from_string(r#""plain""#.into()).unwrap();
        assert!(matches!(
            string(&raw, "c").unwrap(),
            std::borrow::Cow::Borrowed("plain")
        ));
        let raw = RawValue::from_string("12".into()).unwrap();
        assert!(string(&raw, "c").is_err());
        let mut out = Vec::new();
        push_base64(&mut out, b"\x00\xffab");
        assert_eq!(out, br#""AP9hYg==""#);
        let raw = RawValue::from_string(String::from_utf8(out).unwrap()).unwrap();
        assert_eq!(bytes(&raw, "c").unwrap(), b"\x00\xffab");
    }
}
