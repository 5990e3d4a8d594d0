//! The record section codecs of `compression.type`, written the way
//! Kafka's Java client writes them, so that every consumer (Java,
//! librdkafka, the brokers that recompress or validate) reads them. Pure.
//!
//! Flow in: the encoded records of one batch. Flow out: those bytes
//! compressed, appended to the sealed batch after its header.
//!
//! - gzip: one standard gzip stream (RFC 1952), default level (6, as Kafka).
//! - snappy: the xerial `SnappyOutputStream` framing Kafka's Java client
//!   uses: magic `\x82SNAPPY\0`, version 1, minimum compatible version 1
//!   (big-endian i32 each), then for every 32 KiB of input one raw snappy
//!   block prefixed by its big-endian length. librdkafka and Kafka read both
//!   this and bare raw snappy; Java's reader expects the framing.
//! - lz4: one LZ4 frame (magic `04 22 4D 18`) with independent 64 KiB
//!   blocks and a correct header checksum (KIP-57: Kafka checks it for
//!   record batch v2); no content size, no checksums, as Java writes it.
//!   Java's reader refuses dependent blocks.
//! - zstd: one standard zstd frame at level 3 (Kafka's default), with the
//!   content size in the frame header so that readers size their buffer.
//!
//! Why these crates and not `kafka-protocol`'s `compression` module: its
//! compressors take a closure that encodes records into a buffer of their
//! own (`BytesMut`) and then compress that, where our [`BatchBuilder`]
//! already holds the encoded records: using it would cost one more copy of
//! every batch, and the crate (thousands of generated message types) for
//! four functions of a few lines each. The codecs below are the crates it
//! uses itself for gzip, snappy and zstd (flate2, snap, zstd), and
//! lz4_flex (pure Rust) for lz4; flate2 runs on the zlib that librdkafka
//! links already.
//!
//! Failure: writing to a `Vec` cannot fail, but the codecs' interfaces say
//! it may; such an error comes back as [`std::io::Error`].
//!
//! [`BatchBuilder`]: super::batch::BatchBuilder

use replicator_common::producer::Compression;
use std::io::{self, Write};

/// Input bytes per snappy block, as xerial's `SnappyOutputStream`.
const SNAPPY_BLOCK: usize = 32 * 1024;

/// xerial's stream header: magic, version 1, minimum compatible version 1.
pub const SNAPPY_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];

/// zstd level of Kafka's Java producer when none is set.
const ZSTD_LEVEL: i32 = 3;

/// Appends `input` compressed with `codec` to `out`. [`Compression::None`]
/// appends it as it is (the producer never calls it for that).
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            e.write_all(input)?;
            e.finish()?;
        }
        Compression::Snappy => snappy(input, out)?,
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            e.write_all(input)?;
            e.finish().map_err(io::Error::other)?;
        }
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            e.include_contentsize(true)?;
            e.set_pledged_src_size(Some(input.len() as u64))?;
            e.write_all(input)?;
            e.finish()?;
        }
    }
    Ok(())
}

fn snappy(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(&SNAPPY_HEADER);
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(SNAPPY_BLOCK) {
        let at = out.len();
        out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
        let n = encoder
            .compress(block, &mut out[at + 4..])
            .map_err(io::Error::other)?;
        out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
        out.truncate(at + 4 + n);
    }
    Ok(())
}

/// Reads back what [`compress`] wrote (for tests: the producer never
/// decompresses).
#[cfg(test)]
pub fn decompress(codec: Compression, input: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(input)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Snappy => {
            assert_eq!(input[..16], SNAPPY_HEADER, "xerial header");
            let mut rest = &input[16..];
            while !rest.is_empty() {
                let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let block = snap::raw::Decoder::new()
                    .decompress_vec(&rest[4..4 + n])
                    .unwrap();
                assert!(block.len() <= SNAPPY_BLOCK);
                out.extend_from_slice(&block);
                rest = &rest[4 + n..];
            }
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(input)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => out = zstd::stream::decode_all(input).unwrap(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // compressible but not trivial: JSON-ish text with a counter
        let mut v = Vec::with_capacity(len);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(format!("{{\"id\":{i},\"note\":\"row {i} ünïcødé\"}}").as_bytes());
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                >> 40;
        }
        v.truncate(len);
        v
    }

    #[test]
    fn every_codec_reads_back_small_empty_and_multi_block_input() {
        for codec in Compression::ALL {
            for len in [0, 1, 100, SNAPPY_BLOCK, 200_000] {
                let input = sample(len);
                let mut out = vec![9u8; 3];
                compress(codec, &input, &mut out).unwrap();
                assert_eq!(out[..3], [9, 9, 9], "{codec:?} appends");
                assert_eq!(decompress(codec, &out[3..]), input, "{codec:?} {len}");
            }
        }
    }

    #[test]
    fn frames_start_as_kafka_readers_expect() {
        let input = sample(100_000);
        let framed = |codec| {
            let mut out = Vec::new();
            compress(codec, &input, &mut out).unwrap();
            out
        };
        assert_eq!(framed(Compression::Gzip)[..2], [0x1f, 0x8b]);
        let snappy = framed(Compression::Snappy);
        assert_eq!(snappy[..8], *b"\x82SNAPPY\0");
        let lz4 = framed(Compression::Lz4);
        assert_eq!(lz4[..4], [0x04, 0x22, 0x4d, 0x18]);
        // FLG: version 01, block independence set; BD: 64 KiB blocks
        assert_eq!(lz4[4] & 0b1110_0000, 0b0110_0000, "FLG {:08b}", lz4[4]);
        assert_eq!(lz4[5], 0x40, "BD");
        // KIP-57: the header checksum covers FLG and BD only (not the magic)
        let hc = (twox_hash_32(&lz4[4..6]) >> 8) as u8;
        assert_eq!(lz4[6], hc, "header checksum");
        assert_eq!(framed(Compression::Zstd)[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    }

    /// xxHash32 with seed 0, small inputs only (under 16 bytes).
    fn twox_hash_32(data: &[u8]) -> u32 {
        const P2: u32 = 2_246_822_519;
        const P3: u32 = 3_266_489_917;
        const P4: u32 = 668_265_263;
        const P5: u32 = 374_761_393;
        assert!(data.len() < 16);
        let mut h = P5.wrapping_add(data.len() as u32);
        let mut rest = data;
        while rest.len() >= 4 {
            let k = u32::from_le_bytes(rest[..4].try_into().unwrap());
            h = h
                .wrapping_add(k.wrapping_mul(P3))
                .rotate_left(17)
                .wrapping_mul(P4);
            rest = &rest[4..];
        }
        for &b in rest {
            h = h
                .wrapping_add(u32::from(b).wrapping_mul(P5))
                .rotate_left(11)
                .wrapping_mul(0x9E37_79B1);
        }
        h ^= h >> 15;
        h = h.wrapping_mul(P2);
        h ^= h >> 13;
        h = h.wrapping_mul(P3);
        h ^ (h >> 16)
    }
}
