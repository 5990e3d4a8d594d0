//! `replicator-monitor`: flags (and `--config FILE`) in,
//! [`replicator_monitor::run`] until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Parser;
use replicator_common::cli::ZkArgs;
use replicator_monitor::{FileConfig, KafkaChannel, MonitorConfig};
use std::path::PathBuf;

/// Watches the replicator cluster in ZooKeeper, raises alerts and notifies.
#[derive(Parser, Debug)]
#[command(name = "replicator-monitor", version)]
struct Args {
    #[command(flatten)]
    zk: ZkArgs,
    /// This monitor's name in the leader election (default: the host name).
    #[arg(long)]
    host_id: Option<String>,
    /// HTTP address for GET /alerts, /metrics and /healthz.
    #[arg(long)]
    listen: String,
    /// Webhook receiving each notification as an HTTP POST of the alert JSON (repeatable; http:// only).
    #[arg(long = "webhook")]
    webhooks: Vec<String>,
    /// Kafka topic receiving each notification (created when missing); needs --brokers.
    #[arg(long)]
    alert_topic: Option<String>,
    /// Kafka bootstrap servers for --alert-topic.
    #[arg(long)]
    brokers: Option<String>,
    /// A TLS/SASL setting of the alert topic's Kafka client, KEY=VALUE
    /// (repeatable): security.protocol, ssl.ca.location, sasl.mechanism, ...
    #[arg(long = "kafka-property")]
    kafka_properties: Vec<String>,
    /// JSON config file (thresholds, webhooks, alert topic); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// How often the cluster is read and the rules evaluated [default: 1000].
    #[arg(long)]
    poll_interval_ms: Option<u64>,
    /// task_not_running: grace before a task with no RUNNING instance alerts [default: 30000].
    #[arg(long)]
    not_running_grace_ms: Option<u64>,
    /// no_standby: grace before a hot task short of its redundancy alerts [default: 30000].
    #[arg(long)]
    no_standby_grace_ms: Option<u64>,
    /// replication_lag: largest accepted lag [default: 60000].
    #[arg(long)]
    lag_ms: Option<u64>,
    /// stalled: how long the context may stand still behind its source [default: 60000].
    #[arg(long)]
    stalled_ms: Option<u64>,
    /// How often sources are asked SHOW MASTER STATUS [default: 5000].
    #[arg(long)]
    source_poll_interval_ms: Option<u64>,
    /// task_error: how long an instance error lasts before it alerts [default: 0].
    #[arg(long)]
    task_error_grace_ms: Option<u64>,
    /// task_retrying: how long the RUNNING instance may keep failing with transient errors [default: 30000].
    #[arg(long, visible_alias = "retrying-threshold-ms")]
    retrying_ms: Option<u64>,
    /// core_lost: grace before a vanished core alerts [default: 10000].
    #[arg(long)]
    core_lost_grace_ms: Option<u64>,
    /// core_lost: a core gone this long is forgotten and its alert resolved [default: 86400000].
    #[arg(long)]
    core_lost_expire_ms: Option<u64>,
    /// failover: how long the informational alert stays active [default: 60000].
    #[arg(long)]
    failover_hold_ms: Option<u64>,
    /// How often an active alert is notified again [default: 3600000].
    #[arg(long)]
    repeat_interval_ms: Option<u64>,
    /// How long a resolved alert stays in /alerts before it is deleted [default: 60000].
    #[arg(long)]
    resolved_linger_ms: Option<u64>,
    /// Timeout of one webhook POST [default: 5000].
    #[arg(long)]
    webhook_timeout_ms: Option<u64>,
    /// Attempts per webhook notification [default: 8].
    #[arg(long)]
    webhook_max_attempts: Option<u32>,
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "monitor".into()
    } else {
        clean
    }
}

fn config(args: Args) -> anyhow::Result<MonitorConfig> {
    let zk = args.zk.options().context("--root")?;
    let host = args.host_id.unwrap_or_else(host_name);
    replicator_common::names::validate_name(&host).context("--host-id")?;
    let mut file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let th = &mut file.thresholds;
    for (flag, slot) in [
        (args.poll_interval_ms, &mut th.poll_interval_ms),
        (args.not_running_grace_ms, &mut th.not_running_grace_ms),
        (args.no_standby_grace_ms, &mut th.no_standby_grace_ms),
        (args.lag_ms, &mut th.lag_ms),
        (args.stalled_ms, &mut th.stalled_ms),
        (
            args.source_poll_interval_ms,
            &mut th.source_poll_interval_ms,
        ),
        (args.task_error_grace_ms, &mut th.task_error_grace_ms),
        (args.retrying_ms, &mut th.retrying_ms),
        (args.core_lost_grace_ms, &mut th.core_lost_grace_ms),
        (args.core_lost_expire_ms, &mut th.core_lost_expire_ms),
        (args.failover_hold_ms, &mut th.failover_hold_ms),
        (args.repeat_interval_ms, &mut th.repeat_interval_ms),
        (args.resolved_linger_ms, &mut th.resolved_linger_ms),
        (args.webhook_timeout_ms, &mut file.webhook.timeout_ms),
    ] {
        if let Some(v) = flag {
            *slot = v;
        }
    }
    if let Some(v) = args.webhook_max_attempts {
        file.webhook.max_attempts = v;
    }
    file.thresholds
        .check()
        .map_err(replicator_monitor::MonitorError::Setting)?;
    let mut webhooks = file.webhooks;
    webhooks.extend(args.webhooks);
    let topic = args.alert_topic.or(file.alert_topic);
    let brokers = args.brokers.or(file.brokers);
    let kafka = match (topic, brokers) {
        (Some(topic), Some(brokers)) => {
            replicator_common::config::check_topic_template(&topic)
                .map_err(|e| anyhow::anyhow!("--alert-topic {e}"))?;
            let mut props = file.kafka_properties;
            props.extend(
                replicator_common::kafka_security::KafkaSecurity::flags(&args.kafka_properties)
                    .map_err(|e| anyhow::anyhow!("--kafka-property {e}"))?,
            );
            let security = replicator_common::kafka_security::KafkaSecurity::parse_only(&props)
                .map_err(|bad| anyhow::anyhow!("Kafka properties: {bad}"))?;
            let properties = security
                .client_properties()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(KafkaChannel {
                topic,
                brokers,
                properties,
            })
        }
        (Some(_), None) => anyhow::bail!("--alert-topic needs --brokers"),
        (None, _) => None,
    };
    Ok(MonitorConfig {
        host,
        zk,
        listen: args.listen,
        webhooks,
        webhook: file.webhook,
        kafka,
        thresholds: file.thresholds,
    })
}

fn main() -> anyhow::Result<()> {
    replicator_common::telemetry::init();
    let config = config(Args::parse())?;
    tracing::info!(thresholds = ?config.thresholds, webhooks = config.webhooks.len(),
        kafka = ?config.kafka.as_ref().map(|k| &k.topic), "starting");
    replicator_common::shutdown::block_on(|stop| replicator_monitor::run(config, stop))
        .context("runtime and signal handlers")??;
    Ok(())
}
