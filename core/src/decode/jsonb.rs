//! MySQL binary JSON (column type 245) to JSON text.
//!
//! In: the stored JSONB document. Out: compact JSON text appended to a
//! buffer, object members in stored order (MySQL sorts keys by length, then
//! bytes). Scalars inside: integers and doubles as numbers, strings
//! escaped, and the "opaque" MySQL values the way MySQL prints them:
//! DECIMAL as a number with its scale, DATE `"2015-01-15"`, TIME
//! `"23:24:25.000000"`, DATETIME/TIMESTAMP `"2015-01-15 23:24:25.000000"`,
//! anything else `"base64:type<N>:<data>"`. An empty document is `null`
//! (MySQL reads it so). Nesting is limited to [`MAX_DEPTH`] levels.
//!
//! Written here rather than taken from mysql_common's `jsonb` so that
//! nothing is allocated per value and opaque values do not fail.

use super::charset::{escape_utf8, write_json_str};
use super::temporal::{push_packed_datetime, push_packed_time};

/// Deeper documents are rejected (MySQL itself allows 100).
pub const MAX_DEPTH: usize = 150;

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

type Res = Result<(), &'static str>;

/// Appends the JSON text of the JSONB document `doc`.
pub fn write_jsonb(out: &mut Vec<u8>, doc: &[u8]) -> Res {
    match doc.split_first() {
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        Some((&t, rest)) => write_value(out, t, rest, 0),
    }
}

fn get(data: &[u8], at: usize, n: usize) -> Result<&[u8], &'static str> {
    at.checked_add(n)
        .and_then(|end| data.get(at..end))
        .ok_or("truncated json")
}

fn uint_at(data: &[u8], at: usize, large: bool) -> Result<usize, &'static str> {
    Ok(if large {
        u32::from_le_bytes(get(data, at, 4)?.try_into().map_err(|_| "json")?) as usize
    } else {
        u16::from_le_bytes(get(data, at, 2)?.try_into().map_err(|_| "json")?) as usize
    })
}

/// Variable-length size: 7 bits per byte, low bits first, at most 5 bytes.
fn var_len(data: &[u8]) -> Result<(usize, usize), &'static str> {
    let mut len = 0usize;
    for i in 0..5 {
        let b = *data.get(i).ok_or("truncated json length")?;
        len |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((len, i + 1));
        }
    }
    Err("bad json length")
}

fn write_value(out: &mut Vec<u8>, t: u8, data: &[u8], depth: usize) -> Res {
    match t {
        SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => {
            if depth >= MAX_DEPTH {
                return Err("json nested too deep");
            }
            write_container(out, t, data, depth + 1)
        }
        LITERAL => write_literal(out, *data.first().ok_or("truncated json literal")?),
        INT16 => write_int(out, i64::from(i16::from_le_bytes(fixed(data)?))),
        UINT16 => write_int(out, i64::from(u16::from_le_bytes(fixed(data)?))),
        INT32 => write_int(out, i64::from(i32::from_le_bytes(fixed(data)?))),
        UINT32 => write_int(out, i64::from(u32::from_le_bytes(fixed(data)?))),
        INT64 => write_int(out, i64::from_le_bytes(fixed(data)?)),
        UINT64 => {
            let v = u64::from_le_bytes(fixed(data)?);
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        }
        DOUBLE => {
            super::float::write_f64(out, f64::from_le_bytes(fixed(data)?));
            Ok(())
        }
        STRING => {
            let (len, n) = var_len(data)?;
            let s = get(data, n, len)?;
            out.push(b'"');
            super::charset::escape_text(out, s, super::charset::Charset::Utf8);
            out.push(b'"');
            Ok(())
        }
        OPAQUE => {
            let (&ty, rest) = data.split_first().ok_or("truncated json opaque")?;
            let (len, n) = var_len(rest)?;
            write_opaque(out, ty, get(rest, n, len)?)
        }
        _ => Err("unknown json value type"),
    }
}

fn fixed<const N: usize>(data: &[u8]) -> Result<[u8; N], &'static str> {
    data.first_chunk::<N>()
        .copied()
        .ok_or("truncated json number")
}

fn write_int(out: &mut Vec<u8>, v: i64) -> Res {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    Ok(())
}

fn write_literal(out: &mut Vec<u8>, lit: u8) -> Res {
    out.extend_from_slice(match lit {
        0 => b"null".as_slice(),
        1 => b"true",
        2 => b"false",
        _ => return Err("bad json literal"),
    });
    Ok(())
}

