//! Unique names, so that many tests can share one stack without seeing each
//! other's databases, topics or ZooKeeper roots.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<prefix>_<n>_<12 hex digits>`: unique across tests, test processes and
/// runs. Only `[A-Za-z0-9_]` (other characters of `prefix` become `_`), at
/// most 64 characters, so the result is a valid MySQL database or table name,
/// Kafka topic, ZooKeeper node name and replicator task name.
///
/// ```
/// let db = replicator_tests::unique_name("shop");
/// assert!(db.starts_with("shop_"));
/// assert_ne!(db, replicator_tests::unique_name("shop"));
/// ```
pub fn unique_name(prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{clean}_{n}_{}", random_hex(12))
}

/// A ZooKeeper root of its own for one test: `/test_<n>_<hex>`, to pass as
/// `--root` to the processes and to [`crate::Stack::zk`].
pub fn unique_root() -> String {
    format!("/{}", unique_name("test"))
}

/// `len` random lowercase hex digits (at most 32).
pub fn random_hex(len: usize) -> String {
    let mut s = format!("{:032x}", rand::random::<u128>());
    s.truncate(len.min(32));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_everywhere() {
        let a = unique_name("a-b.c/d");
        assert!(a.starts_with("a_b_c_d_"), "{a}");
        assert!(a.len() <= 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        replicator_common::names::validate_name(&a).unwrap();
        assert_ne!(a, unique_name("a-b.c/d"));
        let root = unique_root();
        replicator_common::paths::Layout::new(&root).unwrap();
        assert_eq!(random_hex(6).len(), 6);
    }
}
