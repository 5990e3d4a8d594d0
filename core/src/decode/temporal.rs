//! DATE, DATETIME, TIMESTAMP and TIME values to ISO-8601 text.
//!
//! In: the stored bytes (the "2" formats of MySQL 5.6.4+ / MariaDB 10.1+,
//! and the old formats) and the column's fractional-second precision
//! (`fsp`, 0..=6). Out: `"2024-02-29"`, `"2024-01-02T03:04:05.120"`,
//! `"2038-01-19T03:14:07Z"` (TIMESTAMP in UTC), `"-838:59:59"`, with
//! exactly `fsp` fraction digits. Zero and partial-zero dates are printed
//! as stored (`"0000-00-00"`, `"2024-00-15"`).

use super::cursor::Cursor;
use replicator_common::civil::civil_from_days;

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn push2(out: &mut Vec<u8>, v: u32) {
    let v = (v % 100) as usize;
    out.extend_from_slice(&DIGITS2[v * 2..v * 2 + 2]);
}

#[inline]
fn push_year(out: &mut Vec<u8>, y: u32) {
    if y < 10_000 {
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(y).as_bytes());
    }
}

/// At least two digits (hours of TIME may be up to 838, or more when
/// garbage is stored).
#[inline]
fn push_hours(out: &mut Vec<u8>, h: u32) {
    if h < 100 {
        push2(out, h);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(h).as_bytes());
    }
}

/// Writes `.` and `fsp` digits of `micros` (0..1_000_000); nothing for fsp 0.
#[inline]
pub(crate) fn push_frac(out: &mut Vec<u8>, micros: u32, fsp: u8) {
    if fsp == 0 {
        return;
    }
    out.push(b'.');
    let mut digits = [b'0'; 6];
    let mut v = micros % 1_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..fsp.min(6) as usize]);
}

pub(crate) fn push_date(out: &mut Vec<u8>, year: u32, month: u32, day: u32) {
    push_year(out, year);
    out.push(b'-');
    push2(out, month);
    out.push(b'-');
    push2(out, day);
}

pub(crate) fn push_hms(out: &mut Vec<u8>, h: u32, m: u32, s: u32) {
    push_hours(out, h);
    out.push(b':');
    push2(out, m);
    out.push(b':');
    push2(out, s);
}

/// Reads the fractional part stored after a TIME2/DATETIME2/TIMESTAMP2
/// (big endian, 1 byte for fsp 1-2, 2 for 3-4, 3 for 5-6) as microseconds.
#[inline]
fn read_frac(c: &mut Cursor<'_>, fsp: u8) -> Result<u32, &'static str> {
    let t = "truncated fractional seconds";
    Ok(match fsp {
        0 => 0,
        1 | 2 => u32::from(c.u8(t).map_err(|_| t)?) * 10_000,
        3 | 4 => u32::from(u16::from_be_bytes(c.array(t).map_err(|_| t)?)) * 100,
        _ => {
            let b = c.array::<3>(t).map_err(|_| t)?;
            u32::from_be_bytes([0, b[0], b[1], b[2]])
        }
    })
}

/// DATE / NEWDATE: 3 bytes little endian, `year << 9 | month << 5 | day`.
pub(crate) fn write_date(out: &mut Vec<u8>, c: &mut Cursor<'_>) -> Result<(), &'static str> {
    let v = c.u24("date").map_err(|_| "truncated date")?;
    out.push(b'"');
    push_date(out, v >> 9, (v >> 5) & 15, v & 31);
    out.push(b'"');
    Ok(())
}

/// DATETIME2: 5 bytes big endian (sign bit, year*13+month (17 bits), day (5),
/// hour (5), minute (6), second (6)) plus the fraction.
pub(crate) fn write_datetime2(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    fsp: u8,
) -> Result<(), &'static str> {
    let b = c.array::<5>("datetime").map_err(|_| "truncated datetime")?;
    let packed = u64::from_be_bytes([0, 0, 0, b[0], b[1], b[2], b[3], b[4]]);
    let int_part = packed.wrapping_sub(0x80_0000_0000) & 0xFF_FFFF_FFFF;
    let frac = read_frac(c, fsp)?;
    let ymd = (int_part >> 17) as u32;
    let ym = ymd >> 5;
    let hms = (int_part & 0x1FFFF) as u32;
    out.push(b'"');
    push_date(out, ym / 13, ym % 13, ymd & 31);
    out.push(b'T');
    push_hms(out, hms >> 12, (hms >> 6) & 63, hms & 63);
    push_frac(out, frac, fsp);
    out.push(b'"');
    Ok(())
}

/// Old DATETIME (12): 8 bytes little endian, the number YYYYMMDDhhmmss.
pub(crate) fn write_datetime_old(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
) -> Result<(), &'static str> {
    let v = c.u64("datetime").map_err(|_| "truncated datetime")?;
    let (d, t) = (v / 1_000_000, v % 1_000_000);
    let (d, t) = (d as u32, t as u32);
    out.push(b'"');
    push_date(out, d / 10_000, (d / 100) % 100, d % 100);
    out.push(b'T');
    push_hms(out, t / 10_000, (t / 100) % 100, t % 100);
    out.push(b'"');
    Ok(())
}

