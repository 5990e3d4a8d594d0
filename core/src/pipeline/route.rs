//! Filters and topic routing, pure.
//!
//! A table `db.table` is replicated when it matches an `include` regex (or
//! there is none) and no `exclude` regex. Its topic is the sink's template
//! with `{database}` and `{table}` expanded; characters Kafka does not allow
//! in topic names become `_`. The snapshot watermark signal table
//! (`source.snapshot_signal_table`) is never replicated, whatever the
//! filters say: the pipeline reads its rows itself.

use regex::Regex;
use replicator_common::config::{compile_table_regex, TaskConfig};

/// Decides whether and where a table's changes go.
#[derive(Debug, Clone)]
pub struct Router {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    template: String,
    /// `source.snapshot_signal_table` as (database, table).
    signal: Option<(String, String)>,
}

impl Router {
    /// Builds the router of a validated config.
    pub fn new(cfg: &TaskConfig) -> Result<Self, regex::Error> {
        Ok(Self {
            include: cfg
                .source
                .include
                .iter()
                .map(|r| compile_table_regex(r))
                .collect::<Result<_, _>>()?,
            exclude: cfg
                .source
                .exclude
                .iter()
                .map(|r| compile_table_regex(r))
                .collect::<Result<_, _>>()?,
            template: cfg.sink.topic.clone(),
            signal: cfg
                .source
                .snapshot_signal()
                .map(|(d, t)| (d.to_string(), t.to_string())),
        })
    }

    /// True for the snapshot watermark signal table.
    pub fn is_signal(&self, database: &str, table: &str) -> bool {
        self.signal
            .as_ref()
            .is_some_and(|(d, t)| d == database && t == table)
    }

    pub fn accepts(&self, database: &str, table: &str) -> bool {
        if self.is_signal(database, table) {
            return false;
        }
        let full = format!("{database}.{table}");
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(&full)))
            && !self.exclude.iter().any(|r| r.is_match(&full))
    }

    pub fn topic(&self, database: &str, table: &str) -> String {
        self.template
            .replace("{database}", &sanitize(database))
            .replace("{table}", &sanitize(table))
    }

    /// The topic of `db.table`, or `None` when the filters skip it.
    pub fn route(&self, database: &str, table: &str) -> Option<String> {
        self.accepts(database, table)
            .then(|| self.topic(database, table))
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn router(include: &[&str], exclude: &[&str], topic: &str) -> Router {
        let cfg = TaskConfig::parse(
            json!({"name": "t", "source": {"host": "h", "user": "u", "server_id": 9,
                   "include": include, "exclude": exclude},
                   "sink": {"brokers": "k:9092", "topic": topic}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        Router::new(&cfg).unwrap()
    }

    #[test]
    fn include_and_exclude_on_full_name() {
        let r = router(&["shop\\..*"], &["shop\\.tmp_.*"], "{database}.{table}");
        assert_eq!(r.route("shop", "orders").as_deref(), Some("shop.orders"));
        assert_eq!(r.route("shop", "tmp_x"), None);
        assert_eq!(
            r.route("shopx", "orders"),
            None,
            "anchored: db must be exactly shop"
        );
        assert_eq!(r.route("other", "orders"), None);
    }

    #[test]
    fn empty_include_takes_everything() {
        let r = router(&[], &[], "cdc.{database}");
        assert_eq!(r.route("a", "b").as_deref(), Some("cdc.a"));
    }

    #[test]
    fn the_signal_table_is_never_replicated() {
        let r = router(&[], &[], "{database}.{table}");
        assert!(r.is_signal("mysql_replicator", "snapshot_signal"));
        assert_eq!(r.route("mysql_replicator", "snapshot_signal"), None);
        assert!(r.accepts("mysql_replicator", "other"));
        assert!(!r.is_signal("mysql_replicator", "Snapshot_signal"));
        let r = router(&["mysql_replicator\\..*"], &[], "{database}.{table}");
        assert_eq!(r.route("mysql_replicator", "snapshot_signal"), None);
    }

    #[test]
    fn sanitizes_topic_names() {
        let r = router(&[], &[], "{database}.{table}");
        assert_eq!(r.topic("my db", "t$1"), "my_db.t_1");
    }
}
