//! Kafka wire primitives: big-endian integers, length-prefixed strings and
//! bytes, zig-zag varints (record fields) and unsigned varints (flexible
//! versions). Pure: writes into a `Vec<u8>`, reads from a slice.

/// A response that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("response ends early: {needed} more bytes wanted at offset {at}")]
    Short { at: usize, needed: usize },
    #[error("bad varint at offset {0}")]
    Varint(usize),
    #[error("string at offset {0} is not UTF-8")]
    Utf8(usize),
    #[error("negative length {len} at offset {at}")]
    Length { at: usize, len: i64 },
}

/// Bytes a zig-zag varint of `v` takes.
pub fn varint_len(v: i64) -> usize {
    uvarint_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Bytes an unsigned varint of `v` takes.
pub fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appending encoders.
pub trait Put {
    fn i8(&mut self, v: i8);
    fn i16(&mut self, v: i16);
    fn i32(&mut self, v: i32);
    fn i64(&mut self, v: i64);
    fn uvarint(&mut self, v: u64);
    /// Zig-zag varint (record fields).
    fn varint(&mut self, v: i64);
    /// INT16 length + bytes.
    fn string(&mut self, s: &str);
    /// INT16 length (-1 for none) + bytes.
    fn nullable_string(&mut self, s: Option<&str>);
    /// UNSIGNED_VARINT length + 1 (0 for none) + bytes.
    fn compact_nullable_string(&mut self, s: Option<&str>);
    /// INT32 length + bytes.
    fn bytes(&mut self, b: &[u8]);
    /// An empty tagged-field section of a flexible version.
    fn no_tags(&mut self);
}

impl Put for Vec<u8> {
    fn i8(&mut self, v: i8) {
        self.push(v as u8);
    }
    fn i16(&mut self, v: i16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn varint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn string(&mut self, s: &str) {
        self.i16(s.len() as i16);
        self.extend_from_slice(s.as_bytes());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.uvarint(s.len() as u64 + 1);
                self.extend_from_slice(s.as_bytes());
            }
            None => self.uvarint(0),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.i32(b.len() as i32);
        self.extend_from_slice(b);
    }
    fn no_tags(&mut self) {
        self.uvarint(0);
    }
}

/// A cursor over a response body.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let rest = self.buf.len() - self.at;
        if rest < n {
            return Err(WireError::Short {
                at: self.at,
                needed: n - rest,
            });
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    pub fn i8(&mut self) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    pub fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn uvarint(&mut self) -> Result<u64, WireError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1).map_err(|_| WireError::Varint(start))?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Varint(start))
    }

    pub fn varint(&mut self) -> Result<i64, WireError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn str_of(&mut self, len: usize) -> Result<&'a str, WireError> {
        let at = self.at;
        std::str::from_utf8(self.take(len)?).map_err(|_| WireError::Utf8(at))
    }

    pub fn string(&mut self) -> Result<&'a str, WireError> {
        let at = self.at;
        match self.i16()? {
            n if n < 0 => Err(WireError::Length {
                at,
                len: i64::from(n),
            }),
            n => self.str_of(n as usize),
        }
    }

    pub fn nullable_string(&mut self) -> Result<Option<&'a str>, WireError> {
        match self.i16()? {
            n if n < 0 => Ok(None),
            n => self.str_of(n as usize).map(Some),
        }
    }

    pub fn compact_nullable_string(&mut self) -> Result<Option<&'a str>, WireError> {
        match self.uvarint()? {
            0 => Ok(None),
            n => self.str_of(n as usize - 1).map(Some),
        }
    }

    /// INT32 length + bytes (a null, -1, reads as empty).
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        match self.i32()? {
            n if n < 0 => Ok(&[]),
            n => self.take(n as usize),
        }
    }

    /// INT32 element count of an array (-1, a null array, reads as 0).
    pub fn count(&mut self) -> Result<usize, WireError> {
        Ok(self.i32()?.max(0) as usize)
    }

    /// Skips a tagged-field section of a flexible version.
    pub fn skip_tags(&mut self) -> Result<(), WireError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.take(len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_sizes_match() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = Vec::new();
            b.varint(v);
            assert_eq!(b.len(), varint_len(v), "size of {v}");
            assert_eq!(Reader::new(&b).varint(), Ok(v));
        }
        let mut b = Vec::new();
        b.varint(-1);
        b.varint(150);
        assert_eq!(b, [0x01, 0xac, 0x02], "zig-zag: -1 -> 1, 150 -> 300");
    }

    #[test]
    fn strings_and_integers_are_big_endian_with_prefixes() {
        let mut b = Vec::new();
        b.i16(-1);
        b.i32(258);
        b.string("ab");
        b.nullable_string(None);
        b.compact_nullable_string(Some("x"));
        b.compact_nullable_string(None);
        b.no_tags();
        assert_eq!(
            b,
            [0xff, 0xff, 0, 0, 1, 2, 0, 2, b'a', b'b', 0xff, 0xff, 2, b'x', 0, 0]
        );
        let mut r = Reader::new(&b);
        assert_eq!(r.i16(), Ok(-1));
        assert_eq!(r.i32(), Ok(258));
        assert_eq!(r.string(), Ok("ab"));
        assert_eq!(r.nullable_string(), Ok(None));
        assert_eq!(r.compact_nullable_string(), Ok(Some("x")));
        assert_eq!(r.compact_nullable_string(), Ok(None));
        assert_eq!(r.skip_tags(), Ok(()));
        assert_eq!(r.i8(), Err(WireError::Short { at: 16, needed: 1 }));
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error() {
        assert_eq!(
            Reader::new(&[0, 5, b'a']).string(),
            Err(WireError::Short { at: 2, needed: 4 })
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80]).uvarint(),
            Err(WireError::Varint(0))
        );
        assert_eq!(Reader::new(&[0, 1, 0xff]).string(), Err(WireError::Utf8(2)));
        assert_eq!(
            Reader::new(&[0xff, 0xfe]).string(),
            Err(WireError::Length { at: 0, len: -2 })
        );
    }
}