fn push_timestamp(out: &mut Vec<u8>, secs: u32, micros: u32, fsp: u8) {
    out.push(b'"');
    if secs == 0 {
        out.extend_from_slice(b"0000-00-00T00:00:00");
    } else {
        let days = i64::from(secs / 86_400);
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        push_date(out, y as u32, m, d);
        out.push(b'T');
        push_hms(out, rem / 3600, (rem / 60) % 60, rem % 60);
    }
    push_frac(out, micros, fsp);
    out.extend_from_slice(b"Z\"");
}

/// TIMESTAMP2: 4 bytes big endian seconds since the epoch plus the fraction.
pub(crate) fn write_timestamp2(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    fsp: u8,
) -> Result<(), &'static str> {
    let secs = u32::from_be_bytes(c.array("timestamp").map_err(|_| "truncated timestamp")?);
    let frac = read_frac(c, fsp)?;
    push_timestamp(out, secs, frac, fsp);
    Ok(())
}

/// Old TIMESTAMP (7): 4 bytes little endian seconds.
pub(crate) fn write_timestamp_old(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
) -> Result<(), &'static str> {
    let secs = c.u32("timestamp").map_err(|_| "truncated timestamp")?;
    push_timestamp(out, secs, 0, 0);
    Ok(())
}

/// Writes a packed time (`(hms << 24) + micros`, negated when negative),
/// the in-memory format MySQL uses for TIME2 and for times inside JSON.
pub(crate) fn push_packed_time(out: &mut Vec<u8>, packed: i64, fsp: u8) {
    let negative = packed < 0;
    let v = packed.unsigned_abs();
    let hms = (v >> 24) as u32;
    let micros = (v & 0xFF_FFFF) as u32;
    if negative {
        out.push(b'-');
    }
    push_hms(out, (hms >> 12) & 0x3FF, (hms >> 6) & 63, hms & 63);
    push_frac(out, micros, fsp);
}

/// Writes a packed datetime (`(ymdhms << 24) + micros`) as
/// `YYYY-MM-DD{sep}hh:mm:ss` plus `fsp` digits; used inside JSON.
pub(crate) fn push_packed_datetime(out: &mut Vec<u8>, packed: i64, sep: u8, fsp: u8) {
    let v = packed.unsigned_abs();
    let ymdhms = v >> 24;
    let micros = (v & 0xFF_FFFF) as u32;
    let ymd = (ymdhms >> 17) as u32;
    let ym = ymd >> 5;
    let hms = (ymdhms & 0x1FFFF) as u32;
    push_date(out, ym / 13, ym % 13, ymd & 31);
    if sep != 0 {
        out.push(sep);
        push_hms(out, hms >> 12, (hms >> 6) & 63, hms & 63);
        push_frac(out, micros, fsp);
    }
}

/// TIME2: 3 bytes big endian (sign bit, hour (10), minute (6), second (6))
/// plus the fraction; negative values store the fraction inverted.
pub(crate) fn write_time2(
    out: &mut Vec<u8>,
    c: &mut Cursor<'_>,
    fsp: u8,
) -> Result<(), &'static str> {
    let t = "truncated time";
    let b = c.array::<3>(t).map_err(|_| t)?;
    let mut int_part = i64::from(u32::from_be_bytes([0, b[0], b[1], b[2]])) - 0x80_0000;
    let packed = match fsp {
        0 => int_part << 24,
        1 | 2 => {
            let mut frac = i64::from(c.u8(t).map_err(|_| t)?);
            if int_part < 0 && frac != 0 {
                int_part += 1;
                frac -= 0x100;
            }
            (int_part << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut frac = i64::from(u16::from_be_bytes(c.array(t).map_err(|_| t)?));
            if int_part < 0 && frac != 0 {
                int_part += 1;
                frac -= 0x10000;
            }
            (int_part << 24) + frac * 100
        }
        _ => {
            let f = c.array::<3>(t).map_err(|_| t)?;
            let frac = i64::from(u32::from_be_bytes([0, f[0], f[1], f[2]]));
            (int_part << 24) + frac
        }
    };
    out.push(b'"');
    push_packed_time(out, packed, fsp);
    out.push(b'"');
    Ok(())
}

