//! Record batch v2 (magic 2), the unit Kafka stores: records are appended
//! encoded, and sealing stamps the header (producer id, epoch, base sequence,
//! counts, timestamps) and its CRC-32C in place. Pure.
//!
//! The producer id and epoch make the batch idempotent and fenceable: the
//! broker refuses a batch whose epoch is older than the newest one issued
//! for its producer id (`PRODUCER_FENCED`).
//!
//! Compression (`compression.type`): sealing compresses the records section
//! (everything after the header) with the codec of [`super::compress`] into
//! a new buffer, sets the codec in the low three bits of the attributes and
//! computes the CRC-32C over the compressed batch; the records count stays
//! the number of records. Without compression the records are sealed in
//! place, as before: no copy. Sizes here ([`BatchBuilder::size`], and so
//! `batch.size`) are always the uncompressed ones, so a batch's bound does
//! not depend on how well its records compress.

use super::compress;
use super::wire::{varint_len, Put};
use replicator_common::producer::Compression;

/// Bytes before the first record.
pub const HEADER_LEN: usize = 61;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// The identity a broker issued to this writer (`InitProducerId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerId {
    pub id: i64,
    pub epoch: i16,
}

/// One partition's batch under construction.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    first_ts: i64,
    max_ts: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl BatchBuilder {
    pub fn with_capacity(records: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + records);
        buf.resize(HEADER_LEN, 0);
        Self {
            buf,
            count: 0,
            first_ts: 0,
            max_ts: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn count(&self) -> i32 {
        self.count
    }

    /// Size of the sealed batch so far.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Size a record adds to a batch.
    pub fn record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> usize {
        let body = Self::body_len(0, i32::MAX, key, value, headers);
        varint_len(body as i64) + body
    }

    fn body_len(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> usize {
        let mut n = 1
            + varint_len(ts_delta)
            + varint_len(i64::from(offset_delta))
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(headers.len() as i64);
        for (k, v) in headers {
            n += varint_len(k.len() as i64) + k.len() + varint_len(v.len() as i64) + v.len();
        }
        n
    }

    /// Appends one record created at `ts_ms`; a `None` key or value is
    /// Kafka's null (a `None` value is a tombstone).
    pub fn push(
        &mut self,
        ts_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) {
        if self.count == 0 {
            self.first_ts = ts_ms;
            self.max_ts = ts_ms;
        }
        self.max_ts = self.max_ts.max(ts_ms);
        let ts_delta = ts_ms - self.first_ts;
        let body = Self::body_len(ts_delta, self.count, key, value, headers);
        let b = &mut self.buf;
        b.reserve(body + 5);
        b.varint(body as i64);
        b.i8(0);
        b.varint(ts_delta);
        b.varint(i64::from(self.count));
        for part in [key, value] {
            match part {
                Some(bytes) => {
                    b.varint(bytes.len() as i64);
                    b.extend_from_slice(bytes);
                }
                None => b.varint(-1),
            }
        }
        b.varint(headers.len() as i64);
        for (k, v) in headers {
            b.varint(k.len() as i64);
            b.extend_from_slice(k.as_bytes());
            b.varint(v.len() as i64);
            b.extend_from_slice(v);
        }
        self.count += 1;
    }

    /// The finished batch: records compressed with `codec`, header filled
    /// in, CRC computed. Fails only if a codec does.
    pub fn seal(
        self,
        producer: ProducerId,
        base_sequence: i32,
        codec: Compression,
    ) -> std::io::Result<Vec<u8>> {
        let mut buf = if codec == Compression::None {
            self.buf
        } else {
            let records = &self.buf[HEADER_LEN..];
            let mut out = Vec::with_capacity(HEADER_LEN + records.len() / 2 + 64);
            out.resize(HEADER_LEN, 0);
            compress::compress(codec, records, &mut out)?;
            out
        };
        let batch_len = (buf.len() - 12) as i32;
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.i64(0); // base offset: the broker assigns it
        h.i32(batch_len);
        h.i32(-1); // partition leader epoch
        h.i8(2); // magic
        h.i32(0); // crc, below
        h.i16(codec.attribute()); // codec; CreateTime, not transactional
        h.i32(self.count - 1);
        h.i64(self.first_ts);
        h.i64(self.max_ts);
        h.i64(producer.id);
        h.i16(producer.epoch);
        h.i32(base_sequence);
        h.i32(self.count);
        debug_assert_eq!(h.len(), HEADER_LEN);
        buf[..HEADER_LEN].copy_from_slice(&h);
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
        buf[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
        Ok(buf)
    }
}

/// Encoded size of a nullable byte string (length -1 for null).
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => varint_len(b.len() as i64) + b.len(),
        None => varint_len(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::Reader;
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Rec {
        ts_delta: i64,
        offset_delta: i64,
        key: Vec<u8>,
        value: Vec<u8>,
        value_null: bool,
        headers: Vec<(String, Vec<u8>)>,
    }

    /// Decodes a batch the way a consumer does, checking lengths and CRC,
    /// decompressing the records with the codec of the attributes.
    fn decode(b: &[u8]) -> (Vec<i64>, Vec<Rec>) {
        let mut r = Reader::new(b);
        let base_offset = r.i64().unwrap();
        let len = r.i32().unwrap() as usize;
        assert_eq!(len, b.len() - 12, "batch length counts from after itself");
        let leader_epoch = r.i32().unwrap();
        assert_eq!(r.i8().unwrap(), 2, "magic");
        let crc = r.i32().unwrap() as u32;
        assert_eq!(
            crc,
            crc32c::crc32c(&b[21..]),
            "CRC-32C from the attributes on"
        );
        let mut fields = vec![base_offset, i64::from(leader_epoch)];
        let attributes = r.i16().unwrap();
        fields.push(i64::from(attributes));
        fields.push(i64::from(r.i32().unwrap()));
        fields.push(r.i64().unwrap());
        fields.push(r.i64().unwrap());
        fields.push(r.i64().unwrap());
        fields.push(i64::from(r.i16().unwrap()));
        fields.push(i64::from(r.i32().unwrap()));
        let count = r.i32().unwrap();
        fields.push(i64::from(count));
        let codec = Compression::ALL[(attributes & 7) as usize];
        let records = compress::decompress(codec, &b[HEADER_LEN..]);
        let mut r = Reader::new(&records);
        let mut recs = Vec::new();
        let take_opt = |r: &mut Reader<'_>| -> Option<Vec<u8>> {
            let n = r.varint().unwrap();
            (n >= 0).then(|| (0..n).map(|_| r.i8().unwrap() as u8).collect())
        };
        let take = |r: &mut Reader<'_>| -> Vec<u8> {
            let n = r.varint().unwrap() as usize;
            (0..n).map(|_| r.i8().unwrap() as u8).collect()
        };
        for _ in 0..count {
            let _len = r.varint().unwrap();
            assert_eq!(r.i8().unwrap(), 0, "record attributes");
            let ts_delta = r.varint().unwrap();
            let offset_delta = r.varint().unwrap();
            let key = take_opt(&mut r).unwrap_or_default();
            let value = take_opt(&mut r);
            let value_null = value.is_none();
            let value = value.unwrap_or_default();
            let mut headers = Vec::new();
            for _ in 0..r.varint().unwrap() {
                let k = String::from_utf8(take(&mut r)).unwrap();
                headers.push((k, take(&mut r)));
            }
            recs.push(Rec {
                ts_delta,
                offset_delta,
                key,
                value,
                value_null,
                headers,
            });
        }
        assert!(r.i8().is_err(), "nothing after the last record");
        (fields, recs)
    }

    #[test]
    fn crc32c_is_the_castagnoli_polynomial() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn sealed_batch_carries_producer_counts_timestamps_and_records() {
        let mut b = BatchBuilder::default();
        assert!(b.is_empty());
        let big = vec![7u8; 300];
        b.push(
            1_000,
            Some(b"k1"),
            Some(b"v1"),
            &[("replicator.task", b"t"), ("e", b"")],
        );
        b.push(1_005, Some(b"k2"), Some(&big), &[]);
        b.push(1_002, Some(b""), Some(b"{}"), &[("h", b"x")]);
        let size = b.size();
        let sealed = b
            .seal(ProducerId { id: 42, epoch: 3 }, 17, Compression::None)
            .unwrap();
        assert_eq!(sealed.len(), size);
        let (fields, recs) = decode(&sealed);
        // base offset, leader epoch, attributes, last offset delta, first ts,
        // max ts, producer id, epoch, base sequence, count
        assert_eq!(fields, [0, -1, 0, 2, 1_000, 1_005, 42, 3, 17, 3]);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].key, b"k1");
        assert_eq!(
            recs[0].headers[0],
            ("replicator.task".into(), b"t".to_vec())
        );
        assert_eq!(recs[0].headers[1], ("e".into(), vec![]));
        assert_eq!((recs[1].ts_delta, recs[1].offset_delta), (5, 1));
        assert_eq!(recs[1].value, big);
        assert_eq!((recs[2].ts_delta, recs[2].offset_delta), (2, 2));
        assert_eq!(recs[2].headers, [("h".into(), b"x".to_vec())]);
    }

    #[test]
    fn a_tombstone_is_a_null_value() {
        let mut b = BatchBuilder::default();
        let headers: [(&str, &[u8]); 1] = [("p", b"f:4:1")];
        let before = b.size();
        b.push(7, Some(b"{\"id\":1}"), None, &headers);
        b.push(8, Some(b"{\"id\":2}"), Some(b""), &headers);
        assert!(
            b.size() - before <= 2 * BatchBuilder::record_size(Some(b"{\"id\":1}"), None, &headers)
        );
        let sealed = b
            .seal(ProducerId { id: 1, epoch: 0 }, 0, Compression::None)
            .unwrap();
        let (_, recs) = decode(&sealed);
        assert!(recs[0].value_null && recs[0].value.is_empty());
        assert!(!recs[1].value_null && recs[1].value.is_empty());
        assert_eq!(recs[0].key, b"{\"id\":1}");
    }

    #[test]
    fn record_size_bounds_what_push_adds() {
        let mut b = BatchBuilder::default();
        let headers: [(&str, &[u8]); 1] = [("replicator.position", b"mariadb-bin.000001:4:0")];
        let before = b.size();
        b.push(5, Some(b"[1]"), Some(b"{\"a\":1}"), &headers);
        assert!(
            b.size() - before
                <= BatchBuilder::record_size(Some(b"[1]"), Some(b"{\"a\":1}"), &headers)
        );
    }

    #[test]
    fn every_codec_seals_a_batch_that_decodes_to_the_same_records() {
        // Given records with a wide value, unicode and headers
        let wide: Vec<u8> = (0..5_000u32)
            .map(|i| b"ab\xc3\xa9z"[i as usize % 5])
            .collect();
        let push_all = |b: &mut BatchBuilder| {
            for i in 0..200i64 {
                let key = format!("[{i}]");
                let value = format!("{{\"id\":{i},\"note\":\"日本語 ✓ row {i}\"}}");
                b.push(
                    1_000 + i,
                    Some(key.as_bytes()),
                    Some(value.as_bytes()),
                    &[("p", b"f:4:0")],
                );
            }
            b.push(
                1_300,
                Some(b"[wide]"),
                Some(&wide),
                &[("replicator.task", b"t"), ("e", b"")],
            );
        };
        let mut plain = BatchBuilder::default();
        push_all(&mut plain);
        let plain_size = plain.size();
        let pid = ProducerId { id: 7, epoch: 2 };
        let (plain_fields, plain_recs) = decode(&plain.seal(pid, 5, Compression::None).unwrap());
        assert_eq!(plain_recs.len(), 201);
        for codec in Compression::ALL.into_iter().skip(1) {
            // When the same records are sealed with the codec
            let mut b = BatchBuilder::default();
            push_all(&mut b);
            assert_eq!(b.size(), plain_size, "size is the uncompressed size");
            let sealed = b.seal(pid, 5, codec).unwrap();
            // Then the CRC verifies, the codec is in the attributes, the
            // count is the record count and the records are the same
            assert!(
                sealed.len() < plain_size / 2,
                "{codec:?}: {} bytes",
                sealed.len()
            );
            let (fields, recs) = decode(&sealed);
            assert_eq!(
                fields[2],
                i64::from(codec.attribute()),
                "{codec:?} attributes"
            );
            let mut want = plain_fields.clone();
            want[2] = fields[2];
            assert_eq!(fields, want, "{codec:?} header");
            assert_eq!(recs, plain_recs, "{codec:?} records");
        }
    }
}
