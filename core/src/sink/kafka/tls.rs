//! TLS to the brokers with rustls: the client configuration built once per
//! producer from [`Tls`] settings (trusted CAs from a PEM file or the
//! system's store, an optional client certificate, host name verification
//! that `ssl.endpoint.identification.algorithm=none` turns off while the
//! chain is still verified), and the handshake on a TCP stream.

use replicator_common::kafka_security::Tls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("sink.properties.{key}: cannot read `{file}`: {source}")]
    File {
        key: &'static str,
        file: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("sink.properties.ssl.ca.location: `{0}` holds no certificate")]
    NoCa(String),
    #[error("no trusted CA: give sink.properties.ssl.ca.location (the system store is empty)")]
    NoSystemCa,
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS set-up: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A client configuration for every broker connection of one producer.
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &tls.ca_file {
        Some(file) => {
            let certs = read_certs("ssl.ca.location", file)?;
            if certs.is_empty() {
                return Err(TlsSetupError::NoCa(file.clone()));
            }
            for c in certs {
                roots.add(c)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // a system certificate rustls cannot use is skipped, as browsers do
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(TlsSetupError::NoSystemCa);
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if tls.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName { inner }))
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("ssl.certificate.location", cert)?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|source| TlsSetupError::File {
                    key: "ssl.key.location",
                    file: key.clone(),
                    source,
                })?;
            builder.with_client_auth_cert(chain, key_der)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(
    key: &'static str,
    file: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let err = |source| TlsSetupError::File {
        key,
        file: file.to_string(),
        source,
    };
    CertificateDer::pem_file_iter(file)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)
}

/// Runs the TLS handshake with the broker at `host`.
pub async fn connect(
    config: &Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{host}` is not a host name for TLS: {e}"),
        )
    })?;
    TlsConnector::from(config.clone()).connect(name, tcp).await
}

/// True when a TLS error means the broker cannot be trusted (retrying does
/// not help): its certificate did not verify, or it refused ours.
pub fn is_trust_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::AlertReceived(_)
                    | rustls::Error::PeerIncompatible(_)
            )
        })
}

/// Verifies the chain as WebPKI does but accepts any host name.
#[derive(Debug)]
struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> Tls {
        Tls {
            ca_file: ca.map(str::to_string),
            cert_file: cert.map(str::to_string),
            key_file: key.map(str::to_string),
            ..Tls::default()
        }
    }

    #[test]
    fn unreadable_or_empty_files_are_named_with_their_setting() {
        let dir = std::env::temp_dir().join(format!("replicator-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem").display().to_string();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        let empty = empty.display().to_string();

        let e = client_config(&tls(Some(&missing), None, None)).unwrap_err();
        assert!(
            matches!(&e, TlsSetupError::File { key: "ssl.ca.location", file, .. } if *file == missing),
            "{e}"
        );
        assert!(
            std::error::Error::source(&e).is_some(),
            "the I/O error is kept"
        );
        let e = client_config(&tls(Some(&empty), None, None)).unwrap_err();
        assert!(
            matches!(e, TlsSetupError::NoCa(ref f) if *f == empty),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
