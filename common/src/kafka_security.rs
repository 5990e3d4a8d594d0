//! How a Kafka client reaches a secured cluster: TLS and SASL settings under
//! Kafka's standard property names, parsed and checked (pure).
//!
//! The same settings serve every Kafka client of a process: the Core's own
//! producer (which speaks TLS through rustls and SASL itself) and the
//! librdkafka clients (topic creation, tail reads, `replicatorctl tail`, the
//! Monitor's alert topic), which take them as [`KafkaSecurity::client_properties`].
//!
//! Keys: `security.protocol` (`plaintext`, `ssl`, `sasl_plaintext`,
//! `sasl_ssl`), `ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`, `ssl.endpoint.identification.algorithm` (`https`,
//! the default, verifies the broker's host name; `none` verifies only the
//! chain), `sasl.mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`),
//! `sasl.username`, and one of `sasl.password`, `sasl.password_env`,
//! `sasl.password_file`. A key that would have no effect under the chosen
//! protocol is an error, so a setting never silently does nothing.

use crate::secret::Secret;
use std::collections::BTreeMap;

/// Every key this module owns.
pub const KEYS: &[&str] = &[
    "sasl.mechanism",
    "sasl.password",
    "sasl.password_env",
    "sasl.password_file",
    "sasl.username",
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.location",
];

/// The stored keys whose values are secrets (redacted in API answers).
pub const SECRET_KEYS: &[&str] = &["sasl.password"];

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    const ALL: [Protocol; 4] = [
        Protocol::Plaintext,
        Protocol::Ssl,
        Protocol::SaslPlaintext,
        Protocol::SaslSsl,
    ];

    /// The protocol called `name` in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// TLS settings (used when the protocol is `ssl` or `sasl_ssl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM file of the CA certificates to trust; the system's when `None`.
    pub ca_file: Option<String>,
    /// PEM client certificate chain and its private key, for mutual TLS.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Check that the broker's certificate names the host connected to.
    pub verify_hostname: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            ca_file: None,
            cert_file: None,
            key_file: None,
            verify_hostname: true,
        }
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The mechanism called `name` in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The name Kafka uses in SaslHandshake and librdkafka in `sasl.mechanisms`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Where the SASL password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Stored(Secret),
    Env(String),
    File(String),
}

/// SASL settings (used when the protocol is `sasl_plaintext` or `sasl_ssl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: PasswordSource,
}

/// The SASL password could not be read on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslPasswordError {
    #[error("environment variable `{0}` named by sink.properties.sasl.password_env is not set on this host")]
    MissingEnv(String),
    #[error("cannot read sink.properties.sasl.password_file `{0}`: {1}")]
    File(String, String),
}

impl Sasl {
    /// The password, read from wherever the settings say it is.
    pub fn password(&self) -> Result<Secret, SaslPasswordError> {
        match &self.password {
            PasswordSource::Stored(s) => Ok(s.clone()),
            PasswordSource::Env(var) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| SaslPasswordError::MissingEnv(var.clone())),
            PasswordSource::File(file) => std::fs::read_to_string(file)
                .map(|v| Secret::new(v.trim_end_matches(['\n', '\r'])))
                .map_err(|e| SaslPasswordError::File(file.clone(), e.kind().to_string())),
        }
    }
}

/// TLS and SASL settings of one Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaSecurity {
    pub protocol: Protocol,
    pub tls: Tls,
    pub sasl: Option<Sasl>,
}

/// Every bad Kafka client property, as (key, problem), in key order where
/// the parser sorts them.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{}", .0.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct PropertyErrors(pub Vec<(String, String)>);

