//! TLS errors from the source server (`source.tls`, MySQL's `--ssl-mode`
//! modes).
//!
//! The TLS options themselves come from
//! [`replicator_common::source_conn::ssl_opts`], shared with the Monitor
//! (rustls with the ring provider, as the Kafka side uses). Here: for a
//! failed connection, a definite error that says what went wrong with TLS.
//! A server that does not offer TLS and a certificate that does not verify
//! are definite errors (retrying does not fix them); other connection
//! errors are left to the caller.

use crate::error::{DefiniteError, TaskError};
use replicator_common::config::{SourceTls, SourceTlsMode};

fn mode_name(mode: SourceTlsMode) -> &'static str {
    match mode {
        SourceTlsMode::Disabled => "disabled",
        SourceTlsMode::Required => "required",
        SourceTlsMode::VerifyCa => "verify_ca",
        SourceTlsMode::VerifyIdentity => "verify_identity",
    }
}

/// A definite error when `e`, from connecting to `addr` with `tls`, is a TLS
/// problem; `None` otherwise.
pub fn classify(tls: Option<&SourceTls>, addr: &str, e: &mysql_async::Error) -> Option<TaskError> {
    let tls = tls.filter(|t| t.mode != SourceTlsMode::Disabled)?;
    let mode = mode_name(tls.mode);
    let text = e.to_string();
    let definite = |msg: String| Some(TaskError::from(DefiniteError::SourceTls(msg)));
    match e {
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => definite(
            format!("{addr} does not offer TLS (source.tls.mode is {mode}; enable ssl on the server or set the mode to disabled)"),
        ),
        mysql_async::Error::Io(mysql_async::IoError::Tls(_)) => {
            definite(format!("TLS to {addr} (source.tls.mode {mode}): {text}"))
        }
        _ if text.contains("invalid peer certificate") || text.contains("certificate") => {
            definite(format!(
                "the certificate of {addr} does not verify (source.tls.mode {mode}{}): {text}",
                tls.ca_file
                    .as_deref()
                    .map(|f| format!(", ca_file {f}"))
                    .unwrap_or_default()
            ))
        }
        _ => None,
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
    fn no_tls_offered_is_definite() {
        let e = mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        let t = tls(SourceTlsMode::Required, None);
        let got = classify(Some(&t), "db:3306", &e).unwrap().to_string();
        assert!(got.contains("db:3306 does not offer TLS"), "{got}");
        // without TLS configured the same error is not ours to explain
        assert!(classify(None, "db:3306", &e).is_none());
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::other(
            "connection refused",
        )));
        assert!(classify(Some(&t), "db:3306", &io).is_none());
    }
}
