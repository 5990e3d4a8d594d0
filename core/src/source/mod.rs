//! The source server: connection, preflight, start position, binlog stream.
//!
//! Flow out: a [`mysql_async::BinlogStream`] positioned at a transaction
//! boundary (file/pos everywhere; MariaDB GTID through
//! `@slave_connect_state`; MySQL GTID sets through `COM_BINLOG_DUMP_GTID`).
//! On MariaDB the stream is opened with `@mariadb_slave_capability=4` so
//! GTID and annotate events arrive as themselves, not padded dummies, and
//! with a heartbeat period so an idle source still reports progress.
//! Failures: access denied, purged binlog and a misconfigured server are
//! definite errors; anything else is transient.
//!
//! Several servers (`source.hosts`): [`pick`] tries them in order and takes
//! the first that answers, passes preflight and is writable (a primary; a
//! read-only replica is skipped until it is promoted). With one server the
//! classic single-host form keeps working against a read-only replica. The
//! server's identity and GTID state go to [`failover`], which decides whether
//! the run resumes at the context's file/pos or by GTID.

pub mod failover;
pub mod gap;
pub mod preflight;
pub mod schema;
pub mod tls;

use crate::decode::Flavor;
use crate::error::{
    ConfigError, DefiniteError, PreflightError, Refusal, TaskError, TransientError,
};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Sid};
use preflight::{Checked, ServerFacts};
use replicator_common::config::{NamedStart, SourceConfig, StartPosition};
use replicator_common::gtid::{GtidSet, GtidSetParseError};
use replicator_common::gtid_set::MysqlGtidSet;
use replicator_common::nodes::SourceServer;
use replicator_common::position::{BinlogPos, MariaGtidState};
use replicator_common::secret::Secret;
use replicator_common::source_conn;
use std::time::Duration;

/// Where to open the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    File(BinlogPos),
    /// MariaDB GTID state (`0-1-42[,..]`) or MySQL GTID set.
    Gtid(GtidSet),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection options for `cfg`'s `host:port` with an already resolved
/// password (TLS as `source.tls` says: [`source_conn`], shared with the
/// Monitor).
pub fn opts(
    cfg: &SourceConfig,
    password: Option<&Secret>,
) -> Result<mysql_async::Opts, DefiniteError> {
    Ok(
        source_conn::opts_builder(cfg, &cfg.host, cfg.port, password.map(|p| p.expose()))
            .map_err(|e| DefiniteError::Config(e.into()))?
            .stmt_cache_size(16)
            .into(),
    )
}

/// Opens a connection with a deadline.
pub async fn connect(cfg: &SourceConfig, password: Option<&Secret>) -> Result<Conn, TaskError> {
    let opts = opts(cfg, password)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Err(_) => Err(TransientError::SourceTimeout {
            addr: format!("{}:{}", cfg.host, cfg.port),
            waited_s: CONNECT_TIMEOUT.as_secs(),
        }
        .into()),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => {
            let addr = format!("{}:{}", cfg.host, cfg.port);
            Err(tls::classify(cfg.tls.as_ref(), &addr, e))
        }
    }
}

/// Gathers what preflight needs, in three round trips.
pub async fn facts(conn: &mut Conn) -> Result<ServerFacts, TaskError> {
    let (version, server_id): (String, u32) = conn
        .query_first("SELECT VERSION(), @@server_id")
        .await?
        .unwrap_or_default();
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
             ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata')",
        )
        .await?;
    let var = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let grants: Vec<String> = conn.query("SHOW GRANTS").await?;
    Ok(ServerFacts {
        version,
        log_bin: var("log_bin"),
        binlog_format: var("binlog_format"),
        binlog_row_image: var("binlog_row_image"),
        binlog_row_metadata: var("binlog_row_metadata"),
        server_id,
        grants,
    })
}

