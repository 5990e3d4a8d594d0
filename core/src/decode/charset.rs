//! Collations, text conversion to UTF-8, and JSON string escaping.
//!
//! In: the raw bytes of a character column and its collation id (from the
//! table map's optional metadata). Out: a JSON string literal in UTF-8,
//! appended to a buffer. MySQL's `latin1` is Windows-1252; `utf8mb3`,
//! `utf8mb4` and unknown charsets are taken as UTF-8 (invalid sequences
//! become U+FFFD, as `String::from_utf8_lossy` does); UCS-2, UTF-16(LE) and
//! UTF-32 are converted exactly. Collation ids cover MySQL 8 and MariaDB
//! 10.11 (including MariaDB's NOPAD ids 1024+ and UCA-14 ids 2048+).

/// The character set family of a collation, as far as conversion cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb3, utf8mb4 and every charset not listed below.
    Utf8,
    /// latin1 (really cp1252).
    Latin1,
    Ascii,
    /// The `binary` pseudo charset (63): BINARY, VARBINARY, BLOB.
    Binary,
    /// UCS-2 big endian.
    Ucs2,
    /// UTF-16 big endian.
    Utf16,
    /// UTF-16 little endian.
    Utf16Le,
    /// UTF-32 big endian.
    Utf32,
}

/// The collation id of the `binary` charset.
pub const BINARY_COLLATION: u16 = 63;

/// Maps a collation id to its charset family.
pub fn charset_of(collation: u16) -> Charset {
    match collation {
        63 => Charset::Binary,
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 | 1032 | 1071 => Charset::Latin1,
        11 | 65 | 1035 | 1089 => Charset::Ascii,
        35 | 90 | 128..=151 | 159 | 640..=642 | 1059 | 1114 | 1152 | 1174 | 2560..=2815 => {
            Charset::Ucs2
        }
        54 | 55 | 101..=124 | 672..=674 | 1078 | 1079 | 1125 | 1147 | 2816..=3071 => Charset::Utf16,
        56 | 62 | 1080 | 1086 => Charset::Utf16Le,
        60 | 61 | 160..=183 | 736..=738 | 1084 | 1085 | 1184 | 1206 | 3072..=3327 => Charset::Utf32,
        _ => Charset::Utf8,
    }
}

/// cp1252 code points of bytes 0x80..=0x9F; the five undefined bytes map to
/// the C1 control of the same value, as MySQL does.
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

fn latin1_char(b: u8) -> char {
    match b {
        0x80..=0x9F => char::from_u32(u32::from(CP1252_HIGH[(b - 0x80) as usize]))
            .unwrap_or(char::REPLACEMENT_CHARACTER),
        _ => char::from(b),
    }
}

/// What JSON needs for each byte: 0 none, `u` for `\u00XX`, else the
/// character after the backslash (same escapes as serde_json).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends valid UTF-8 `s` with JSON escapes, without quotes.
#[inline]
pub fn escape_utf8(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if e == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends `s` as a quoted JSON string.
#[inline]
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_utf8(out, s.as_bytes());
    out.push(b'"');
}

/// Appends possibly invalid UTF-8 with escapes, U+FFFD for invalid sequences.
fn escape_utf8_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(_) => escape_utf8(out, bytes),
        Err(_) => {
            for chunk in bytes.utf8_chunks() {
                escape_utf8(out, chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    out.extend_from_slice("\u{FFFD}".as_bytes());
                }
            }
        }
    }
}

#[inline]
fn escape_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    escape_utf8(out, c.encode_utf8(&mut buf).as_bytes());
}

/// Appends the text `bytes` of charset `cs` as a quoted JSON string.
/// `Binary` is treated as UTF-8 here (callers base64 binary columns).
pub fn write_text(out: &mut Vec<u8>, bytes: &[u8], cs: Charset) {
    out.push(b'"');
    escape_text(out, bytes, cs);
    out.push(b'"');
}

