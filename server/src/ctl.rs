//! `replicatorctl`: the commands, over [`Client`].
//!
//! In: parsed flags ([`Cli`]). Out: text on stdout (tables from
//! [`crate::render`], or the API's JSON with `--json`), messages on stderr,
//! and an exit code from [`crate::client::exit`] that scripts can rely on.
//! `alerts --watch` polls the server and prints a line whenever an alert
//! fires, resolves or is cleared; a failed poll is reported once and
//! retried, a refused token ends the watch. `tail` talks to Kafka, not to
//! the server ([`crate::tail`]).

use crate::alerts::AlertWatch;
use crate::client::{exit, task_path, Client, ClientError, Reply};
use crate::render;
use crate::status::TaskStatus;
use clap::{Parser, Subcommand};
use replicator_common::nodes::Alert;
use replicator_common::now_ms;
use replicator_common::secret::Secret;
use std::io::{Read, Write};
use std::time::Duration;

/// Exit codes, shown by `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 usage or unreadable file, 2 task not found, \
3 conflict (exists, stale version, ambiguous name), 4 invalid request or config, \
5 unauthorized, 6 server unreachable or ZooKeeper unavailable, 7 other server error.";

/// Command line client of replicator-server.
#[derive(Parser, Debug)]
#[command(name = "replicatorctl", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Server base URL.
    #[arg(
        long,
        env = "REPLICATOR_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// File holding the bearer token (else env REPLICATOR_TOKEN).
    #[arg(long, env = "REPLICATOR_TOKEN_FILE", global = true)]
    pub token_file: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Timeout of each request.
    #[arg(long, default_value_t = 10_000, global = true)]
    pub timeout_ms: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, change, inspect and control tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// List alerts, or follow them with --watch.
    Alerts {
        /// Keep polling and print alerts as they fire and resolve.
        #[arg(long)]
        watch: bool,
        /// Poll interval of --watch.
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        /// Only `firing` or `resolved` alerts.
        #[arg(long)]
        state: Option<String>,
    },
    /// Print the messages of Kafka topics as they arrive (one JSON value a line).
    Tail(crate::tail::TailArgs),
}

/// `NAME [--group G]`.
#[derive(clap::Args, Debug)]
pub struct TaskName {
    pub name: String,
    /// Group of a cold task (needed only when the name exists in several places).
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Create a task from a JSON config file (`-` reads stdin).
    Create { file: String },
    /// Replace a task's config with a JSON file; the Cores apply it live.
    Update {
        file: String,
        /// Only if the task is still at this version (from `task show`).
        #[arg(long)]
        if_version: Option<i32>,
    },
    /// List every task with its state.
    List,
    /// Show a task: instances, progress, config (password redacted).
    Show(TaskName),
    /// Stop replicating, keeping the position.
    Pause(TaskName),
    /// Continue from the kept position.
    Resume(TaskName),
    /// Ask the RUNNING instance to hand over to the next one.
    Switchover(TaskName),
    /// Accept the GTID gap a task stopped on after a source failover: it
    /// resumes from what the new source server has (see docs/source-failover.md).
    AcceptGap(TaskName),
    /// Stop every instance and remove the task's znodes.
    Delete(TaskName),
    /// Copy tables again while the stream goes on (on-demand snapshot).
    Snapshot {
        #[command(flatten)]
        task: TaskName,
        /// A table to copy, `db.table` (repeat for more).
        #[arg(long = "table", required = true)]
        tables: Vec<String>,
    },
}

/// Runs the command; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if let Command::Tail(args) = &cli.command {
        return crate::tail::run(args, out, err);
    }
    let token = match token(&cli) {
        Ok(t) => t,
        Err(msg) => {
            let _ = writeln!(err, "error: {msg}");
            return exit::USAGE;
        }
    };
    let client = Client::new(&cli.server, token, Duration::from_millis(cli.timeout_ms));
    let json = cli.json;
    let result = match cli.command {
        Command::Task { command } => task(&client, command, json, out),
        Command::Alerts {
            watch: false,
            state,
            ..
        } => alerts(&client, state.as_deref(), json, out),
        Command::Alerts {
            watch: true,
            interval_ms,
            state: _,
        } => return watch(&client, Duration::from_millis(interval_ms), json, out, err),
        Command::Tail(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => exit::OK,
        Err(Failure::Usage(msg)) => {
            let _ = writeln!(err, "error: {msg}");
            exit::USAGE
        }
        Err(Failure::Client(e)) => report(&e, json, out, err),
    }
}

