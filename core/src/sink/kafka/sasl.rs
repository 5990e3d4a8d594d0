//! SASL authentication of a broker connection: the PLAIN and
//! SCRAM-SHA-256/512 client mechanisms (RFC 4616, RFC 5802, RFC 7677). Pure:
//! [`Scram`] is a state machine over the bytes; [`super::conn`] carries them
//! in `SaslHandshake` (v1) and `SaslAuthenticate` (v1) requests, which the
//! `kafka-protocol` crate encodes and decodes like every other request.
//!
//! Our own code because no well-kept open-source crate offers a SCRAM client
//! with SHA-512 (the `sasl` crate has SHA-1 and SHA-256 only, `rsasl`
//! likewise, `scram-rs` is not open source; `kafka-protocol` has the
//! messages, not the mechanisms); the primitives (HMAC, PBKDF2, SHA-2) come
//! from the RustCrypto crates.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Mac, SimpleHmac};
use replicator_common::kafka_security::Mechanism;
use replicator_common::secret::Secret;
use sha2::digest::{core_api::BlockSizeUser, Digest};
use sha2::{Sha256, Sha512};

/// Version of `SaslHandshake` and of `SaslAuthenticate` (Kafka 1.0 on).
pub const SASL_VERSION: i16 = 1;

/// A user and password to log in with.
#[derive(Debug, Clone)]
pub struct Login {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Secret,
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the broker does not offer {want} (it offers {offered})")]
    Unsupported { want: &'static str, offered: String },
    #[error("authentication failed: {0}")]
    Failed(String),
    #[error("the broker's SCRAM answer is not valid: {0}")]
    Protocol(String),
}

/// The single PLAIN message: no authorization id, user, password.
pub fn plain(login: &Login) -> Vec<u8> {
    let mut m = Vec::with_capacity(login.username.len() + login.password.expose().len() + 2);
    m.push(0);
    m.extend_from_slice(login.username.as_bytes());
    m.push(0);
    m.extend_from_slice(login.password.expose().as_bytes());
    m
}

/// A SCRAM client exchange: [`Scram::client_first`], then
/// [`Scram::client_final`] with the server's first message, then
/// [`Scram::verify_server_final`].
pub struct Scram {
    sha512: bool,
    password: Secret,
    client_first_bare: String,
    nonce: String,
    /// Set by `client_final`: the server signature to expect.
    expected: Option<Vec<u8>>,
}

impl Scram {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(login: &Login) -> Self {
        let nonce: [u8; 18] = rand::random();
        Self::with_nonce(login, &B64.encode(nonce))
    }

    fn with_nonce(login: &Login, nonce: &str) -> Self {
        let user = login.username.replace('=', "=3D").replace(',', "=2C");
        Self {
            sha512: login.mechanism == Mechanism::ScramSha512,
            password: login.password.clone(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
            expected: None,
        }
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The proof for the server's first message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| SaslError::Protocol("server-first-message is not UTF-8".into()))?;
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        if let Some(e) = field("e") {
            return Err(SaslError::Failed(e.to_string()));
        }
        let nonce = field("r").ok_or_else(|| SaslError::Protocol("no nonce".into()))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(SaslError::Protocol(
                "the server nonce does not extend ours".into(),
            ));
        }
        let salt = field("s")
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| SaslError::Protocol("no valid salt".into()))?;
        let iterations: u32 = field("i")
            .and_then(|i| i.parse().ok())
            .filter(|i| *i > 0)
            .ok_or_else(|| SaslError::Protocol("no valid iteration count".into()))?;
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let password = self.password.expose().as_bytes();
        let (proof, server_signature) = if self.sha512 {
            proofs::<Sha512>(password, &salt, iterations, auth_message.as_bytes())
        } else {
            proofs::<Sha256>(password, &salt, iterations, auth_message.as_bytes())
        };
        self.expected = Some(server_signature);
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's signature (the broker proves it knows the password too).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(SaslError::Failed(e.to_string()));
        }
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.trim_end()).ok())
            .ok_or_else(|| SaslError::Protocol("server-final-message has no signature".into()))?;
        match &self.expected {
            Some(want) if *want == got => Ok(()),
            _ => Err(SaslError::Protocol(
                "the server signature does not match: the broker does not know this password"
                    .into(),
            )),
        }
    }
}

/// (client proof, server signature) of RFC 5802 for hash `D`.
fn proofs<D>(password: &[u8], salt: &[u8], iterations: u32, auth: &[u8]) -> (Vec<u8>, Vec<u8>)
where
    D: Digest + BlockSizeUser + Clone + Sync,
{
    let mut salted = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2::<SimpleHmac<D>>(password, salt, iterations, &mut salted)
        .expect("HMAC takes keys of any length");
    let hmac = |key: &[u8], data: &[u8]| -> Vec<u8> {
        let mut m = <SimpleHmac<D> as Mac>::new_from_slice(key).expect("any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = D::digest(&client_key);
    let signature = hmac(&stored_key, auth);
    let proof = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    (proof, hmac(&server_key, auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(mechanism: Mechanism, user: &str, pw: &str) -> Login {
        Login {
            mechanism,
            username: user.into(),
            password: Secret::new(pw),
        }
    }

    /// The SCRAM-SHA-256 example exchange of RFC 7677, section 3.
    #[test]
    fn rfc7677_example() {
        let mut s = Scram::with_nonce(
            &login(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = s.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(matches!(
            s.verify_server_final(b"v=AAAA"),
            Err(SaslError::Protocol(_))
        ));
        assert_eq!(
            s.verify_server_final(b"e=invalid-proof"),
            Err(SaslError::Failed("invalid-proof".into()))
        );
    }

    #[test]
    fn sha512_proof_has_the_hash_length_and_names_are_escaped() {
        let mut s = Scram::with_nonce(&login(Mechanism::ScramSha512, "a=b,c", "pw"), "abc");
        assert_eq!(s.client_first(), b"n,,n=a=3Db=2Cc,r=abc");
        let fin = s.client_final(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
        let proof = String::from_utf8(fin).unwrap();
        let p = proof.rsplit_once(",p=").unwrap().1;
        assert_eq!(B64.decode(p).unwrap().len(), 64);
    }

    #[test]
    fn bad_server_first_messages_are_refused() {
        let l = login(Mechanism::ScramSha256, "u", "p");
        for bad in [
            &b"r=other,s=c2FsdA==,i=4096"[..],
            b"r=abc,s=c2FsdA==,i=4096",
            b"r=abcd,s=!!,i=4096",
            b"r=abcd,s=c2FsdA==,i=0",
        ] {
            let mut s = Scram::with_nonce(&l, "abc");
            assert!(
                matches!(s.client_final(bad), Err(SaslError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut s = Scram::with_nonce(&l, "abc");
        assert_eq!(
            s.client_final(b"e=unknown-user"),
            Err(SaslError::Failed("unknown-user".into()))
        );
    }

    #[test]
    fn plain_message() {
        assert_eq!(plain(&login(Mechanism::Plain, "u", "p")), b"\0u\0p");
    }
}
