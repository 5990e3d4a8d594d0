//! One connection to a broker: TCP, TLS when configured, SASL login when
//! configured, then a request out and its response in, one at a time, each
//! bounded by a timeout. Requests and responses are the `kafka-protocol`
//! crate's message types (framed by [`protocol`]); ours is the
//! connection: correlation ids, the timeout, the login sequence.

use super::protocol::{self, WireError};
use super::sasl::{self, Login, SaslError, Scram};
use super::tls;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use replicator_common::kafka_security::Mechanism;
use std::marker::PhantomData;
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
    #[error("Kafka at {addr}, a message that does not encode or decode: {source}")]
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
        let hello = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(login.mechanism.name()));
        let answer = self.call(&hello, sasl::SASL_VERSION).await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
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
    async fn authenticate(&mut self, auth: &[u8]) -> Result<Result<Bytes, SaslError>, ConnError> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(auth));
        let answer = self.call(&req, sasl::SASL_VERSION).await?;
        if answer.error_code != 0 {
            let error = answer.error_code;
            return Ok(Err(SaslError::Failed(format!(
                "{} ({error}){}",
                protocol::error_name(error),
                answer
                    .error_message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ))));
        }
        Ok(Ok(answer.auth_bytes))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Encodes `req` with the next correlation id, ready for
    /// [`Conn::exchange`] (apart, so a check can run between the two).
    pub fn encode<R: Request>(&mut self, req: &R, version: i16) -> Result<Frame<R>, ConnError> {
        self.next = self.next.wrapping_add(1);
        let bytes = protocol::encode_request(req, version, self.next, &self.client_id)
            .map_err(wire(&self.addr))?;
        Ok(Frame {
            bytes,
            correlation: self.next,
            version,
            request: PhantomData,
        })
    }

    /// Sends an encoded request and returns its decoded response.
    pub async fn exchange<R: Request>(
        &mut self,
        frame: Frame<R>,
    ) -> Result<R::Response, ConnError> {
        let ms = self.timeout.as_millis();
        let body = tokio::time::timeout(self.timeout, self.round_trip(&frame.bytes))
            .await
            .map_err(|_| ConnError::Timeout {
                addr: self.addr.clone(),
                ms,
            })?
            .map_err(|source| ConnError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        let mut body = Bytes::from(body);
        let got = protocol::response_correlation::<R>(&mut body, frame.version)
            .map_err(wire(&self.addr))?;
        if got != frame.correlation {
            return Err(ConnError::Correlation {
                addr: self.addr.clone(),
                got,
                want: frame.correlation,
            });
        }
        protocol::decode_response::<R>(&mut body, frame.version).map_err(wire(&self.addr))
    }

    /// [`Conn::encode`] and [`Conn::exchange`].
    pub async fn call<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ConnError> {
        let frame = self.encode(req, version)?;
        self.exchange(frame).await
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

/// A request encoded for one connection (its correlation id), not sent yet.
pub struct Frame<R> {
    bytes: BytesMut,
    correlation: i32,
    version: i16,
    request: PhantomData<R>,
}

/// A request that does not encode or a response that does not decode, with
/// the broker named.
pub fn wire(addr: &str) -> impl Fn(WireError) -> ConnError + '_ {
    move |source| ConnError::Wire {
        addr: addr.to_string(),
        source,
    }
}
