//! Preflight checks of a source server, pure: given what the server reports,
//! decide whether row replication can work and say precisely why not.

use crate::decode::Flavor;

/// What the source server reported about itself.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub version: String,
    pub log_bin: Option<String>,
    pub binlog_format: Option<String>,
    pub binlog_row_image: Option<String>,
    /// `None` when the server has no such variable (MySQL < 8.0.1, MariaDB < 10.5).
    pub binlog_row_metadata: Option<String>,
    pub server_id: u32,
    /// Lines of `SHOW GRANTS`.
    pub grants: Vec<String>,
}

/// One reason the source cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightProblem {
    #[error("binary logging is off (set log_bin)")]
    BinlogOff,
    #[error("binlog_format is {0}, it must be ROW")]
    FormatNotRow(String),
    #[error("binlog_row_image is {0}, it must be FULL")]
    RowImageNotFull(String),
    #[error("binlog_row_metadata is {0}, it must be FULL (column names, signedness, enum labels)")]
    RowMetadataNotFull(String),
    #[error("user lacks REPLICATION SLAVE (grants: {0})")]
    NoReplicationGrant(String),
    #[error("source.server_id {0} is the source's own server_id; pick another")]
    ServerIdClash(u32),
}

/// What the checks concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub flavor: Flavor,
    /// Column names must come from information_schema (no row metadata in the binlog).
    pub names_from_schema: bool,
}

fn is_on(v: &Option<String>) -> bool {
    matches!(
        v.as_deref().map(str::to_ascii_uppercase).as_deref(),
        Some("ON" | "1")
    )
}

fn upper(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("unset").to_ascii_uppercase()
}

/// A grant line without its `IDENTIFIED BY ...` part (password hashes stay
/// out of errors, instance nodes and alerts).
fn without_secret(grant: &str) -> String {
    match grant.to_ascii_uppercase().find(" IDENTIFIED ") {
        Some(i) => grant[..i].to_string(),
        None => grant.to_string(),
    }
}

/// Checks everything at once.
pub fn check(facts: &ServerFacts, our_server_id: u32) -> Result<Checked, Vec<PreflightProblem>> {
    let mut problems = Vec::new();
    if !is_on(&facts.log_bin) {
        problems.push(PreflightProblem::BinlogOff);
    }
    if upper(&facts.binlog_format) != "ROW" {
        problems.push(PreflightProblem::FormatNotRow(upper(&facts.binlog_format)));
    }
    if upper(&facts.binlog_row_image) != "FULL" {
        problems.push(PreflightProblem::RowImageNotFull(upper(
            &facts.binlog_row_image,
        )));
    }
    let names_from_schema = facts.binlog_row_metadata.is_none();
    if let Some(m) = &facts.binlog_row_metadata {
        if !m.eq_ignore_ascii_case("FULL") {
            problems.push(PreflightProblem::RowMetadataNotFull(m.to_ascii_uppercase()));
        }
    }
    let grants = facts.grants.join(" | ").to_ascii_uppercase();
    if !(grants.contains("ALL PRIVILEGES ON *.*") || grants.contains("REPLICATION SLAVE")) {
        let shown: Vec<String> = facts.grants.iter().map(|g| without_secret(g)).collect();
        problems.push(PreflightProblem::NoReplicationGrant(shown.join(" | ")));
    }
    if facts.server_id == our_server_id {
        problems.push(PreflightProblem::ServerIdClash(our_server_id));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let flavor = if facts.version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Ok(Checked {
        flavor,
        names_from_schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ServerFacts {
        ServerFacts {
            version: "10.11.6-MariaDB-0+deb12u1-log".into(),
            log_bin: Some("ON".into()),
            binlog_format: Some("ROW".into()),
            binlog_row_image: Some("FULL".into()),
            binlog_row_metadata: Some("FULL".into()),
            server_id: 1,
            grants: vec!["GRANT REPLICATION SLAVE, SELECT ON *.* TO `repl`@`%`".into()],
        }
    }

    #[test]
    fn accepts_a_well_configured_mariadb() {
        assert_eq!(
            check(&good(), 4242),
            Ok(Checked {
                flavor: Flavor::MariaDb,
                names_from_schema: false
            })
        );
        let mut mysql = good();
        mysql.version = "8.0.36".into();
        mysql.binlog_row_metadata = None;
        assert_eq!(
            check(&mysql, 4242),
            Ok(Checked {
                flavor: Flavor::MySql,
                names_from_schema: true
            })
        );
    }

    #[test]
    fn reports_every_problem() {
        let f = ServerFacts {
            version: "10.11".into(),
            log_bin: Some("OFF".into()),
            binlog_format: Some("MIXED".into()),
            binlog_row_image: Some("MINIMAL".into()),
            binlog_row_metadata: Some("MINIMAL".into()),
            server_id: 7,
            grants: vec!["GRANT USAGE ON *.* TO `x`@`%`".into()],
        };
        let p = check(&f, 7).unwrap_err();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p.contains(&PreflightProblem::FormatNotRow("MIXED".into())));
        assert!(p.contains(&PreflightProblem::ServerIdClash(7)));
        assert!(p[0].to_string().contains("log_bin"));
        let mut f2 = good();
        f2.grants = vec!["GRANT USAGE ON *.* TO `x`@`%` IDENTIFIED BY PASSWORD '*ABC123'".into()];
        let p = check(&f2, 4242).unwrap_err();
        assert!(!p[0].to_string().contains("ABC123"), "{}", p[0]);
    }
}