impl std::ops::Deref for PropertyErrors {
    type Target = [(String, String)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl IntoIterator for PropertyErrors {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl KafkaSecurity {
    /// True for the keys [`KafkaSecurity::parse`] reads.
    pub fn owns(key: &str) -> bool {
        KEYS.contains(&key)
    }

    /// Reads the security keys of `props` (other keys are ignored); on
    /// failure every problem as (key, message).
    pub fn parse(props: &BTreeMap<String, String>) -> Result<Self, PropertyErrors> {
        let mut problems = Vec::new();
        let protocol = parse_protocol(props, &mut problems);
        let tls = parse_tls(props, &mut problems);
        if !protocol.tls() {
            refuse_unused(
                props,
                TLS_KEYS.iter().copied(),
                protocol,
                "ssl or sasl_ssl",
                &mut problems,
            );
        }
        let sasl = if protocol.sasl() {
            parse_sasl(props, protocol, &mut problems)
        } else {
            let sasl_keys = KEYS.iter().copied().filter(|k| k.starts_with("sasl."));
            refuse_unused(
                props,
                sasl_keys,
                protocol,
                "sasl_plaintext or sasl_ssl",
                &mut problems,
            );
            None
        };
        if problems.is_empty() {
            Ok(Self {
                protocol,
                tls,
                sasl,
            })
        } else {
            Err(PropertyErrors(problems))
        }
    }

    /// Like [`KafkaSecurity::parse`] for a client that has no other
    /// settings (the Monitor's alert topic, `replicatorctl tail`): any other
    /// key is a problem too.
    pub fn parse_only(props: &BTreeMap<String, String>) -> Result<Self, PropertyErrors> {
        let unknown: Vec<(String, String)> = props
            .keys()
            .filter(|k| !Self::owns(k))
            .map(|k| {
                (
                    k.clone(),
                    format!("unknown Kafka client property; known: {}", KEYS.join(", ")),
                )
            })
            .collect();
        match (Self::parse(props), unknown.is_empty()) {
            (Ok(s), true) => Ok(s),
            (Ok(_), false) => Err(PropertyErrors(unknown)),
            (Err(mut e), _) => {
                e.0.extend(unknown);
                Err(e)
            }
        }
    }

    /// Reads `KEY=VALUE` command-line flags into properties.
    pub fn flags(flags: &[String]) -> Result<BTreeMap<String, String>, NotKeyValue> {
        flags
            .iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
                _ => Err(NotKeyValue(f.clone())),
            })
            .collect()
    }

    /// The settings as librdkafka properties (the SASL password read now).
    pub fn client_properties(&self) -> Result<Vec<(&'static str, String)>, SaslPasswordError> {
        let mut out = vec![("security.protocol", self.protocol.name().to_string())];
        if self.protocol.tls() {
            if let Some(f) = &self.tls.ca_file {
                out.push(("ssl.ca.location", f.clone()));
            }
            if let Some(f) = &self.tls.cert_file {
                out.push(("ssl.certificate.location", f.clone()));
            }
            if let Some(f) = &self.tls.key_file {
                out.push(("ssl.key.location", f.clone()));
            }
            out.push((
                "ssl.endpoint.identification.algorithm",
                if self.tls.verify_hostname {
                    "https"
                } else {
                    "none"
                }
                .to_string(),
            ));
        }
        if let Some(s) = &self.sasl {
            out.push(("sasl.mechanisms", s.mechanism.name().to_string()));
            out.push(("sasl.username", s.username.clone()));
            out.push(("sasl.password", s.password()?.expose().to_string()));
        }
        Ok(out)
    }
}

/// A property flag that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not KEY=VALUE")]
pub struct NotKeyValue(pub String);

// The steps of [`KafkaSecurity::parse`], one per family of settings; each
// appends its problems, as (key, message), to `problems`.

/// The keys that only a TLS protocol (`ssl`, `sasl_ssl`) uses.
const TLS_KEYS: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
];

type Problems = Vec<(String, String)>;

fn bad(problems: &mut Problems, key: &str, message: String) {
    problems.push((key.to_string(), message));
}

/// The value of `key` without surrounding white space.
fn trimmed(props: &BTreeMap<String, String>, key: &str) -> Option<String> {
    props.get(key).map(|v| v.trim().to_string())
}

/// `security.protocol`: plaintext when absent (or unknown, a problem).
fn parse_protocol(props: &BTreeMap<String, String>, problems: &mut Problems) -> Protocol {
    let Some(v) = trimmed(props, "security.protocol") else {
        return Protocol::Plaintext;
    };
    Protocol::from_name(&v).unwrap_or_else(|| {
        bad(
            problems,
            "security.protocol",
            format!("`{v}` is not one of plaintext, ssl, sasl_plaintext, sasl_ssl"),
        );
        Protocol::Plaintext
    })
}

/// The `ssl.*` settings: the host-name check, PEM files that are named
/// when given, and a client certificate only with its key.
fn parse_tls(props: &BTreeMap<String, String>, problems: &mut Problems) -> Tls {
    let verify_hostname = parse_verify_hostname(props, problems);
    let tls = Tls {
        ca_file: trimmed(props, "ssl.ca.location"),
        cert_file: trimmed(props, "ssl.certificate.location"),
        key_file: trimmed(props, "ssl.key.location"),
        verify_hostname,
    };
    for (k, v) in [
        ("ssl.ca.location", &tls.ca_file),
        ("ssl.certificate.location", &tls.cert_file),
        ("ssl.key.location", &tls.key_file),
    ] {
        if v.as_deref() == Some("") {
            bad(problems, k, "must name a PEM file".into());
        }
    }
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        bad(
            problems,
            "ssl.certificate.location",
            "a client certificate needs ssl.key.location too (and the other way round)".into(),
        );
    }
    tls
}