/// Old TIME (11): 3 bytes little endian signed, the number (-)HHMMSS.
pub(crate) fn write_time_old(out: &mut Vec<u8>, c: &mut Cursor<'_>) -> Result<(), &'static str> {
    let raw = c.u24("time").map_err(|_| "truncated time")?;
    let v = ((raw << 8) as i32) >> 8;
    let a = v.unsigned_abs();
    out.push(b'"');
    if v < 0 {
        out.push(b'-');
    }
    push_hms(out, a / 10_000, (a / 100) % 100, a % 100);
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        f: impl Fn(&mut Vec<u8>, &mut Cursor<'_>) -> Result<(), &'static str>,
        bytes: &[u8],
    ) -> String {
        let mut out = Vec::new();
        let mut c = Cursor::new(bytes);
        f(&mut out, &mut c).unwrap();
        assert!(c.is_empty(), "left {:?}", c.rest());
        String::from_utf8(out).unwrap()
    }

    /// Encodes a TIME2 value like MySQL's `my_time_packed_to_binary`.
    fn time2(neg: bool, h: i64, m: i64, s: i64, micros: i64, fsp: u8) -> Vec<u8> {
        let mut packed = (((h << 12) | (m << 6) | s) << 24) + micros;
        if neg {
            packed = -packed;
        }
        let mut out = Vec::new();
        // Like MySQL's my_time_packed_to_binary: C's `>>` floors, `%` truncates.
        let ipart = ((packed >> 24) + 0x80_0000) as u32;
        let fpart = packed % (1 << 24);
        match fsp {
            0 => out.extend_from_slice(&ipart.to_be_bytes()[1..]),
            1 | 2 => {
                out.extend_from_slice(&ipart.to_be_bytes()[1..]);
                out.push((fpart / 10_000) as i8 as u8);
            }
            3 | 4 => {
                out.extend_from_slice(&ipart.to_be_bytes()[1..]);
                out.extend_from_slice(&((fpart / 100) as i16 as u16).to_be_bytes());
            }
            _ => out.extend_from_slice(&((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..]),
        }
        out
    }

    #[test]
    fn dates() {
        let d = (2024u32 << 9) | (2 << 5) | 29;
        assert_eq!(run(write_date, &d.to_le_bytes()[..3]), "\"2024-02-29\"");
        assert_eq!(run(write_date, &[0, 0, 0]), "\"0000-00-00\"");
        let d = (2024u32 << 9) | 15;
        assert_eq!(run(write_date, &d.to_le_bytes()[..3]), "\"2024-00-15\"");
    }

    #[test]
    fn datetimes() {
        let v = 20240102030405u64;
        assert_eq!(
            run(write_datetime_old, &v.to_le_bytes()),
            "\"2024-01-02T03:04:05\""
        );
        // 9999-12-31 23:59:59 fsp 0
        let ym = 9999u64 * 13 + 12;
        let packed = 0x80_0000_0000u64 | (((ym << 5) | 31) << 17) | (23 << 12) | (59 << 6) | 59;
        let bytes = &packed.to_be_bytes()[3..];
        assert_eq!(
            run(|o, c| write_datetime2(o, c, 0), bytes),
            "\"9999-12-31T23:59:59\""
        );
        let mut b3 = bytes.to_vec();
        b3.extend_from_slice(&1200u16.to_be_bytes());
        assert_eq!(
            run(|o, c| write_datetime2(o, c, 3), &b3),
            "\"9999-12-31T23:59:59.120\""
        );
        let mut b6 = bytes.to_vec();
        b6.extend_from_slice(&[0, 0, 1]);
        assert_eq!(
            run(|o, c| write_datetime2(o, c, 6), &b6),
            "\"9999-12-31T23:59:59.000001\""
        );
        assert_eq!(
            run(|o, c| write_datetime2(o, c, 1), &[0x80, 0, 0, 0, 0, 0]),
            "\"0000-00-00T00:00:00.0\""
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            run(
                |o, c| write_timestamp2(o, c, 0),
                &2147483647u32.to_be_bytes()
            ),
            "\"2038-01-19T03:14:07Z\""
        );
        assert_eq!(
            run(|o, c| write_timestamp2(o, c, 2), &[0, 0, 0, 1, 99]),
            "\"1970-01-01T00:00:01.99Z\""
        );
        assert_eq!(
            run(|o, c| write_timestamp2(o, c, 2), &[0, 0, 0, 0, 0]),
            "\"0000-00-00T00:00:00.00Z\""
        );
        assert_eq!(
            run(write_timestamp_old, &951782400u32.to_le_bytes()),
            "\"2000-02-29T00:00:00Z\""
        );
    }

    #[test]
    fn times() {
        for (neg, h, m, s, us, fsp, want) in [
            (false, 838, 59, 59, 0, 0, "838:59:59"),
            (true, 838, 59, 59, 0, 0, "-838:59:59"),
            (false, 12, 0, 0, 500_000, 1, "12:00:00.5"),
            (true, 0, 0, 0, 500_000, 1, "-00:00:00.5"),
            (true, 1, 2, 3, 4, 6, "-01:02:03.000004"),
            (true, 1, 2, 3, 120_000, 2, "-01:02:03.12"),
            (true, 1, 2, 3, 123_400, 4, "-01:02:03.1234"),
            (false, 0, 0, 0, 0, 6, "00:00:00.000000"),
            (true, 10, 0, 0, 0, 3, "-10:00:00.000"),
        ] {
            let bytes = time2(neg, h, m, s, us, fsp);
            assert_eq!(
                run(|o, c| write_time2(o, c, fsp), &bytes),
                format!("\"{want}\""),
                "{want}"
            );
        }
        let v: i32 = -8385959;
        assert_eq!(run(write_time_old, &v.to_le_bytes()[..3]), "\"-838:59:59\"");
        assert_eq!(
            run(write_time_old, &120000i32.to_le_bytes()[..3]),
            "\"12:00:00\""
        );
    }
}
