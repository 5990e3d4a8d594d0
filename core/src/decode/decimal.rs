//! MySQL binary DECIMAL (NEWDECIMAL, type 246) to exact decimal text.
//!
//! The value is stored big endian in groups of 9 decimal digits (4 bytes
//! each); the leading integer digits and the trailing fraction digits that do
//! not fill a group take `DIG2BYTES[n]` bytes. The sign is the inverted top
//! bit of the first byte; negative values have every byte inverted. Output
//! has no leading zeros (but "0" before the point) and exactly `scale`
//! fraction digits: `"0.50"`, `"-12.000"`, `"7"`.

use super::cursor::Cursor;

const DIG_PER_DEC: usize = 9;
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Maximum precision (digits) of a DECIMAL column.
pub const MAX_PRECISION: u8 = 65;
/// Maximum scale of a DECIMAL column.
pub const MAX_SCALE: u8 = 30;

/// Stored size in bytes of a DECIMAL(precision, scale).
pub fn bin_size(precision: u8, scale: u8) -> usize {
    let intg = precision.saturating_sub(scale) as usize;
    let frac = scale as usize;
    (intg / DIG_PER_DEC) * 4
        + DIG2BYTES[intg % DIG_PER_DEC]
        + (frac / DIG_PER_DEC) * 4
        + DIG2BYTES[frac % DIG_PER_DEC]
}