/// Like [`write_text`] without the quotes.
pub fn escape_text(out: &mut Vec<u8>, bytes: &[u8], cs: Charset) {
    match cs {
        Charset::Utf8 | Charset::Binary | Charset::Ascii => escape_utf8_lossy(out, bytes),
        Charset::Latin1 => {
            if bytes.is_ascii() {
                escape_utf8(out, bytes);
            } else {
                for &b in bytes {
                    escape_char(out, latin1_char(b));
                }
            }
        }
        Charset::Ucs2 => {
            for unit in bytes.chunks(2) {
                let c = match unit {
                    [a, b] => char::from_u32(u32::from(u16::from_be_bytes([*a, *b]))),
                    _ => None,
                };
                escape_char(out, c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
        Charset::Utf16 | Charset::Utf16Le => {
            let le = cs == Charset::Utf16Le;
            let units = bytes.chunks_exact(2).map(|u| {
                if le {
                    u16::from_le_bytes([u[0], u[1]])
                } else {
                    u16::from_be_bytes([u[0], u[1]])
                }
            });
            for c in char::decode_utf16(units) {
                escape_char(out, c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            if bytes.len() & 1 == 1 {
                escape_char(out, char::REPLACEMENT_CHARACTER);
            }
        }
        Charset::Utf32 => {
            for unit in bytes.chunks(4) {
                let c = match unit {
                    [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
                    _ => None,
                };
                escape_char(out, c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
    }
}

/// Converts text of charset `cs` to a `String` (used for ENUM/SET labels).
pub fn decode_text(bytes: &[u8], cs: Charset) -> String {
    match cs {
        Charset::Utf8 | Charset::Binary | Charset::Ascii => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        _ => {
            // Reuse the escaping converter and undo the quoting via serde_json.
            let mut json = Vec::with_capacity(bytes.len() + 2);
            write_text(&mut json, bytes, cs);
            serde_json::from_slice(&json).unwrap_or_default()
        }
    }
}

/// Appends `bytes` as a quoted standard base64 (with padding) JSON string.
pub fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    use base64::Engine;
    out.push(b'"');
    let start = out.len();
    let len = bytes.len().div_ceil(3) * 4;
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8], cs: Charset) -> String {
        let mut out = Vec::new();
        write_text(&mut out, bytes, cs);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        let s = "a\"b\\c\n\t\r\u{8}\u{c}\u{1}\u{1f} ✓ 😀\u{7f}";
        assert_eq!(
            text(s.as_bytes(), Charset::Utf8),
            serde_json::to_string(s).unwrap()
        );
    }

    #[test]
    fn lossy_utf8() {
        assert_eq!(
            text(b"a\xffb\xe2\x9c", Charset::Utf8),
            "\"a\u{FFFD}b\u{FFFD}\""
        );
    }

    #[test]
    fn latin1_is_cp1252() {
        assert_eq!(text(b"caf\xe9", Charset::Latin1), "\"café\"");
        assert_eq!(
            text(b"\x80\x81\x9f\xa0\xff", Charset::Latin1),
            "\"€\u{81}Ÿ\u{a0}ÿ\""
        );
        assert_eq!(charset_of(8), Charset::Latin1);
        assert_eq!(charset_of(1032), Charset::Latin1);
        assert_eq!(charset_of(45), Charset::Utf8);
        assert_eq!(charset_of(255), Charset::Utf8);
        assert_eq!(charset_of(2304), Charset::Utf8);
        assert_eq!(charset_of(63), Charset::Binary);
    }

    #[test]
    fn wide_charsets() {
        assert_eq!(text(&[0, b'h', 0, 0xe9], Charset::Ucs2), "\"hé\"");
        assert_eq!(
            text(&[0xd8, 0x3d, 0xde, 0x00, 0, b'"'], Charset::Utf16),
            "\"😀\\\"\""
        );
        assert_eq!(text(&[b'h', 0, 0xe9, 0], Charset::Utf16Le), "\"hé\"");
        assert_eq!(text(&[0, 1, 0xf6, 0], Charset::Utf32), "\"😀\"");
        assert_eq!(text(&[0, 1, 0xf6], Charset::Utf32), "\"\u{FFFD}\"");
        assert_eq!(charset_of(54), Charset::Utf16);
        assert_eq!(charset_of(2816), Charset::Utf16);
        assert_eq!(charset_of(160), Charset::Utf32);
    }

    #[test]
    fn labels_and_base64() {
        assert_eq!(decode_text(b"\xe4", Charset::Latin1), "ä");
        assert_eq!(decode_text("α".as_bytes(), Charset::Utf8), "α");
        let mut out = Vec::new();
        write_base64(&mut out, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(out, b"\"3q2+7w==\"");
        out.clear();
        write_base64(&mut out, &[]);
        assert_eq!(out, b"\"\"");
    }
}