/// The server a run reads from.
pub struct Picked {
    pub conn: Conn,
    pub checked: Checked,
    /// The task's source config narrowed to this server (`host`/`port` set,
    /// `hosts` empty): what the binlog stream connects to.
    pub cfg: SourceConfig,
    /// Its identity, recorded in the context.
    pub server: SourceServer,
    /// Its GTID state: MariaDB `@@gtid_binlog_pos`, MySQL `@@gtid_executed`.
    pub gtid_pos: GtidSet,
}

/// Who the server is: identity, read-only flag and GTID state (of the
/// server's flavour, also when empty).
async fn identity(
    conn: &mut Conn,
    flavor: Flavor,
    server_id: u32,
) -> Result<(String, bool, GtidSet), TaskError> {
    let read_only: Option<u8> = conn.query_first("SELECT @@global.read_only").await?;
    let bad = |variable, source| DefiniteError::ServerGtid { variable, source };
    if flavor == Flavor::MariaDb {
        let pos: Option<String> = conn.query_first("SELECT @@global.gtid_binlog_pos").await?;
        let state = pos
            .unwrap_or_default()
            .parse::<MariaGtidState>()
            .map_err(|e| bad("@@gtid_binlog_pos", e.into()))?;
        Ok((
            format!("server_id:{server_id}"),
            read_only.unwrap_or(0) != 0,
            GtidSet::Mariadb(state),
        ))
    } else {
        let row: Option<(String, String)> = conn
            .query_first("SELECT @@global.server_uuid, @@global.gtid_executed")
            .await?;
        let (uuid, executed) = row.unwrap_or_default();
        let set = executed
            .parse::<MysqlGtidSet>()
            .map_err(|e| bad("@@gtid_executed", GtidSetParseError::from(e)))?;
        Ok((
            format!("server_uuid:{uuid}"),
            read_only.unwrap_or(0) != 0,
            GtidSet::Mysql(set),
        ))
    }
}

/// Connects to the first usable server of `source.hosts` (or `host:port`)
/// and runs every preflight check on it. When none is usable the error lists
/// why for each; it is definite only when every server refused definitely.
pub async fn pick(cfg: &SourceConfig, password: Option<&Secret>) -> Result<Picked, TaskError> {
    let endpoints = cfg.endpoints();
    let several = endpoints.len() > 1;
    let mut refusals = Vec::new();
    let mut all_definite = true;
    for (host, port) in endpoints {
        let one = SourceConfig {
            host: host.clone(),
            port,
            hosts: Vec::new(),
            ..cfg.clone()
        };
        let addr = format!("{host}:{port}");
        let attempt = async {
            let (conn, checked) = preflight(&one, password).await?;
            Ok::<_, TaskError>((conn, checked))
        };
        let (mut conn, checked) = match attempt.await {
            Ok(x) => x,
            Err(e) if several => {
                all_definite &= matches!(e, TaskError::Definite(_));
                refusals.push(Refusal::Failed { addr, source: e });
                continue;
            }
            Err(e) => return Err(e),
        };
        let server_id: Option<u32> = conn.query_first("SELECT @@global.server_id").await?;
        let (id, read_only, gtid_pos) =
            identity(&mut conn, checked.flavor, server_id.unwrap_or(0)).await?;
        if several && read_only {
            all_definite = false;
            refusals.push(Refusal::ReadOnly { addr });
            let _ = conn.disconnect().await;
            continue;
        }
        return Ok(Picked {
            conn,
            checked,
            cfg: one,
            server: SourceServer { id, addr },
            gtid_pos,
        });
    }
    Err(if all_definite {
        PreflightError::NoUsableServer(refusals).into()
    } else {
        TransientError::NoUsableSource(refusals).into()
    })
}

/// Connects and runs every preflight check.
pub async fn preflight(
    cfg: &SourceConfig,
    password: Option<&Secret>,
) -> Result<(Conn, Checked), TaskError> {
    let mut conn = connect(cfg, password).await?;
    let facts = facts(&mut conn).await?;
    match preflight::check(&facts, cfg.server_id) {
        Ok(c) => Ok((conn, c)),
        Err(problems) => Err(PreflightError::Server(problems).into()),
    }
}

