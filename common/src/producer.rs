//! Producer settings a task may give in `sink.properties`, parsed and
//! checked. The Core's own Kafka producer understands these keys; any other
//! key is an error (reported with the rest of the task config), so a setting
//! never silently does nothing.

use crate::kafka_security::{KafkaSecurity, PropertyErrors};
use std::collections::BTreeMap;
use std::time::Duration;

/// Parsed `sink.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    /// How long the first message of a batch waits for company (`linger.ms`).
    pub linger: Duration,
    /// Largest record batch per partition in bytes (`batch.size`).
    pub batch_bytes: usize,
    /// Messages accepted but not yet acknowledged before `send` waits
    /// (`queue.buffering.max.messages`).
    pub max_messages: usize,
    /// Bytes accepted but not yet acknowledged before `send` waits
    /// (`queue.buffering.max.kbytes` × 1024).
    pub max_bytes: usize,
    /// Client id sent with every request (`client.id`).
    pub client_id: String,
    /// Codec of every record batch (`compression.type`).
    pub compression: Compression,
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: KafkaSecurity,
    /// Resends of one request after a transient broker error (`retries`).
    pub retries: u32,
    /// First pause before a resend, doubled each time up to 1 s
    /// (`retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// Longest time from a request's first send to its last resend
    /// (`delivery.timeout.ms`); past it the task stops with a transient error.
    pub delivery_timeout: Duration,
}

/// Record batch compression, with Kafka's codec numbers (the low three bits
/// of a batch's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Every codec, in Kafka's order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The `compression.type` value.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec number in a record batch's attributes.
    pub fn attribute(self) -> i16 {
        self as i16
    }
}

impl std::str::FromStr for Compression {
    type Err = PropertyError;
    fn from_str(v: &str) -> Result<Self, PropertyError> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(v.trim()))
            .ok_or_else(|| PropertyError::UnknownCodec(v.to_string()))
    }
}

/// Why one producer property is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    #[error("must be a whole number from {min} to {max}")]
    OutOfRange { min: u64, max: u64 },
    #[error("must be 1 to 200 characters")]
    ClientIdLength,
    #[error("`{0}` is not a codec; use one of {names}", names = codec_names())]
    UnknownCodec(String),
    #[error("unknown producer property; known: {}, {}", KNOWN.join(", "), crate::kafka_security::KEYS.join(", "))]
    UnknownKey,
}

fn codec_names() -> String {
    let names: Vec<&str> = Compression::ALL.iter().map(|c| c.name()).collect();
    names.join(", ")
}

impl Default for ProducerSettings {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_bytes: 1_000_000,
            max_messages: 50_000,
            max_bytes: 16 * 1024 * 1024,
            client_id: "mysql-replicator".to_string(),
            compression: Compression::None,
            security: KafkaSecurity::default(),
            retries: 10,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(30),
        }
    }
}

/// Keys understood besides the security keys of [`KafkaSecurity`], for error messages.
pub const KNOWN: &[&str] = &[
    "batch.size",
    "client.id",
    "compression.type",
    "delivery.timeout.ms",
    "linger.ms",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "retries",
    "retry.backoff.ms",
];

fn number(v: &str, min: u64, max: u64) -> Result<u64, PropertyError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(PropertyError::OutOfRange { min, max }),
    }
}

impl ProducerSettings {
    /// Parses `props`; on failure every problem as (key, message).
    pub fn parse(props: &BTreeMap<String, String>) -> Result<Self, PropertyErrors> {
        let mut s = Self::default();
        let mut problems = Vec::new();
        for (k, v) in props {
            if KafkaSecurity::owns(k) {
                continue;
            }
            let r: Result<(), PropertyError> = match k.as_str() {
                "linger.ms" => number(v, 0, 60_000).map(|n| s.linger = Duration::from_millis(n)),
                "batch.size" => {
                    number(v, 1_024, 16 * 1024 * 1024).map(|n| s.batch_bytes = n as usize)
                }
                "queue.buffering.max.messages" => {
                    number(v, 1, 10_000_000).map(|n| s.max_messages = n as usize)
                }
                "queue.buffering.max.kbytes" => {
                    number(v, 1, 16 * 1024 * 1024).map(|n| s.max_bytes = n as usize * 1024)
                }
                "client.id" if !v.is_empty() && v.len() <= 200 => {
                    s.client_id = v.clone();
                    Ok(())
                }
                "client.id" => Err(PropertyError::ClientIdLength),
                "compression.type" => v.parse().map(|c| s.compression = c),
                "retries" => number(v, 0, 1_000).map(|n| s.retries = n as u32),
                "retry.backoff.ms" => {
                    number(v, 1, 10_000).map(|n| s.retry_backoff = Duration::from_millis(n))
                }
                "delivery.timeout.ms" => {
                    number(v, 1_000, 600_000).map(|n| s.delivery_timeout = Duration::from_millis(n))
                }
                _ => Err(PropertyError::UnknownKey),
            };
            if let Err(e) = r {
                problems.push((k.clone(), e.to_string()));
            }
        }
        match KafkaSecurity::parse(props) {
            Ok(security) => s.security = security,
            Err(more) => problems.extend(more),
        }
        problems.sort_by(|a, b| a.0.cmp(&b.0));
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(PropertyErrors(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            ProducerSettings::parse(&props(&[])),
            Ok(ProducerSettings::default())
        );
        let s = ProducerSettings::parse(&props(&[
            ("linger.ms", "0"),
            ("batch.size", "65536"),
            ("queue.buffering.max.kbytes", "1024"),
            ("compression.type", "LZ4"),
            ("security.protocol", "PLAINTEXT"),
            ("client.id", "me"),
        ]))
        .unwrap();
        assert_eq!(s.linger, Duration::ZERO);
        assert_eq!(s.batch_bytes, 65_536);
        assert_eq!(s.max_bytes, 1024 * 1024);
        assert_eq!(s.client_id, "me");
        assert_eq!(s.compression, Compression::Lz4);
        assert_eq!(s.compression.attribute(), 3);
        let s = ProducerSettings::parse(&props(&[
            ("retries", "0"),
            ("retry.backoff.ms", "250"),
            ("delivery.timeout.ms", "5000"),
        ]))
        .unwrap();
        assert_eq!(s.retries, 0);
        assert_eq!(s.retry_backoff, Duration::from_millis(250));
        assert_eq!(s.delivery_timeout, Duration::from_secs(5));
    }

    #[test]
    fn retry_settings_are_bounded() {
        let err = ProducerSettings::parse(&props(&[
            ("retries", "-1"),
            ("retry.backoff.ms", "0"),
            ("delivery.timeout.ms", "10"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = err.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["delivery.timeout.ms", "retries", "retry.backoff.ms"]);
        assert!(err[0].1.contains("1000 to 600000"), "{err:?}");
    }

    #[test]
    fn every_bad_key_is_reported() {
        let err = ProducerSettings::parse(&props(&[
            ("linger.ms", "soon"),
            ("compression.type", "brotli"),
            ("acks", "1"),
            ("security.protocol", "SSH"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = err.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["acks", "compression.type", "linger.ms", "security.protocol"]
        );
        assert!(err[0].1.contains("unknown producer property"), "{err:?}");
        assert!(err[1].1.contains("gzip, snappy, lz4, zstd"), "{err:?}");
    }
}