#[inline]
fn be_uint(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

/// Writes `v` as exactly `digits` decimal digits (zero padded).
#[inline]
fn write_padded(out: &mut Vec<u8>, mut v: u32, digits: usize) {
    let start = out.len();
    out.resize(start + digits, b'0');
    let mut i = start + digits;
    while v > 0 && i > start {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Reads a DECIMAL(precision, scale) from `c` and appends its text to
/// `out`. Fails if the body is short or a digit group is out of range.
/// The caller has checked `scale <= precision <= 65`.
pub(crate) fn write_decimal(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    precision: u8,
    scale: u8,
) -> Result<(), &'static str> {
    let size = bin_size(precision, scale);
    let raw = c.bytes(size, "decimal").map_err(|_| "truncated decimal")?;
    decimal_text(out, raw, precision, scale)
}

/// Appends the text of the binary decimal `raw` (exactly `bin_size` bytes).
pub fn decimal_text(
    out: &mut Vec<u8>,
    raw: &[u8],
    precision: u8,
    scale: u8,
) -> Result<(), &'static str> {
    let size = bin_size(precision, scale);
    if raw.len() != size || size == 0 || size > 32 {
        return Err("bad decimal size");
    }
    let mut buf = [0u8; 32];
    let buf = &mut buf[..size];
    buf.copy_from_slice(raw);
    let negative = buf[0] & 0x80 == 0;
    buf[0] ^= 0x80;
    if negative {
        for b in buf.iter_mut() {
            *b = !*b;
        }
    }

    let intg = (precision - scale) as usize;
    let (intg0, intg0x) = (intg / DIG_PER_DEC, intg % DIG_PER_DEC);
    let (frac0, frac0x) = (scale as usize / DIG_PER_DEC, scale as usize % DIG_PER_DEC);

    let start = out.len();
    if negative {
        out.push(b'-');
    }
    let mut pos = 0;
    let mut started = false;
    let mut nonzero = false;
    let mut itoa = itoa::Buffer::new();

    if intg0x > 0 {
        let n = DIG2BYTES[intg0x];
        let v = be_uint(&buf[pos..pos + n]);
        pos += n;
        if v >= POW10[intg0x] {
            return Err("decimal digit group out of range");
        }
        if v > 0 {
            out.extend_from_slice(itoa.format(v).as_bytes());
            started = true;
            nonzero = true;
        }
    }
    for _ in 0..intg0 {
        let v = be_uint(&buf[pos..pos + 4]);
        pos += 4;
        if v >= POW10[9] {
            return Err("decimal digit group out of range");
        }
        if started {
            write_padded(out, v, 9);
        } else if v > 0 {
            out.extend_from_slice(itoa.format(v).as_bytes());
            started = true;
            nonzero = true;
        }
    }
    if !started {
        out.push(b'0');
    }
    if scale > 0 {
        out.push(b'.');
        for _ in 0..frac0 {
            let v = be_uint(&buf[pos..pos + 4]);
            pos += 4;
            if v >= POW10[9] {
                return Err("decimal digit group out of range");
            }
            nonzero |= v > 0;
            write_padded(out, v, 9);
        }
        if frac0x > 0 {
            let n = DIG2BYTES[frac0x];
            let v = be_uint(&buf[pos..pos + n]);
            if v >= POW10[frac0x] {
                return Err("decimal digit group out of range");
            }
            nonzero |= v > 0;
            write_padded(out, v, frac0x);
        }
    }
    if negative && !nonzero {
        // "-0.00" is stored by nobody sane; print zero without a sign.
        out.remove(start);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes decimal text the way MySQL stores it (for tests).
    pub(crate) fn encode(text: &str, precision: u8, scale: u8) -> Vec<u8> {
        let negative = text.starts_with('-');
        let text = text.trim_start_matches('-');
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
        let intg = (precision - scale) as usize;
        let int_part = int_part.trim_start_matches('0');
        let int_digits = format!("{:0>width$}", int_part, width = intg);
        let frac_digits = format!("{:0<width$}", frac_part, width = scale as usize);
        let mut out = Vec::new();
        let push_group = |out: &mut Vec<u8>, digits: &str| {
            let n = DIG2BYTES[digits.len()];
            let v: u32 = digits.parse().unwrap_or(0);
            out.extend_from_slice(&v.to_be_bytes()[4 - n..]);
        };
        let lead = intg % 9;
        if lead > 0 {
            push_group(&mut out, &int_digits[..lead]);
        }
        for g in int_digits.as_bytes()[lead..].chunks(9) {
            push_group(&mut out, std::str::from_utf8(g).unwrap());
        }
        for g in frac_digits.as_bytes().chunks(9) {
            push_group(&mut out, std::str::from_utf8(g).unwrap());
        }
        out[0] ^= 0x80;
        if negative {
            for b in out.iter_mut() {
                *b = !*b;
            }
        }
        assert_eq!(out.len(), bin_size(precision, scale));
        out
    }

    fn text(raw: &[u8], p: u8, s: u8) -> String {
        let mut out = Vec::new();
        decimal_text(&mut out, raw, p, s).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mysql_documented_example() {
        // 1234567890.1234 as DECIMAL(14,4), from the MySQL manual.
        let raw = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(text(&raw, 14, 4), "1234567890.1234");
        let neg: Vec<u8> = raw.iter().map(|b| !b).collect();
        assert_eq!(text(&neg, 14, 4), "-1234567890.1234");
    }

    #[test]
    fn round_trips() {
        for (t, p, s, want) in [
            ("0.50", 10, 2, "0.50"),
            ("-0.50", 10, 2, "-0.50"),
            ("-12", 10, 3, "-12.000"),
            ("0", 5, 0, "0"),
            ("99999", 5, 0, "99999"),
            ("-99999", 5, 0, "-99999"),
            ("0", 10, 2, "0.00"),
            ("-0", 10, 2, "0.00"),
            ("1000000000", 19, 0, "1000000000"),
            (
                "12345678901234567890123456789012345.123456789012345678901234567890",
                65,
                30,
                "12345678901234567890123456789012345.123456789012345678901234567890",
            ),
            (
                "-99999999999999999999999999999999999.999999999999999999999999999999",
                65,
                30,
                "-99999999999999999999999999999999999.999999999999999999999999999999",
            ),
            (
                "0.000000000000000000000000000001",
                65,
                30,
                "0.000000000000000000000000000001",
            ),
            ("0.0000000001", 20, 10, "0.0000000001"),
            ("0.1", 1, 1, "0.1"),
            ("-0.123456789", 9, 9, "-0.123456789"),
            ("100", 30, 30 - 27, "100.000"),
        ] {
            assert_eq!(text(&encode(t, p, s), p, s), want, "{t} ({p},{s})");
        }
    }

    #[test]
    fn bad_groups_and_sizes() {
        let mut out = Vec::new();
        // 0x80 | 0x3B9ACA00 (1e9) in a 9-digit group.
        assert!(decimal_text(&mut out, &[0xBB, 0x9A, 0xCA, 0x00], 9, 0).is_err());
        assert!(decimal_text(&mut out, &[0x80], 9, 0).is_err());
        assert_eq!(bin_size(10, 2), 5);
        assert_eq!(bin_size(65, 30), 30);
    }
}