/// Turns a configured start into a concrete position.
pub async fn resolve_start(conn: &mut Conn, start: &StartPosition) -> Result<StartAt, TaskError> {
    match start.clone() {
        StartPosition::File { file, pos } => Ok(StartAt::File(BinlogPos::new(file, pos))),
        StartPosition::Gtid { gtid } => {
            Ok(StartAt::Gtid(gtid.parse().map_err(|e| {
                DefiniteError::Config(ConfigError::StartGtid(e))
            })?))
        }
        StartPosition::Named(NamedStart::Earliest) => {
            let row: Option<mysql_async::Row> = conn.query_first("SHOW BINARY LOGS").await?;
            let file: String = row.and_then(|r| r.get(0)).ok_or(PreflightError::NoBinlog)?;
            Ok(StartAt::File(BinlogPos::new(file, 4)))
        }
        StartPosition::Named(NamedStart::Current) => {
            let row = replicator_common::source_conn::binlog_status(conn)
                .await?
                .ok_or(PreflightError::NoBinlogStatus)?;
            let file: String = row.get(0).unwrap_or_default();
            let pos: u64 = row.get(1).unwrap_or(4);
            Ok(StartAt::File(BinlogPos::new(file, pos)))
        }
    }
}

/// Opens the binlog stream at `start`.
pub async fn open_stream(
    cfg: &SourceConfig,
    password: Option<&Secret>,
    flavor: Flavor,
    start: &StartAt,
    heartbeat: Duration,
) -> Result<BinlogStream, TaskError> {
    let mut conn = connect(cfg, password).await?;
    conn.query_drop(format!(
        "SET @master_heartbeat_period = {}",
        heartbeat.as_nanos()
    ))
    .await?;
    if flavor == Flavor::MariaDb {
        conn.query_drop("SET @mariadb_slave_capability = 4").await?;
    }
    let mut request = BinlogStreamRequest::new(cfg.server_id);
    let file;
    let sids: Vec<Sid<'static>>;
    match start {
        StartAt::File(p) => {
            file = p.file.clone().into_bytes();
            request = request.with_filename(&file).with_pos(p.pos);
        }
        StartAt::Gtid(GtidSet::Mariadb(state)) if flavor == Flavor::MariaDb => {
            conn.exec_drop("SET @slave_connect_state = ?", (state.to_string(),))
                .await?;
            conn.query_drop("SET @slave_gtid_strict_mode = 0").await?;
            request = request.with_pos(4u64);
        }
        StartAt::Gtid(g @ GtidSet::Mariadb(_)) => {
            return Err(DefiniteError::GtidFlavour {
                gtid: g.clone(),
                flavor,
            }
            .into())
        }
        StartAt::Gtid(GtidSet::Mysql(set)) => {
            let text = set.to_string();
            sids = text
                .split(',')
                .map(str::parse::<Sid<'static>>)
                .collect::<Result<_, _>>()
                .map_err(|source| DefiniteError::StreamGtid {
                    gtid: set.clone(),
                    source,
                })?;
            request = request.with_gtid().with_gtid_set(sids.iter().cloned());
        }
    }
    Ok(conn.get_binlog_stream(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that takes the TCP connection and never sends MySQL's
    /// greeting (a hung process, a wrong port): the connection attempt is
    /// given up after [`CONNECT_TIMEOUT`], as a transient error naming it.
    #[tokio::test(start_paused = true)]
    async fn a_source_that_never_answers_is_given_up_after_the_connect_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let cfg = SourceConfig {
            host: "127.0.0.1".into(),
            port,
            user: "repl".into(),
            ..SourceConfig::default()
        };
        let started = tokio::time::Instant::now();
        let err = connect(&cfg, None).await.unwrap_err();
        assert_eq!(started.elapsed(), CONNECT_TIMEOUT);
        assert!(matches!(err, TaskError::Transient(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{port} did not answer within 5 s")),
            "{err}"
        );
        silent.abort();
    }
}
