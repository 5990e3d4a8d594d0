//! One connection to a broker: TCP, TLS when configured, SASL login when
//! configured, then a request frame out and its response in, one at a time,
//! each bounded by a timeout.

use super::sasl::{self, Login, SaslError, Scram};
use super::wire::{Reader, WireError};
use super::{protocol, tls};
use replicator_common::kafka_security::Mechanism;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How to open connections: the same for every broker of one producer.
#[derive(Clone)]
pub struct Client {
    pub client_id: String,
    /// Bound of a connect, a handshake and each request.
    pub timeout: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<Login>,
}

impl Client {
    /// Plaintext, no login.
    pub fn plaintext(client_id: &str, timeout: Duration) -> Self {
        Self {
            client_id: client_id.to_string(),
            timeout,
            tls: None,
            sasl: None,
        }
    }
}

/// A byte stream to a broker, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Largest response accepted (a produce response is a few bytes per partition).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connecting to Kafka at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka at {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka at {addr} did not answer within {ms} ms")]
    Timeout { addr: String, ms: u128 },
    #[error("Kafka at {addr} answered correlation id {got}, expected {want}")]
    Correlation { addr: String, got: i32, want: i32 },
    #[error("Kafka at {addr} sent a response that does not parse: {source}")]
    Wire { addr: String, source: WireError },
    #[error("TLS with Kafka at {addr}: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("SASL {mechanism} login at Kafka {addr} as `{user}`: {source}")]
    Sasl {
        addr: String,
        mechanism: &'static str,
        user: String,
        source: SaslError,
    },
}

impl ConnError {
    /// True when retrying cannot help: the broker's certificate does not
    /// verify, or the login was refused.
    pub fn is_definite(&self) -> bool {
        match self {
            ConnError::Tls { source, .. } => tls::is_trust_error(source),
            ConnError::Sasl { .. } => true,
            _ => false,
        }
    }
}

pub struct Conn {
    addr: String,
    stream: Box<dyn Io>,
    next: i32,
    client_id: String,
    timeout: Duration,
}

impl Conn {
    /// Connects to `addr` (`host:port`), with TLS and a SASL login when the
    /// client says so; the whole set-up is bounded by the client's timeout.
    pub async fn connect(addr: &str, client: &Client) -> Result<Self, ConnError> {
        let connect = |source| ConnError::Connect {
            addr: addr.to_string(),
            source,
        };
        let timed_out = || connect(std::io::ErrorKind::TimedOut.into());
        let tcp = tokio::time::timeout(client.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(connect)?;
        tcp.set_nodelay(true).map_err(connect)?;
        let stream: Box<dyn Io> = match &client.tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let s = tokio::time::timeout(client.timeout, tls::connect(config, host, tcp))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|source| ConnError::Tls {
                        addr: addr.to_string(),
                        source,
                    })?;
                Box::new(s)
            }
        };
        let mut conn = Self {
            addr: addr.to_string(),
            stream,
            next: 0,
            client_id: client.client_id.clone(),
            timeout: client.timeout,
        };
        if let Some(login) = &client.sasl {
            conn.login(login).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake, then the mechanism's SaslAuthenticate round trips.
    async fn login(&mut self, login: &Login) -> Result<(), ConnError> {
        let fail = |addr: &str, source: SaslError| ConnError::Sasl {
            addr: addr.to_string(),
            mechanism: login.mechanism.name(),
            user: login.username.clone(),
            source,
        };
        let mut frame = self.request(sasl::SASL_HANDSHAKE, sasl::SASL_HANDSHAKE_VERSION);
        sasl::handshake(&mut frame, login.mechanism);
        let body = self
            .call(sasl::SASL_HANDSHAKE, sasl::SASL_HANDSHAKE_VERSION, frame)
            .await?;
        let (error, offered) =
            sasl::read_handshake(&mut Reader::new(&body)).map_err(wire(&self.addr))?;
        if error != 0 {
            return Err(fail(
                &self.addr,
                SaslError::Unsupported {
                    want: login.mechanism.name(),
                    offered: offered.join(", "),
                },
            ));
        }
        match login.mechanism {
            Mechanism::Plain => {
                self.authenticate(&sasl::plain(login))
                    .await?
                    .map_err(|e| fail(&self.addr, e))?;
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let mut scram = Scram::new(login);
                let server_first = self
                    .authenticate(&scram.client_first())
                    .await?
                    .map_err(|e| fail(&self.addr, e))?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| fail(&self.addr, e))?;
                let server_final = self
                    .authenticate(&client_final)
                    .await?
                    .map_err(|e| fail(&self.addr, e))?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| fail(&self.addr, e))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round trip: the broker's bytes, or its refusal.
    async fn authenticate(&mut self, auth: &[u8]) -> Result<Result<Vec<u8>, SaslError>, ConnError> {
        let mut frame = self.request(sasl::SASL_AUTHENTICATE, sasl::SASL_AUTHENTICATE_VERSION);
        sasl::authenticate(&mut frame, auth);
        let body = self
            .call(
                sasl::SASL_AUTHENTICATE,
                sasl::SASL_AUTHENTICATE_VERSION,
                frame,
            )
            .await?;
        let (error, message, bytes) =
            sasl::read_authenticate(&mut Reader::new(&body)).map_err(wire(&self.addr))?;
        if error != 0 {
            return Ok(Err(SaslError::Failed(format!(
                "{} ({error}){}",
                protocol::error_name(error),
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ))));
        }
        Ok(Ok(bytes))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A new request frame; append the body and pass it to [`Conn::call`].
    pub fn request(&mut self, api_key: i16, version: i16) -> Vec<u8> {
        self.next = self.next.wrapping_add(1);
        protocol::start(api_key, version, self.next, &self.client_id)
    }

    /// Sends `frame` and returns the response body after its header.
    pub async fn call(
        &mut self,
        api_key: i16,
        version: i16,
        mut frame: Vec<u8>,
    ) -> Result<Vec<u8>, ConnError> {
        protocol::finish(&mut frame);
        let want = self.next;
        let ms = self.timeout.as_millis();
        let body = tokio::time::timeout(self.timeout, self.round_trip(&frame))
            .await
            .map_err(|_| ConnError::Timeout {
                addr: self.addr.clone(),
                ms,
            })?
            .map_err(|source| ConnError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        let (got, r) =
            protocol::response(api_key, version, &body).map_err(|source| ConnError::Wire {
                addr: self.addr.clone(),
                source,
            })?;
        if got != want {
            return Err(ConnError::Correlation {
                addr: self.addr.clone(),
                got,
                want,
            });
        }
        let consumed = body.len() - r.remaining();
        Ok(body[consumed..].to_vec())
    }

    async fn round_trip(&mut self, frame: &[u8]) -> std::io::Result<Vec<u8>> {
        self.stream.write_all(frame).await?;
        let len = self.stream.read_i32().await?;
        if len < 4 || len as usize > MAX_RESPONSE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("response size {len}"),
            ));
        }
        let mut body = vec![0; len as usize];
        self.stream.read_exact(&mut body).await?;
        Ok(body)
    }
}

/// A `WireError` while reading a response body, with the broker named.
pub fn wire(addr: &str) -> impl Fn(WireError) -> ConnError + '_ {
    move |source| ConnError::Wire {
        addr: addr.to_string(),
        source,
    }
}
