//! How to reach a task's source server: which `host:port` of its config, and
//! the connection options (credentials, `source.tls`). One mechanism for
//! every process that connects to the source: the Core (preflight, schema
//! reads, the binlog stream) and the Monitor (the `stalled` rule's
//! `SHOW MASTER STATUS`), so both reach the same server the same way.
//!
//! Pure apart from reading `ca_file`'s metadata: TLS follows MySQL's
//! `--ssl-mode` names (docs/source-tls.md):
//!
//! - `disabled` (default): plain TCP.
//! - `required`: encrypted, the certificate is not checked.
//! - `verify_ca`: the certificate must chain to `ca_file` (or, without it,
//!   to the built-in web PKI roots); the host name is not meant to be
//!   checked (mysql_async 0.37.1 checks it anyway, see the doc).
//! - `verify_identity`: as `verify_ca`, and the certificate must name the
//!   host connected to.
//!
//! Failure: an unreadable `ca_file` is a [`SourceConnError`]; connection
//! errors are the caller's (the Core classifies them in `source::tls`).
//!
//! Also here, for both processes: [`binlog_status`], where the source's
//! binlog ends, under the statement's old and new names.

use crate::config::{SourceConfig, SourceTls, SourceTlsMode};
use crate::nodes::SourceServer;
use mysql_async::{OptsBuilder, SslOpts};
use std::path::PathBuf;

/// Why connection options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceConnError {
    #[error("source.tls.ca_file `{path}` cannot be read: {source}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The TLS options for `tls`; `None` for plain TCP.
pub fn ssl_opts(tls: Option<&SourceTls>) -> Result<Option<SslOpts>, SourceConnError> {
    let Some(tls) = tls else { return Ok(None) };
    let roots = || -> Result<SslOpts, SourceConnError> {
        let opts = SslOpts::default();
        match &tls.ca_file {
            None => Ok(opts),
            Some(f) => {
                std::fs::metadata(f).map_err(|source| SourceConnError::CaFile {
                    path: f.clone(),
                    source,
                })?;
                Ok(opts
                    .with_root_certs(vec![PathBuf::from(f).into()])
                    .with_disable_built_in_roots(true))
            }
        }
    };
    Ok(match tls.mode {
        SourceTlsMode::Disabled => None,
        SourceTlsMode::Required => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SourceTlsMode::VerifyCa => Some(roots()?.with_danger_skip_domain_validation(true)),
        SourceTlsMode::VerifyIdentity => Some(roots()?),
    })
}

/// Options to reach `host:port` (one of `cfg`'s endpoints) as `cfg.user`
/// with `password`, over TCP, with `cfg.tls`. Callers add their own extras
/// (statement cache, pool limits).
pub fn opts_builder(
    cfg: &SourceConfig,
    host: &str,
    port: u16,
    password: Option<&str>,
) -> Result<OptsBuilder, SourceConnError> {
    Ok(OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(cfg.user.clone()))
        .pass(password.map(str::to_string))
        .prefer_socket(false)
        .ssl_opts(ssl_opts(cfg.tls.as_ref())?))
}

/// The server the task reads from: the one its context names (the Core
/// records the `host:port` it picked from `source.hosts`) while the config
/// still lists it, else the first of the config's endpoints (the one a Core
/// tries first).
pub fn reading_endpoint(
    cfg: &SourceConfig,
    context_server: Option<&SourceServer>,
) -> Option<(String, u16)> {
    let endpoints = cfg.endpoints();
    context_server
        .and_then(|s| {
            endpoints
                .iter()
                .find(|(h, p)| format!("{h}:{p}") == s.addr)
                .cloned()
        })
        .or_else(|| endpoints.into_iter().next())
}