/// `ssl.endpoint.identification.algorithm`: `https` (the default) checks
/// the broker's host name, `none` does not.
fn parse_verify_hostname(props: &BTreeMap<String, String>, problems: &mut Problems) -> bool {
    let key = "ssl.endpoint.identification.algorithm";
    let Some(v) = trimmed(props, key) else {
        return true;
    };
    match v.to_ascii_lowercase().as_str() {
        "https" => true,
        "none" => false,
        _ => {
            bad(
                problems,
                key,
                format!("`{v}` is not `https` (check the host name) or `none`"),
            );
            true
        }
    }
}

/// The `sasl.*` settings under a SASL protocol: a user name, exactly one
/// password source and a mechanism; `None` when one is missing or bad.
fn parse_sasl(
    props: &BTreeMap<String, String>,
    protocol: Protocol,
    problems: &mut Problems,
) -> Option<Sasl> {
    let username = trimmed(props, "sasl.username").unwrap_or_default();
    if username.is_empty() {
        let required = format!("is required with security.protocol {}", protocol.name());
        bad(problems, "sasl.username", required);
    }
    let passwords = password_sources(props);
    if passwords.len() != 1 {
        bad(
            problems,
            "sasl.password",
            "give exactly one of sasl.password, sasl.password_env and sasl.password_file".into(),
        );
    }
    let mechanism = parse_mechanism(props, protocol, problems);
    match (mechanism, passwords.into_iter().next()) {
        (Some(mechanism), Some(password)) if !username.is_empty() => Some(Sasl {
            mechanism,
            username,
            password,
        }),
        _ => None,
    }
}

