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

use crate::error::{DefiniteError, SourceTlsError, TaskError};
use replicator_common::config::{SourceTls, SourceTlsMode};

fn mode_name(mode: SourceTlsMode) -> &'static str {
    match mode {
        SourceTlsMode::Disabled => "disabled",
        SourceTlsMode::Required => "required",
        SourceTlsMode::VerifyCa => "verify_ca",
        SourceTlsMode::VerifyIdentity => "verify_identity",
    }
}

/// The error of a failed connection to `addr` with `tls`: a definite
/// [`SourceTlsError`] when `e` is a TLS problem, else `e` as it is.
pub fn classify(tls: Option<&SourceTls>, addr: &str, e: mysql_async::Error) -> TaskError {
    let Some(tls) = tls.filter(|t| t.mode != SourceTlsMode::Disabled) else {
        return e.into();
    };
    let (addr, mode) = (addr.to_string(), mode_name(tls.mode));
    let text = e.to_string();
    let tls_error = match e {
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            SourceTlsError::NotOffered { addr, mode }
        }
        source @ mysql_async::Error::Io(mysql_async::IoError::Tls(_)) => {
            SourceTlsError::Handshake {
                addr,
                mode,
                source: Box::new(source),
            }
        }
        source if text.contains("invalid peer certificate") || text.contains("certificate") => {
            SourceTlsError::Certificate {
                addr,
                mode,
                ca_file: tls.ca_file.clone(),
                source: Box::new(source),
            }
        }
        other => return other.into(),
    };
    DefiniteError::SourceTls(tls_error).into()
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
        let got = classify(Some(&t), "db:3306", e);
        assert!(
            matches!(
                got,
                TaskError::Definite(DefiniteError::SourceTls(SourceTlsError::NotOffered { .. }))
            ),
            "{got:?}"
        );
        assert!(
            got.to_string().contains("db:3306 does not offer TLS"),
            "{got}"
        );
        // without TLS configured the same error is not ours to explain
        let e = mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        let got = classify(None, "db:3306", e);
        assert!(matches!(got, TaskError::Transient(_)), "{got:?}");
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::other(
            "connection refused",
        )));
        let got = classify(Some(&t), "db:3306", io);
        assert!(matches!(got, TaskError::Transient(_)), "{got:?}");
    }
}
