//! Bounds-checked little-endian reading over a byte slice.

use super::error::DecodeError;

/// A read position over a borrowed byte slice. Every read names what it
/// reads so that a short body reports where it ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        match self.buf.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(*head)
            }
            None => Err(DecodeError::Truncated { what }),
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    #[inline]
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn u24(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.array::<3>(what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    #[inline]
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub(crate) fn u48(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.array::<6>(what)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], 0, 0,
        ]))
    }

    #[inline]
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// An unsigned little-endian integer of `n` (1..=8) bytes.
    #[inline]
    pub(crate) fn uint_n(&mut self, n: usize, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.bytes(n, what)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    /// A MySQL length-encoded ("packed") integer: < 251 in one byte,
    /// 0xfc + 2 bytes, 0xfd + 3 bytes, 0xfe + 8 bytes.
    #[inline]
    pub(crate) fn packed(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        match self.u8(what)? {
            b @ 0..=250 => Ok(u64::from(b)),
            0xfc => Ok(u64::from(self.u16(what)?)),
            0xfd => Ok(u64::from(self.u24(what)?)),
            0xfe => self.u64(what),
            _ => Err(DecodeError::Truncated { what }),
        }
    }

    /// A packed integer used as a count or length of something in this body.
    #[inline]
    pub(crate) fn packed_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let v = self.packed(what)?;
        usize::try_from(v).map_err(|_| DecodeError::Truncated { what })
    }

    /// A packed length followed by that many bytes.
    pub(crate) fn packed_bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.packed_len(what)?;
        self.bytes(n, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_integers() {
        let mut c = Cursor::new(&[
            250, 0xfc, 0x34, 0x12, 0xfd, 1, 2, 3, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80,
        ]);
        assert_eq!(c.packed("a").unwrap(), 250);
        assert_eq!(c.packed("b").unwrap(), 0x1234);
        assert_eq!(c.packed("c").unwrap(), 0x030201);
        assert_eq!(c.packed("d").unwrap(), 0x8000_0000_0000_0001);
        assert!(c.is_empty());
        assert_eq!(c.packed("e"), Err(DecodeError::Truncated { what: "e" }));
        // 0xfb (NULL) and 0xff are not valid lengths here.
        assert!(Cursor::new(&[0xfb]).packed("x").is_err());
    }

    #[test]
    fn fixed_integers_and_truncation() {
        let mut c = Cursor::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(c.u48("t").unwrap(), 0x060504030201);
        assert_eq!(c.len(), 1);
        assert_eq!(c.u16("w"), Err(DecodeError::Truncated { what: "w" }));
        assert_eq!(c.uint_n(1, "x").unwrap(), 7);
    }
}