/// Every password source given, in the order of `sasl.password`,
/// `sasl.password_env`, `sasl.password_file` (the stored one untrimmed).
fn password_sources(props: &BTreeMap<String, String>) -> Vec<PasswordSource> {
    [
        props
            .get("sasl.password")
            .map(|v| PasswordSource::Stored(Secret::new(v.clone()))),
        trimmed(props, "sasl.password_env").map(PasswordSource::Env),
        trimmed(props, "sasl.password_file").map(PasswordSource::File),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `sasl.mechanism`, required under a SASL protocol.
fn parse_mechanism(
    props: &BTreeMap<String, String>,
    protocol: Protocol,
    problems: &mut Problems,
) -> Option<Mechanism> {
    let Some(v) = trimmed(props, "sasl.mechanism") else {
        let required = format!("is required with security.protocol {}", protocol.name());
        bad(problems, "sasl.mechanism", required);
        return None;
    };
    let mechanism = Mechanism::from_name(&v);
    if mechanism.is_none() {
        bad(
            problems,
            "sasl.mechanism",
            format!("`{v}` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        );
    }
    mechanism
}

/// Reports each of `keys` that `props` sets as having no effect under
/// `protocol`; `instead` names the protocols that use it.
fn refuse_unused<'a>(
    props: &BTreeMap<String, String>,
    keys: impl Iterator<Item = &'a str>,
    protocol: Protocol,
    instead: &str,
    problems: &mut Problems,
) {
    for k in keys.filter(|k| props.contains_key(*k)) {
        let message = format!(
            "has no effect with security.protocol {}: use {instead}",
            protocol.name()
        );
        bad(problems, k, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keys(err: &[(String, String)]) -> Vec<&str> {
        err.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn plaintext_by_default() {
        let s = KafkaSecurity::parse(&props(&[("linger.ms", "5")])).unwrap();
        assert_eq!(s, KafkaSecurity::default());
        assert_eq!(
            s.client_properties().unwrap(),
            [("security.protocol", "plaintext".to_string())]
        );
    }

    #[test]
    fn sasl_ssl_with_scram() {
        let s = KafkaSecurity::parse(&props(&[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("sasl.mechanism", "scram-sha-512"),
            ("sasl.username", "repl"),
            ("sasl.password", "pw"),
        ]))
        .unwrap();
        assert_eq!(s.protocol, Protocol::SaslSsl);
        assert!(s.tls.verify_hostname);
        let sasl = s.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, Mechanism::ScramSha512);
        assert_eq!(sasl.password().unwrap().expose(), "pw");
        assert!(!format!("{s:?}").contains("pw\""), "{s:?}");
        let p = s.client_properties().unwrap();
        assert!(p.contains(&("sasl.mechanisms", "SCRAM-SHA-512".into())));
        assert!(p.contains(&("ssl.endpoint.identification.algorithm", "https".into())));
    }

    #[test]
    fn every_problem_is_reported() {
        let err = KafkaSecurity::parse(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "GSSAPI"),
            ("ssl.ca.location", "/ca.pem"),
        ]))
        .unwrap_err();
        assert_eq!(
            keys(&err),
            [
                "ssl.ca.location",
                "sasl.username",
                "sasl.password",
                "sasl.mechanism"
            ],
            "{err:?}"
        );
        let err = KafkaSecurity::parse(&props(&[
            ("security.protocol", "tls"),
            ("sasl.username", "u"),
        ]))
        .unwrap_err();
        assert_eq!(
            keys(&err),
            ["security.protocol", "sasl.username"],
            "{err:?}"
        );
        let err = KafkaSecurity::parse(&props(&[
            ("security.protocol", "ssl"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.endpoint.identification.algorithm", "dns"),
        ]))
        .unwrap_err();
        assert_eq!(
            keys(&err),
            [
                "ssl.endpoint.identification.algorithm",
                "ssl.certificate.location"
            ],
            "{err:?}"
        );
    }

    #[test]
    fn clients_without_other_settings_refuse_other_keys() {
        let p =
            KafkaSecurity::flags(&["security.protocol=ssl".into(), "linger.ms=5".into()]).unwrap();
        let err = KafkaSecurity::parse_only(&p).unwrap_err();
        assert_eq!(keys(&err), ["linger.ms"]);
        assert!(KafkaSecurity::flags(&["nokey".into()]).is_err());
        let p = KafkaSecurity::flags(&["sasl.password=a=b".into()]).unwrap();
        assert_eq!(p["sasl.password"], "a=b");
    }

    #[test]
    fn names_read_in_any_case() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_name(p.name()), Some(p));
            assert_eq!(Protocol::from_name(&p.name().to_ascii_uppercase()), Some(p));
        }
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(
                Mechanism::from_name(&m.name().to_ascii_lowercase()),
                Some(m)
            );
        }
        assert_eq!(Protocol::from_name(""), None);
        assert_eq!(Protocol::from_name("tls"), None);
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
    }

    #[test]
    fn password_sources_none_one_or_many() {
        assert_eq!(password_sources(&props(&[("sasl.username", "u")])), []);
        assert_eq!(
            password_sources(&props(&[("sasl.password", " pw ")])),
            [PasswordSource::Stored(Secret::new(" pw "))]
        );
        assert_eq!(
            password_sources(&props(&[
                ("sasl.password_file", " /pw "),
                ("sasl.password_env", "PW"),
                ("sasl.password", "a"),
            ])),
            [
                PasswordSource::Stored(Secret::new("a")),
                PasswordSource::Env("PW".into()),
                PasswordSource::File("/pw".into()),
            ]
        );
    }

    #[test]
    fn host_name_check_is_on_unless_none() {
        let mut problems = Vec::new();
        assert!(parse_verify_hostname(&props(&[]), &mut problems));
        let none = props(&[("ssl.endpoint.identification.algorithm", " NONE ")]);
        assert!(!parse_verify_hostname(&none, &mut problems));
        assert!(problems.is_empty(), "{problems:?}");
        let dns = props(&[("ssl.endpoint.identification.algorithm", "dns")]);
        assert!(parse_verify_hostname(&dns, &mut problems));
        assert_eq!(keys(&problems), ["ssl.endpoint.identification.algorithm"]);
    }

    #[test]
    fn password_from_env_or_file() {
        let s = KafkaSecurity::parse(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password_env", "REPLICATOR_TEST_KAFKA_PW_UNSET"),
        ]))
        .unwrap();
        let e = s.sasl.as_ref().unwrap().password().unwrap_err();
        assert!(
            e.to_string().contains("REPLICATOR_TEST_KAFKA_PW_UNSET"),
            "{e}"
        );
        let err = KafkaSecurity::parse(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "a"),
            ("sasl.password_file", "/pw"),
        ]))
        .unwrap_err();
        assert_eq!(keys(&err), ["sasl.password"]);
    }
}
