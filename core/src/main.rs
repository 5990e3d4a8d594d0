//! `replicator-core`: flags in, [`replicator_core::run`] until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Parser;
use replicator_common::cli::ZkArgs;
use replicator_common::paths::TaskRef;
use replicator_core::cold::ColdOptions;
use replicator_core::pipeline::PipelineOptions;
use replicator_core::CoreConfig;
use std::time::Duration;

/// Streams MySQL/MariaDB binlog row changes into Kafka.
#[derive(Parser, Debug)]
#[command(name = "replicator-core", version)]
struct Args {
    #[command(flatten)]
    zk: ZkArgs,
    /// This core's name (unique per host), `[A-Za-z0-9_.-]{1,128}`.
    #[arg(long)]
    host_id: String,
    /// Hot-standby task to serve (repeatable).
    #[arg(long = "task")]
    tasks: Vec<String>,
    /// Cold-standby group to scan (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Cold-standby scan interval.
    #[arg(long, default_value_t = 2000)]
    scan_interval_ms: u64,
    /// Most cold tasks this core runs at once.
    #[arg(long, default_value_t = 1000)]
    max_tasks: usize,
    /// How often the progress context is written.
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
    /// Benchmark only: claim cold tasks without replicating them.
    #[arg(long, hide = true)]
    coordination_only: bool,
    /// Address to serve Prometheus metrics on (`/metrics`), e.g. 127.0.0.1:9187.
    #[arg(long)]
    metrics_addr: Option<String>,
}

fn main() -> anyhow::Result<()> {
    replicator_common::telemetry::init();
    let args = Args::parse();
    let zk = args.zk.options().context("--root")?;
    replicator_common::names::validate_name(&args.host_id).context("--host-id")?;
    if args.tasks.is_empty() && args.groups.is_empty() {
        anyhow::bail!("nothing to do: give at least one --task or --group");
    }
    let tasks = args
        .tasks
        .iter()
        .map(|t| TaskRef::hot(t).with_context(|| format!("--task {t}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for g in &args.groups {
        replicator_common::names::validate_name(g).with_context(|| format!("--group {g}"))?;
    }
    let session_timeout = zk.session_timeout;
    let config = CoreConfig {
        host: args.host_id,
        metrics_addr: args.metrics_addr,
        zk,
        tasks,
        groups: args.groups,
        cold: ColdOptions {
            scan_interval: Duration::from_millis(args.scan_interval_ms),
            max_tasks: args.max_tasks,
            coordination_only: args.coordination_only,
        },
        pipeline: PipelineOptions {
            commit_interval: Duration::from_millis(args.commit_interval_ms),
            message_timeout: (session_timeout * 2 / 3).max(Duration::from_secs(1)),
            ..PipelineOptions::default()
        },
    };
    replicator_common::shutdown::block_on(|stop| replicator_core::run(config, stop))
        .context("runtime and signal handlers")?;
    tracing::info!("stopped");
    Ok(())
}
