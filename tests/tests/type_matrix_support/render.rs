//! The docs/design.md §7 rendering of the text values `SELECT` returns: what a
//! Kafka message must hold, computed without the decoder.

use super::Kind;
use serde_json::{Number, Value};

/// The docs/design.md §7 JSON of a value `SELECT` returned as text (`None`: NULL).
pub fn render(kind: Kind, raw: Option<&[u8]>) -> Value {
    let Some(raw) = raw else {
        return Value::Null;
    };
    let text = String::from_utf8(raw.to_vec()).expect("SELECT text is UTF-8");
    let number = |t: &str| -> Value {
        if let Some(neg) = t.strip_prefix('-') {
            let v: i64 = neg.parse::<i64>().map(|v| -v).unwrap_or_else(|_| {
                t.parse()
                    .unwrap_or_else(|e| panic!("integer text {t:?}: {e}"))
            });
            Value::from(v)
        } else {
            Value::from(
                t.parse::<u64>()
                    .unwrap_or_else(|e| panic!("integer text {t:?}: {e}")),
            )
        }
    };
    match kind {
        Kind::Int | Kind::Year | Kind::Bit => number(&text),
        Kind::Decimal | Kind::AsText | Kind::Text => Value::String(text),
        Kind::Float | Kind::Double => float(text.parse::<f64>().expect("FLOAT/DOUBLE text")),
        Kind::DateTime => Value::String(text.replacen(' ', "T", 1)),
        Kind::Timestamp(fsp) => Value::String(utc_text(&text, fsp)),
        Kind::Bytes | Kind::Geometry => Value::String(base64(&unhex(&text))),
        Kind::Json => serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("JSON column text is not JSON ({e}): {text}")),
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// `UNIX_TIMESTAMP` text (`"1700000000.123"`) as `"2023-11-14T22:13:20.123Z"`,
/// with exactly `fsp` fraction digits; 0 is the zero timestamp.
fn utc_text(unix: &str, fsp: u8) -> String {
    let (secs, frac) = unix.split_once('.').unwrap_or((unix, ""));
    let secs: i64 = secs.parse().expect("UNIX_TIMESTAMP seconds");
    let date_time = if secs == 0 {
        "0000-00-00T00:00:00".to_string()
    } else {
        // an independent date library, not the decoder's calendar routine
        let t = time::OffsetDateTime::from_unix_timestamp(secs).expect("UNIX_TIMESTAMP in range");
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let mut digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    digits.truncate(fsp as usize);
    if fsp == 0 {
        format!("{date_time}Z")
    } else {
        format!("{date_time}.{digits}Z")
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("HEX() text"))
        .collect()
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_by_design_rules() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"\x00\xff"), "AP8=");
        assert_eq!(base64(b"ab\0\0"), "YWIAAA==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(
            utc_text("2147483647.999999", 6),
            "2038-01-19T03:14:07.999999Z"
        );
        assert_eq!(utc_text("1", 0), "1970-01-01T00:00:01Z");
        assert_eq!(utc_text("0.000", 3), "0000-00-00T00:00:00.000Z");
        assert_eq!(utc_text("951782400.5", 2), "2000-02-29T00:00:00.50Z");
        assert_eq!(
            render(Kind::Int, Some(b"-9223372036854775808")),
            Value::from(i64::MIN)
        );
        assert_eq!(
            render(Kind::Int, Some(b"18446744073709551615")),
            Value::from(u64::MAX)
        );
        assert_eq!(
            render(Kind::DateTime, Some(b"2024-01-02 03:04:05.120")),
            "2024-01-02T03:04:05.120"
        );
        assert_eq!(render(Kind::Bytes, Some(b"00FF")), "AP8=");
        assert_eq!(
            render(Kind::Json, Some(b"{\"a\":[1]}")),
            serde_json::json!({"a": [1]})
        );
        assert_eq!(render(Kind::Text, None), Value::Null);
    }
}
