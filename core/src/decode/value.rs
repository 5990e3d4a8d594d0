//! One stored column value to JSON text, by column type (docs/design.md §7).
//!
//! In: a cursor at the value inside a row image and the [`Column`] from the
//! table map. Out: the JSON text appended to the image buffer, the cursor
//! moved past the value. NULLs never get here (the null bitmap handles
//! them). Per type, with the `Column::meta` each one uses:
//!
//! | type (code) | meta | JSON |
//! |---|---|---|
//! | TINY 1, SHORT 2, INT24 9, LONG 3, LONGLONG 8 | – | number, signed or unsigned |
//! | YEAR 13 | – | number, 0 or 1901..2155 |
//! | NEWDECIMAL 246 | precision << 8 \| scale | string with exactly `scale` digits |
//! | FLOAT 4, DOUBLE 5 | 4 / 8 | shortest round-trip number |
//! | BIT 16 | bytes << 8 \| bits | unsigned number |
//! | DATE 10, NEWDATE 14 | – | `"YYYY-MM-DD"` |
//! | DATETIME2 18 / DATETIME 12 | fsp / – | `"YYYY-MM-DDThh:mm:ss[.f]"` |
//! | TIMESTAMP2 17 / TIMESTAMP 7 | fsp / – | `"YYYY-MM-DDThh:mm:ss[.f]Z"` (UTC) |
//! | TIME2 19 / TIME 11 | fsp / – | `"[-]hh:mm:ss[.f]"` |
//! | STRING 254 (CHAR, BINARY) | max length in bytes | text, or base64 of the zero-padded value for BINARY |
//! | ENUM 247 | storage bytes (1, 2) | label (`""` for index 0) |
//! | SET 248 | storage bytes (1..8) | labels joined by `,` |
//! | VARCHAR 15, VAR_STRING 253 | max length in bytes | text, or base64 for binary |
//! | BLOB 252 | length bytes (1..4) | text, or base64 for binary |
//! | GEOMETRY 255 | length bytes | base64 of the WKB (SRID stripped) |
//! | JSON 245 | length bytes | JSON value |
//!
//! Text is converted from the column's collation (see `charset`); a column
//! with `json_text` set emits valid JSON text as a raw JSON value. Without
//! ENUM/SET labels (no optional metadata) the index or bit mask is emitted
//! as a number.

use super::charset::{charset_of, write_base64, write_json_str, write_text, Charset};
use super::codes::{bit_len, column as types};
use super::column::Column;
use super::cursor::Cursor;
use super::error::DecodeError;
use super::float::{write_f32, write_f64};
use super::{decimal, jsonb, temporal};

#[inline]
fn push_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An integer column: `unsigned` as read, else its two's-complement reading.
#[inline]
fn push_either<U: itoa::Integer, S: itoa::Integer>(out: &mut Vec<u8>, unsigned: bool, u: U, s: S) {
    if unsigned {
        push_int(out, u)
    } else {
        push_int(out, s)
    }
}

/// Reads `n` length bytes (1..=4, little endian) and then that many bytes.
#[inline]
fn length_prefixed<'a>(c: &mut Cursor<'a>, n: usize) -> Result<&'a [u8], &'static str> {
    let len = c.uint_n(n, "length").map_err(|_| "truncated length")? as usize;
    c.bytes(len, "value").map_err(|_| "truncated value")
}

/// Text or binary, by collation; `json_text` columns as raw JSON when valid.
#[inline]
fn write_string(out: &mut Vec<u8>, bytes: &[u8], col: &Column) {
    let cs = col.charset.map(charset_of).unwrap_or(Charset::Utf8);
    if cs == Charset::Binary {
        write_base64(out, bytes);
    } else if col.json_text
        && cs == Charset::Utf8
        && std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        out.extend_from_slice(bytes);
    } else {
        write_text(out, bytes, cs);
    }
}

