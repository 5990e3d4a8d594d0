//! Decode throughput micro-benchmark: a WRITE_ROWS event of 1,000 typical
//! rows (BIGINT, INT, VARCHAR utf8mb4, DECIMAL(10,2), DATETIME(3), nullable
//! VARCHAR), decoded again and again into one [`RowOut`]. Run it with
//! `cargo test --release -p replicator-core decode::bench -- --ignored --nocapture`
//! or call [`rows_per_second`].

use std::time::{Duration, Instant};

use super::codes::{column as types, Flavor};
use super::column::Table;
use super::event::{parse_event, Event, EventHeader};
use super::rows::RowOut;

const ROWS: usize = 1000;

fn packed(v: usize) -> Vec<u8> {
    if v < 251 {
        vec![v as u8]
    } else {
        let mut b = vec![0xfc];
        b.extend_from_slice(&(v as u16).to_le_bytes());
        b
    }
}

fn header(type_code: u8, len: usize) -> EventHeader {
    EventHeader {
        timestamp: 0,
        type_code,
        server_id: 1,
        event_size: (EventHeader::LEN + len + 4) as u32,
        log_pos: 0,
        flags: 0,
    }
}

/// The benchmark's table map body (with FULL optional metadata).
fn table_map_body() -> Vec<u8> {
    let mut b = 1u64.to_le_bytes()[..6].to_vec();
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(b"\x04shop\x00\x06orders\x00");
    let types = [
        types::LONGLONG,
        types::LONG,
        types::VARCHAR,
        types::NEWDECIMAL,
        types::DATETIME2,
        types::VARCHAR,
    ];
    b.extend(packed(types.len()));
    b.extend_from_slice(&types);
    // VARCHAR(64) utf8mb4 = 256 bytes, DECIMAL(10,2), DATETIME(3),
    // VARCHAR(255) utf8mb4 = 1020 bytes.
    let meta = [0x00, 0x01, 10, 2, 3, 0xfc, 0x03];
    b.extend(packed(meta.len()));
    b.extend(meta);
    b.push(0b0010_0000);
    let mut names = Vec::new();
    for n in ["id", "qty", "name", "amount", "created_at", "note"] {
        names.extend(packed(n.len()));
        names.extend_from_slice(n.as_bytes());
    }
    for (t, v) in [
        (1u8, vec![0b1000_0000]),
        (2, packed(45)),
        (4, names),
        (8, vec![0]),
    ] {
        b.push(t);
        b.extend(packed(v.len()));
        b.extend(v);
    }
    b
}

/// The benchmark's WRITE_ROWS (v1) body.
fn rows_body() -> Vec<u8> {
    let mut b = 1u64.to_le_bytes()[..6].to_vec();
    b.extend_from_slice(&[1, 0]);
    b.push(6);
    b.push(0b11_1111);
    for i in 0..ROWS {
        b.push(0b10_0000); // note is NULL
        b.extend_from_slice(&(1_000_000 + i as u64).to_le_bytes());
        b.extend_from_slice(&((i % 50) as u32).to_le_bytes());
        let name = format!("customer number {i:05}");
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        // 12345.67: 8 integer digits in 4 bytes, 2 fraction digits in 1.
        b.extend_from_slice(&[0x80, 0x00, 0x30, 0x39, 67]);
        // 2024-05-06 07:08:09.123
        let ym = 2024u64 * 13 + 5;
        let dt = 0x80_0000_0000u64 | (((ym << 5) | 6) << 17) | (7 << 12) | (8 << 6) | 9;
        b.extend_from_slice(&dt.to_be_bytes()[3..]);
        b.extend_from_slice(&1230u16.to_be_bytes());
    }
    b
}

/// The table of the benchmark, decoded from its table map.
fn table() -> Table {
    let body = table_map_body();
    match parse_event(&header(19, body.len()), &body, Flavor::MySql) {
        Ok(Event::TableMap(t)) => t,
        other => panic!("benchmark table map does not decode: {other:?}"),
    }
}

/// Decodes the benchmark event repeatedly for at least `min_time` and
/// returns rows decoded per second (single thread).
pub fn rows_per_second(min_time: Duration) -> f64 {
    let table = table();
    let body = rows_body();
    let h = header(23, body.len());
    let mut out = RowOut::new();
    let mut rows = 0usize;
    let mut bytes = 0usize;
    let start = Instant::now();
    while start.elapsed() < min_time {
        let Ok(Event::Rows(mut ev)) = parse_event(&h, &body, Flavor::MySql) else {
            panic!("benchmark rows event does not decode");
        };
        while ev.next_row(&table, &mut out).unwrap_or(false) {
            rows += 1;
            bytes += out.after.len() + out.key.len();
        }
    }
    std::hint::black_box(bytes);
    rows as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_event_decodes() {
        let table = table();
        let body = rows_body();
        let Ok(Event::Rows(mut ev)) = parse_event(&header(23, body.len()), &body, Flavor::MySql)
        else {
            panic!("not rows")
        };
        let mut out = RowOut::new();
        assert!(ev.next_row(&table, &mut out).unwrap());
        assert_eq!(
            std::str::from_utf8(&out.after).unwrap(),
            r#"{"id":1000000,"qty":0,"name":"customer number 00000","amount":"12345.67","created_at":"2024-05-06T07:08:09.123","note":null}"#
        );
        let mut n = 1;
        while ev.next_row(&table, &mut out).unwrap() {
            n += 1;
        }
        assert_eq!(n, ROWS);
    }

    #[test]
    #[ignore]
    fn decode_throughput() {
        let rate = rows_per_second(Duration::from_secs(2));
        println!("decode: {rate:.0} rows/s");
    }
}