fn write_container(out: &mut Vec<u8>, t: u8, data: &[u8], depth: usize) -> Res {
    let large = t == LARGE_OBJECT || t == LARGE_ARRAY;
    let object = t == SMALL_OBJECT || t == LARGE_OBJECT;
    let off = if large { 4 } else { 2 };
    let count = uint_at(data, 0, large)?;
    let size = uint_at(data, off, large)?;
    let data = data.get(..size).ok_or("truncated json container")?;
    let header = 2 * off;
    let key_entries = if object { count * (off + 2) } else { 0 };
    let value_entry = 1 + off;
    if header + key_entries + count * value_entry > size {
        return Err("json container header exceeds its size");
    }
    out.push(if object { b'{' } else { b'[' });
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        if object {
            let e = header + i * (off + 2);
            let key_off = uint_at(data, e, large)?;
            let key_len = uint_at(data, e + off, false)?;
            let key = get(data, key_off, key_len)?;
            out.push(b'"');
            match std::str::from_utf8(key) {
                Ok(_) => escape_utf8(out, key),
                Err(_) => return Err("json key is not utf-8"),
            }
            out.extend_from_slice(b"\":");
        }
        let e = header + key_entries + i * value_entry;
        let vt = data[e];
        let inlined = match vt {
            LITERAL | INT16 | UINT16 => true,
            INT32 | UINT32 => large,
            _ => false,
        };
        if inlined {
            write_value(out, vt, &data[e + 1..e + 1 + off], depth)?;
        } else {
            let at = uint_at(data, e + 1, large)?;
            let v = data.get(at..).ok_or("json value offset out of range")?;
            write_value(out, vt, v, depth)?;
        }
    }
    out.push(if object { b'}' } else { b']' });
    Ok(())
}