enum Failure {
    Usage(String),
    Client(Box<ClientError>),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(Box::new(e))
    }
}

/// `--token-file` cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("token file {path}: {source}")]
struct TokenFileError {
    path: String,
    #[source]
    source: std::io::Error,
}

fn token(cli: &Cli) -> Result<Option<Secret>, TokenFileError> {
    if let Some(f) = &cli.token_file {
        let t = std::fs::read_to_string(f).map_err(|source| TokenFileError {
            path: f.to_string(),
            source,
        })?;
        return Ok(Some(Secret::new(t.trim())));
    }
    Ok(std::env::var("REPLICATOR_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(Secret::new))
}

fn report(e: &ClientError, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = writeln!(err, "error: {e}");
    if let ClientError::Api { problems, body, .. } = e {
        for p in problems {
            let _ = writeln!(err, "  - {p}");
        }
        if json {
            let _ = writeln!(out, "{}", pretty(body));
        }
    }
    e.exit_code()
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn read_file(file: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    let r = if file == "-" {
        std::io::stdin().read_to_end(&mut buf).map(|_| ())
    } else {
        std::fs::read(file).map(|b| buf = b)
    };
    r.map_err(|e| Failure::Usage(format!("cannot read {file}: {e}")))?;
    Ok(buf)
}

fn decode<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, Failure> {
    serde_json::from_value(reply.body.clone()).map_err(|e| {
        Failure::from(ClientError::BadResponse {
            url: "the server".into(),
            reason: format!("unexpected JSON: {e}"),
        })
    })
}

fn task(client: &Client, cmd: TaskCommand, json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let (reply, human) = match cmd {
        TaskCommand::Create { file } => {
            let body = read_file(&file)?;
            let reply = client.send("POST", "/tasks", Some(&body), None)?;
            let s: TaskStatus = decode(&reply)?;
            let text = match &s.group {
                None => format!("created task {} (version {})\n", s.name, s.version),
                Some(g) => format!(
                    "created cold task {} in group {g} (version {})\n",
                    s.name, s.version
                ),
            };
            (reply, text)
        }
        TaskCommand::Update { file, if_version } => {
            let body = read_file(&file)?;
            let name = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_string))
                .ok_or_else(|| {
                    Failure::Usage(format!("{file} is not a JSON task config with a \"name\""))
                })?;
            let reply = client.send("PUT", &task_path(&name, None, ""), Some(&body), if_version)?;
            let s: TaskStatus = decode(&reply)?;
            let text = format!("updated task {} (version {})\n", s.name, s.version);
            (reply, text)
        }
        TaskCommand::List => {
            let reply = client.send("GET", "/tasks", None, None)?;
            let tasks: Vec<TaskStatus> = serde_json::from_value(reply.body["tasks"].clone())
                .map_err(|e| {
                    Failure::from(ClientError::BadResponse {
                        url: "the server".into(),
                        reason: format!("unexpected JSON: {e}"),
                    })
                })?;
            let text = render::task_list(&tasks, now_ms());
            (reply, text)
        }
        TaskCommand::Show(t) => {
            let reply = client.send(
                "GET",
                &task_path(&t.name, t.group.as_deref(), ""),
                None,
                None,
            )?;
            let s: TaskStatus = decode(&reply)?;
            let text = render::task_detail(&s, now_ms());
            (reply, text)
        }
        TaskCommand::Pause(t) => control(client, &t, "pause")?,
        TaskCommand::Resume(t) => control(client, &t, "resume")?,
        TaskCommand::Switchover(t) => control(client, &t, "switchover")?,
        TaskCommand::AcceptGap(t) => control(client, &t, "accept-gap")?,
        TaskCommand::Snapshot { task: t, tables } => {
            let path = task_path(&t.name, t.group.as_deref(), "/snapshot");
            let body = serde_json::to_vec(&serde_json::json!({ "tables": tables }))
                .expect("body serializes");
            let reply = client.send("POST", &path, Some(&body), None)?;
            let text = format!(
                "task {}: snapshot #{} requested of {}\n",
                t.name,
                reply.body["snapshot"]["request"].as_u64().unwrap_or(0),
                tables.join(", ")
            );
            (reply, text)
        }
        TaskCommand::Delete(t) => {
            let reply = client.send(
                "DELETE",
                &task_path(&t.name, t.group.as_deref(), ""),
                None,
                None,
            )?;
            let text = format!(
                "deleted task {} ({} znodes)\n",
                t.name,
                reply.body["znodes"].as_u64().unwrap_or(0)
            );
            (reply, text)
        }
    };
    let _ = if json {
        writeln!(out, "{}", pretty(&reply.body))
    } else {
        write!(out, "{human}")
    };
    Ok(())
}

fn control(client: &Client, t: &TaskName, action: &str) -> Result<(Reply, String), Failure> {
    let path = task_path(&t.name, t.group.as_deref(), &format!("/{action}"));
    let reply = client.send("POST", &path, Some(b""), None)?;
    let desired = reply.body["desired"].as_str().unwrap_or("?");
    let text = match action {
        "switchover" => format!(
            "task {}: switchover #{} requested\n",
            t.name,
            reply.body["switchover"].as_u64().unwrap_or(0)
        ),
        "accept-gap" => format!(
            "task {}: GTID gap acceptance #{} requested\n",
            t.name,
            reply.body["accept_gap"].as_u64().unwrap_or(0)
        ),
        _ => format!("task {}: desired state is {desired}\n", t.name),
    };
    Ok((reply, text))
}

fn alerts(
    client: &Client,
    state: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let path = match state {
        Some(s) => format!("/alerts?state={s}"),
        None => "/alerts".into(),
    };
    let reply = client.send("GET", &path, None, None)?;
    if json {
        let _ = writeln!(out, "{}", pretty(&reply.body));
        return Ok(());
    }
    let list: Vec<Alert> = serde_json::from_value(reply.body["alerts"].clone()).unwrap_or_default();
    let _ = write!(out, "{}", render::alert_table(&list, now_ms()));
    Ok(())
}

fn watch(
    client: &Client,
    interval: Duration,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut w = AlertWatch::default();
    let mut failing = false;
    loop {
        match client.send("GET", "/alerts", None, None) {
            Ok(reply) => {
                if failing {
                    let _ = writeln!(err, "server answers again");
                    failing = false;
                }
                let list: Vec<Alert> =
                    serde_json::from_value(reply.body["alerts"].clone()).unwrap_or_default();
                for e in w.update(list) {
                    let line = if json {
                        serde_json::to_string(&e).unwrap_or_default()
                    } else {
                        render::alert_event(&e, now_ms())
                    };
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
            }
            Err(e) if e.exit_code() == exit::UNAUTHORIZED => return report(&e, json, out, err),
            Err(e) => {
                if !failing {
                    let _ = writeln!(err, "error: {e}; retrying every {interval:?}");
                    failing = true;
                }
            }
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_command_lines() {
        for line in [
            "replicatorctl task create f.json",
            "replicatorctl --json task list",
            "replicatorctl task show orders --group g1",
            "replicatorctl task update f.json --if-version 3",
            "replicatorctl task pause orders",
            "replicatorctl task resume orders",
            "replicatorctl task switchover orders",
            "replicatorctl task accept-gap orders --group g1",
            "replicatorctl task delete orders",
            "replicatorctl alerts --watch --interval-ms 500",
            "replicatorctl --server http://h:1 alerts",
            "replicatorctl tail demo.orders --brokers 127.0.0.1:9092 --from-beginning --max 3",
            "replicatorctl tail a.b c.d --brokers k:9092 --meta --max-wait-ms 500",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            assert!(Cli::try_parse_from(args).is_ok(), "{line}");
        }
        assert!(Cli::try_parse_from(["replicatorctl", "task", "frobnicate"]).is_err());
        assert!(
            Cli::try_parse_from(["replicatorctl", "tail", "--brokers", "k:1"]).is_err(),
            "a topic is required"
        );
    }

    #[test]
    fn unreachable_server_exits_6_and_bad_file_exits_1() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let cli = Cli::try_parse_from(["replicatorctl", "--server", &url, "task", "list"]).unwrap();
        assert_eq!(run(cli, &mut out, &mut err), exit::UNREACHABLE);
        assert!(String::from_utf8_lossy(&err).contains("cannot reach the server"));
        let cli = Cli::try_parse_from([
            "replicatorctl",
            "--server",
            &url,
            "task",
            "create",
            "/nonexistent/file.json",
        ])
        .unwrap();
        assert_eq!(run(cli, &mut out, &mut err), exit::USAGE);
    }
}
