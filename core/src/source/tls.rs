//! TLS to the source server (`source.tls`), MySQL's `--ssl-mode` modes.
//!
//! Flow in: the task's `source.tls`. Flow out: the `mysql_async` TLS options
//! (rustls with the ring provider, as the Kafka side uses) and, for a failed
//! connection, a definite error that says what went wrong with TLS:
//!
//! - `disabled` (default): plain TCP.
//! - `required`: encrypted, the certificate is not checked.
//! - `verify_ca`: the certificate must chain to `ca_file` (or, without it,
//!   to the built-in web PKI roots); the host name is not meant to be
//!   checked, but mysql_async 0.37.1's rustls verifier recognises a name
//!   mismatch by the text `NotValidForName`, which rustls 0.23 no longer
//!   prints, so today the name is checked too (docs/source-tls.md).
//! - `verify_identity`: as `verify_ca`, and the certificate must name the
//!   host connected to.
//!
//! Failures: a `ca_file` that cannot be read, a server that does not offer
//! TLS and a certificate that does not verify are definite errors (retrying
//! does not fix them); other connection errors are left to the caller.

use crate::error::{DefiniteError, TaskError};
use mysql_async::SslOpts;
use replicator_common::config::{SourceTls, SourceTlsMode};
use std::path::PathBuf;

/// The TLS options for `tls`; `None` for plain TCP.
pub fn ssl_opts(tls: Option<&SourceTls>) -> Result<Option<SslOpts>, DefiniteError> {
    let Some(tls) = tls else { return Ok(None) };
    let roots = || -> Result<SslOpts, DefiniteError> {
        let opts = SslOpts::default();
        match &tls.ca_file {
            None => Ok(opts),
            Some(f) => {
                std::fs::metadata(f).map_err(|e| {
                    DefiniteError::Config(format!("source.tls.ca_file `{f}` cannot be read: {e}"))
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