/// Decodes the value of `col` at `c` and appends its JSON text.
#[inline]
pub(crate) fn write_value(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    col: &Column,
    index: usize,
) -> Result<(), DecodeError> {
    write_value_inner(out, c, col, index).map_err(|e| match e {
        Fail::Value(what) => DecodeError::BadValue {
            column: col.name.clone(),
            what,
        },
        Fail::Type => DecodeError::UnknownColumnType {
            ty: col.type_code,
            column: index,
        },
    })
}

enum Fail {
    Value(&'static str),
    Type,
}

impl From<&'static str> for Fail {
    fn from(what: &'static str) -> Self {
        Fail::Value(what)
    }
}

impl From<DecodeError> for Fail {
    fn from(_: DecodeError) -> Self {
        Fail::Value("truncated value")
    }
}

fn write_value_inner(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    col: &Column,
    _index: usize,
) -> Result<(), Fail> {
    let t = "value";
    match col.type_code {
        types::LONG => {
            let v = c.u32(t)?;
            push_either(out, col.unsigned, v, v as i32)
        }
        types::LONGLONG => {
            let v = c.u64(t)?;
            push_either(out, col.unsigned, v, v as i64)
        }
        types::TINY => {
            let v = c.u8(t)?;
            push_either(out, col.unsigned, v, v as i8)
        }
        types::SHORT => {
            let v = c.u16(t)?;
            push_either(out, col.unsigned, v, v as i16)
        }
        types::INT24 => {
            let v = c.u24(t)?;
            push_either(out, col.unsigned, v, ((v << 8) as i32) >> 8)
        }
        types::YEAR => {
            let v = c.u8(t)?;
            push_int(out, if v == 0 { 0 } else { 1900 + u32::from(v) })
        }
        types::NEWDECIMAL => {
            out.push(b'"');
            decimal::write_decimal(out, c, (col.meta >> 8) as u8, col.meta as u8)?;
            out.push(b'"');
        }
        types::FLOAT => write_f32(out, f32::from_le_bytes(c.array(t)?)),
        types::DOUBLE => write_f64(out, f64::from_le_bytes(c.array(t)?)),
        types::BIT => {
            let len = bit_len(col.meta);
            let b = c.bytes(len, t)?;
            push_int(out, b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)));
        }
        types::DATE | types::NEWDATE => temporal::write_date(out, c)?,
        types::DATETIME2 => temporal::write_datetime2(out, c, col.meta as u8)?,
        types::DATETIME => temporal::write_datetime_old(out, c)?,
        types::TIMESTAMP2 => temporal::write_timestamp2(out, c, col.meta as u8)?,
        types::TIMESTAMP => temporal::write_timestamp_old(out, c)?,
        types::TIME2 => temporal::write_time2(out, c, col.meta as u8)?,
        types::TIME => temporal::write_time_old(out, c)?,
        types::VARCHAR | types::VAR_STRING => {
            let n = if col.meta < 256 { 1 } else { 2 };
            let bytes = length_prefixed(c, n)?;
            write_string(out, bytes, col);
        }
        types::STRING => {
            let n = if col.meta < 256 { 1 } else { 2 };
            let bytes = length_prefixed(c, n)?;
            if col.charset == Some(super::charset::BINARY_COLLATION)
                && bytes.len() < col.meta as usize
            {
                // BINARY(n) drops trailing zero bytes; SELECT gives them back.
                let mut padded = [0u8; 256];
                let want = (col.meta as usize).min(padded.len());
                padded[..bytes.len()].copy_from_slice(bytes);
                write_base64(out, &padded[..want]);
            } else {
                write_string(out, bytes, col);
            }
        }
        types::BLOB | types::TINY_BLOB | types::MEDIUM_BLOB | types::LONG_BLOB => {
            let bytes = length_prefixed(c, col.meta as usize)?;
            write_string(out, bytes, col);
        }
        types::GEOMETRY => {
            let bytes = length_prefixed(c, col.meta as usize)?;
            let wkb = bytes.get(4..).ok_or("geometry shorter than its SRID")?;
            write_base64(out, wkb);
        }
        types::JSON => {
            let bytes = length_prefixed(c, col.meta as usize)?;
            jsonb::write_jsonb(out, bytes)?;
        }
        types::ENUM => {
            let idx = c.uint_n(col.meta as usize, t)? as usize;
            if col.enum_values.is_empty() {
                push_int(out, idx);
            } else if idx == 0 {
                out.extend_from_slice(b"\"\"");
            } else {
                let label = col
                    .enum_values
                    .get(idx - 1)
                    .ok_or("enum index out of range")?;
                write_json_str(out, label);
            }
        }
        types::SET => {
            let mask = c.uint_n(col.meta as usize, t)?;
            if col.set_values.is_empty() {
                push_int(out, mask);
            } else {
                out.push(b'"');
                let mut first = true;
                for (i, label) in col.set_values.iter().enumerate().take(64) {
                    if mask & (1 << i) != 0 {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        super::charset::escape_utf8(out, label.as_bytes());
                    }
                }
                out.push(b'"');
            }
        }
        _ => return Err(Fail::Type),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(type_code: u8, meta: u16) -> Column {
        Column::new(0, type_code, meta)
    }

    fn render(col: &Column, bytes: &[u8]) -> Result<String, DecodeError> {
        let mut out = Vec::new();
        let mut c = Cursor::new(bytes);
        write_value(&mut out, &mut c, col, 0)?;
        assert!(c.is_empty(), "bytes left: {:?}", c.rest());
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn integers() {
        let mut c = col(types::LONGLONG, 0);
        assert_eq!(
            render(&c, &i64::MIN.to_le_bytes()).unwrap(),
            "-9223372036854775808"
        );
        c.unsigned = true;
        assert_eq!(
            render(&c, &u64::MAX.to_le_bytes()).unwrap(),
            "18446744073709551615"
        );
        let mut c = col(types::INT24, 0);
        assert_eq!(render(&c, &[0, 0, 0x80]).unwrap(), "-8388608");
        c.unsigned = true;
        assert_eq!(render(&c, &[0xff, 0xff, 0xff]).unwrap(), "16777215");
        assert_eq!(render(&col(types::TINY, 0), &[0x80]).unwrap(), "-128");
        assert_eq!(
            render(&col(types::SHORT, 0), &[0xff, 0x7f]).unwrap(),
            "32767"
        );
        assert_eq!(render(&col(types::YEAR, 0), &[0]).unwrap(), "0");
        assert_eq!(render(&col(types::YEAR, 0), &[255]).unwrap(), "2155");
    }

    #[test]
    fn floats_are_shortest() {
        assert_eq!(
            render(&col(types::FLOAT, 4), &1.1f32.to_le_bytes()).unwrap(),
            "1.1"
        );
        assert_eq!(
            render(&col(types::FLOAT, 4), &(-1.5e-10f32).to_le_bytes()).unwrap(),
            "-1.5e-10"
        );
        assert_eq!(
            render(&col(types::FLOAT, 4), &3.0e38f32.to_le_bytes()).unwrap(),
            "3e38"
        );
        assert_eq!(
            render(&col(types::DOUBLE, 8), &0.1f64.to_le_bytes()).unwrap(),
            "0.1"
        );
        assert_eq!(
            render(&col(types::DOUBLE, 8), &1.0f64.to_le_bytes()).unwrap(),
            "1"
        );
        assert_eq!(
            render(&col(types::DOUBLE, 8), &(-0.0f64).to_le_bytes()).unwrap(),
            "-0"
        );
        assert_eq!(
            render(&col(types::DOUBLE, 8), &f64::MAX.to_le_bytes()).unwrap(),
            "1.7976931348623157e308"
        );
        assert_eq!(
            render(&col(types::DOUBLE, 8), &f64::NAN.to_le_bytes()).unwrap(),
            "null"
        );
        for v in [1.1f64, std::f64::consts::PI, 1e-300, 123456.789, 5e-324] {
            let s = render(&col(types::DOUBLE, 8), &v.to_le_bytes()).unwrap();
            assert_eq!(s.parse::<f64>().unwrap(), v);
            let _: serde_json::Value = serde_json::from_str(&s).unwrap();
        }
    }

    #[test]
    fn bits_and_decimals() {
        assert_eq!(render(&col(types::BIT, 1), &[1]).unwrap(), "1");
        assert_eq!(
            render(&col(types::BIT, (1 << 8) | 5), &[0x15, 0x55]).unwrap(),
            "5461"
        );
        assert_eq!(
            render(&col(types::BIT, 8 << 8), &[0xff; 8]).unwrap(),
            "18446744073709551615"
        );
        let c = col(types::NEWDECIMAL, (10 << 8) | 2);
        let raw = crate::decode::decimal::tests::encode("-0.50", 10, 2);
        assert_eq!(render(&c, &raw).unwrap(), "\"-0.50\"");
    }

    #[test]
    fn strings() {
        let mut c = col(types::VARCHAR, 300);
        c.charset = Some(45);
        assert_eq!(render(&c, &[3, 0, b'a', b'"', b'b']).unwrap(), r#""a\"b""#);
        c.charset = Some(8);
        assert_eq!(render(&c, &[1, 0, 0xe9]).unwrap(), "\"é\"");
        c.charset = Some(63);
        assert_eq!(render(&c, &[2, 0, 0, 0xff]).unwrap(), "\"AP8=\"");
        let mut c = col(types::VARCHAR, 20);
        assert_eq!(render(&c, &[2, b'h', b'i']).unwrap(), "\"hi\"");
        c.json_text = true;
        assert_eq!(render(&c, b"\x07{\"a\":1}").unwrap(), "{\"a\":1}");
        assert_eq!(render(&c, b"\x03{x}").unwrap(), "\"{x}\"");
        assert_eq!(render(&c, b"\x03\"\xff\"").unwrap(), "\"\\\"\u{FFFD}\\\"\"");
        // BINARY(4) stored as "ab" comes back zero padded.
        let mut c = col(types::STRING, 4);
        c.charset = Some(63);
        assert_eq!(render(&c, &[2, b'a', b'b']).unwrap(), "\"YWIAAA==\"");
        let mut c = col(types::BLOB, 2);
        c.charset = Some(33);
        assert_eq!(render(&c, &[2, 0, b'o', b'k']).unwrap(), "\"ok\"");
        let c = col(types::GEOMETRY, 4);
        assert_eq!(
            render(&c, &[5, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            "\"AQ==\""
        );
        assert!(render(&c, &[2, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn enums_and_sets() {
        let mut e = col(types::ENUM, 1);
        assert_eq!(render(&e, &[2]).unwrap(), "2");
        e.enum_values = vec!["a".into(), "b\"".into()];
        assert_eq!(render(&e, &[2]).unwrap(), r#""b\"""#);
        assert_eq!(render(&e, &[0]).unwrap(), "\"\"");
        assert!(matches!(
            render(&e, &[3]),
            Err(DecodeError::BadValue { .. })
        ));
        let mut s = col(types::SET, 1);
        s.set_values = vec!["x".into(), "y".into(), "z".into()];
        assert_eq!(render(&s, &[5]).unwrap(), "\"x,z\"");
        assert_eq!(render(&s, &[0]).unwrap(), "\"\"");
    }

    #[test]
    fn errors() {
        assert_eq!(
            render(&col(types::DECIMAL, 0), &[]),
            Err(DecodeError::UnknownColumnType { ty: 0, column: 0 })
        );
        assert!(matches!(
            render(&col(types::LONG, 0), &[1, 2]),
            Err(DecodeError::BadValue { .. })
        ));
        assert!(matches!(
            render(&col(types::VARCHAR, 10), &[5, b'a']),
            Err(DecodeError::BadValue { .. })
        ));
    }
}