/// The source's binlog status row (`File`, `Position`, ..., and on MySQL
/// `Executed_Gtid_Set`), `None` when binary logging is off:
/// `SHOW MASTER STATUS`, or, where the server does not know that statement
/// (MySQL 8.4 removed it; parse error 1064), `SHOW BINARY LOG STATUS`.
pub async fn binlog_status(
    conn: &mut mysql_async::Conn,
) -> Result<Option<mysql_async::Row>, mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    match conn.query_first("SHOW MASTER STATUS").await {
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            conn.query_first("SHOW BINARY LOG STATUS").await
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: SourceTlsMode, ca: Option<&str>) -> SourceTls {
        SourceTls {
            mode,
            ca_file: ca.map(str::to_string),
        }
    }

    #[test]
    fn modes_map_to_options() {
        assert!(ssl_opts(None).unwrap().is_none());
        assert!(ssl_opts(Some(&tls(SourceTlsMode::Disabled, None)))
            .unwrap()
            .is_none());
        let r = ssl_opts(Some(&tls(SourceTlsMode::Required, None)))
            .unwrap()
            .unwrap();
        assert!(r.accept_invalid_certs() && r.skip_domain_validation());
        let ca = std::env::temp_dir().join(format!("ca-{}.pem", std::process::id()));
        std::fs::write(&ca, "not checked here").unwrap();
        let ca_s = ca.display().to_string();
        let v = ssl_opts(Some(&tls(SourceTlsMode::VerifyCa, Some(&ca_s))))
            .unwrap()
            .unwrap();
        assert!(!v.accept_invalid_certs() && v.skip_domain_validation());
        assert!(v.disable_built_in_roots());
        let i = ssl_opts(Some(&tls(SourceTlsMode::VerifyIdentity, Some(&ca_s))))
            .unwrap()
            .unwrap();
        assert!(!i.accept_invalid_certs() && !i.skip_domain_validation());
        std::fs::remove_file(&ca).ok();
        let e = ssl_opts(Some(&tls(
            SourceTlsMode::VerifyCa,
            Some("/nonexistent/ca.pem"),
        )))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("source.tls.ca_file `/nonexistent/ca.pem` cannot be read"),
            "{e}"
        );
    }

    fn source(hosts: &[&str]) -> SourceConfig {
        let mut cfg: SourceConfig = serde_json::from_value(serde_json::json!({
            "host": "db0", "port": 3306, "user": "repl"
        }))
        .unwrap();
        cfg.hosts = hosts.iter().map(|h| h.to_string()).collect();
        cfg
    }

    fn server(addr: &str) -> SourceServer {
        SourceServer {
            id: "server_id:1".into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn the_server_the_context_names_while_the_config_lists_it() {
        let one = source(&[]);
        assert_eq!(reading_endpoint(&one, None), Some(("db0".into(), 3306)));
        let several = source(&["db1:3306", "db2:3307"]);
        assert_eq!(reading_endpoint(&several, None), Some(("db1".into(), 3306)));
        // after a failover the Core recorded the second server
        assert_eq!(
            reading_endpoint(&several, Some(&server("db2:3307"))),
            Some(("db2".into(), 3307))
        );
        // a server no longer in the config: the first listed one
        assert_eq!(
            reading_endpoint(&several, Some(&server("old:3306"))),
            Some(("db1".into(), 3306))
        );
        assert_eq!(
            reading_endpoint(&one, Some(&server("db0:3306"))),
            Some(("db0".into(), 3306))
        );
    }

    #[test]
    fn options_carry_host_user_and_tls() {
        let mut cfg = source(&["db1:3306"]);
        cfg.tls = Some(tls(SourceTlsMode::Required, None));
        let opts: mysql_async::Opts = opts_builder(&cfg, "db1", 3306, Some("pw")).unwrap().into();
        assert_eq!(opts.ip_or_hostname(), "db1");
        assert_eq!(opts.tcp_port(), 3306);
        assert_eq!(opts.user(), Some("repl"));
        assert_eq!(opts.pass(), Some("pw"));
        assert!(opts.ssl_opts().is_some());
        cfg.tls = Some(tls(SourceTlsMode::VerifyCa, Some("/nonexistent/ca.pem")));
        assert!(opts_builder(&cfg, "db1", 3306, None).is_err());
    }
}