fn write_opaque(out: &mut Vec<u8>, ty: u8, data: &[u8]) -> Res {
    const NEWDECIMAL: u8 = 246;
    const DATE: u8 = 10;
    const TIME: u8 = 11;
    const DATETIME: u8 = 12;
    const TIMESTAMP: u8 = 7;
    match ty {
        NEWDECIMAL => {
            let [p, s] = fixed::<2>(data)?;
            if s > p || p > super::decimal::MAX_PRECISION {
                return Err("bad json decimal");
            }
            let size = super::decimal::bin_size(p, s);
            super::decimal::decimal_text(out, get(data, 2, size)?, p, s)
        }
        DATE | TIME | DATETIME | TIMESTAMP => {
            let packed = i64::from_le_bytes(fixed(data)?);
            out.push(b'"');
            match ty {
                DATE => push_packed_datetime(out, packed, 0, 0),
                TIME => push_packed_time(out, packed, 6),
                _ => push_packed_datetime(out, packed, b' ', 6),
            }
            out.push(b'"');
            Ok(())
        }
        _ => {
            use base64::Engine;
            let text = format!(
                "base64:type{}:{}",
                ty,
                base64::engine::general_purpose::STANDARD.encode(data)
            );
            write_json_str(out, &text);
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Small JSONB builder for tests (always small containers).
    pub(crate) enum J {
        Null,
        Bool(bool),
        I(i64),
        U(u64),
        D(f64),
        S(&'static str),
        A(Vec<J>),
        O(Vec<(&'static str, J)>),
        Opaque(u8, Vec<u8>),
    }

    pub(crate) fn encode(j: &J) -> Vec<u8> {
        let (t, body) = enc(j);
        let mut v = vec![t];
        v.extend(body);
        v
    }

    fn var_len_bytes(mut n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                return v;
            }
            v.push(b | 0x80);
        }
    }

    fn enc(j: &J) -> (u8, Vec<u8>) {
        match j {
            J::Null => (LITERAL, vec![0]),
            J::Bool(b) => (LITERAL, vec![if *b { 1 } else { 2 }]),
            J::I(v) => (INT64, v.to_le_bytes().to_vec()),
            J::U(v) => (UINT64, v.to_le_bytes().to_vec()),
            J::D(v) => (DOUBLE, v.to_le_bytes().to_vec()),
            J::S(s) => {
                let mut b = var_len_bytes(s.len());
                b.extend_from_slice(s.as_bytes());
                (STRING, b)
            }
            J::Opaque(ty, data) => {
                let mut b = vec![*ty];
                b.extend(var_len_bytes(data.len()));
                b.extend_from_slice(data);
                (OPAQUE, b)
            }
            J::A(items) => container(false, items.iter().map(|j| ("", j)).collect()),
            J::O(members) => container(true, members.iter().map(|(k, j)| (*k, j)).collect()),
        }
    }

    fn container(object: bool, members: Vec<(&str, &J)>) -> (u8, Vec<u8>) {
        let n = members.len();
        let header = 4 + if object { n * 4 } else { 0 } + n * 3;
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut entries = Vec::new();
        let mut key_entries = Vec::new();
        let keys_start = header;
        let total_keys: usize = members.iter().map(|(k, _)| k.len()).sum();
        for (k, _) in &members {
            if object {
                key_entries.extend_from_slice(&((keys_start + keys.len()) as u16).to_le_bytes());
                key_entries.extend_from_slice(&(k.len() as u16).to_le_bytes());
                keys.extend_from_slice(k.as_bytes());
            }
        }
        let values_start = header + if object { total_keys } else { 0 };
        for (_, j) in &members {
            let (t, body) = enc(j);
            entries.push(t);
            if t == LITERAL {
                entries.extend_from_slice(&[body[0], 0]);
            } else {
                entries.extend_from_slice(&((values_start + values.len()) as u16).to_le_bytes());
                values.extend(body);
            }
        }
        let size = values_start + values.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&(size as u16).to_le_bytes());
        out.extend(key_entries);
        out.extend(entries);
        out.extend(keys);
        out.extend(values);
        (if object { SMALL_OBJECT } else { SMALL_ARRAY }, out)
    }

    fn text(doc: &[u8]) -> String {
        let mut out = Vec::new();
        write_jsonb(&mut out, doc).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn documents() {
        let doc = J::O(vec![
            (
                "a",
                J::A(vec![
                    J::I(1),
                    J::D(2.5),
                    J::S("x\"y"),
                    J::Null,
                    J::Bool(true),
                ]),
            ),
            ("bb", J::O(vec![])),
            ("u", J::U(u64::MAX)),
        ]);
        assert_eq!(
            text(&encode(&doc)),
            r#"{"a":[1,2.5,"x\"y",null,true],"bb":{},"u":18446744073709551615}"#
        );
        assert_eq!(text(&[]), "null");
        assert_eq!(text(&encode(&J::S("ü"))), "\"ü\"");
        assert_eq!(text(&[INT16, 0xff, 0xff]), "-1");
        assert_eq!(text(&[UINT32, 0xff, 0xff, 0xff, 0xff]), "4294967295");
    }

    #[test]
    fn inline_values_in_small_and_large_containers() {
        // Small array [int16 -2, uint16 7].
        let small = [SMALL_ARRAY, 2, 0, 10, 0, INT16, 0xfe, 0xff, UINT16, 7, 0];
        assert_eq!(text(&small), "[-2,7]");
        // Large array [int32 -3, literal false].
        let mut large = vec![LARGE_ARRAY];
        large.extend_from_slice(&2u32.to_le_bytes());
        large.extend_from_slice(&18u32.to_le_bytes());
        large.push(INT32);
        large.extend_from_slice(&(-3i32).to_le_bytes());
        large.push(LITERAL);
        large.extend_from_slice(&[2, 0, 0, 0]);
        assert_eq!(text(&large), "[-3,false]");
    }

    #[test]
    fn opaque_values() {
        let mut dec = vec![5, 2];
        dec.extend(crate::decode::decimal::tests::encode("-1.50", 5, 2));
        let dt = {
            let ym = 2015 * 13 + 1u64;
            let ymdhms = (((ym << 5) | 15) << 17) | (23 << 12) | (24 << 6) | 25;
            ((ymdhms << 24) | 5) as i64
        };
        let time = -((((1i64 << 12) | (2 << 6) | 3) << 24) + 500_000);
        let doc = J::A(vec![
            J::Opaque(246, dec),
            J::Opaque(12, dt.to_le_bytes().to_vec()),
            J::Opaque(10, (dt & !0x1FFFF_FFFFFF).to_le_bytes().to_vec()),
            J::Opaque(11, time.to_le_bytes().to_vec()),
            J::Opaque(252, vec![1, 2, 3]),
        ]);
        assert_eq!(
            text(&encode(&doc)),
            r#"[-1.50,"2015-01-15 23:24:25.000005","2015-01-15","-01:02:03.500000","base64:type252:AQID"]"#
        );
    }

    #[test]
    fn malformed() {
        let mut out = Vec::new();
        assert!(write_jsonb(&mut out, &[SMALL_ARRAY, 5, 0, 100, 0]).is_err());
        assert!(write_jsonb(&mut out, &[0x42]).is_err());
        assert!(write_jsonb(&mut out, &[STRING, 10, b'a']).is_err());
        assert!(write_jsonb(&mut out, &[LITERAL, 9]).is_err());
        // A chain of nested arrays deeper than MAX_DEPTH.
        let mut doc = vec![LITERAL, 0];
        for _ in 0..MAX_DEPTH + 1 {
            let inner = doc.clone();
            let size = 4 + 3 + inner.len() - 1;
            let mut d = vec![SMALL_ARRAY, 1, 0];
            d.extend_from_slice(&(size as u16).to_le_bytes());
            d.push(inner[0]);
            d.extend_from_slice(&7u16.to_le_bytes());
            d.extend_from_slice(&inner[1..]);
            doc = d;
        }
        assert_eq!(write_jsonb(&mut out, &doc), Err("json nested too deep"));
    }
}
