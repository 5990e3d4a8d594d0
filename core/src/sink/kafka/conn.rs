//! One TCP connection to a broker: a request frame out, its response in,
//! one at a time, each bounded by a timeout.

use super::protocol;
use super::wire::WireError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

pub struct Conn {
    addr: String,
    stream: TcpStream,
    next: i32,
    client_id: String,
    timeout: Duration,
}

impl Conn {
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Self, ConnError> {
        let connect = |source| ConnError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        Ok(Self {
            addr: addr.to_string(),
            stream,
            next: 0,
            client_id: client_id.to_string(),
            timeout,
        })
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
