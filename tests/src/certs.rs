//! Test certificates, made with `openssl` in a directory of the test's own:
//! two CAs (`ca.pem`, and `other-ca.pem` that signed nothing here) and a
//! server key and certificate (`server.key`, `server.pem`) signed by the
//! first, for one name or address.

use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with its error output.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl {args:?}: {e} (is the openssl package installed?)"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `ca.pem` + `ca.key`, `other-ca.pem` + `other-ca.key`, and
/// `server.pem` + `server.key` for `san` (`DNS:localhost`, `IP:127.0.0.1`),
/// with common name `cn`, signed by `ca.pem`.
pub fn make_certificates(dir: &Path, cn: &str, san: &str) {
    for (name, ca_cn) in [("ca", "replicator test CA"), ("other-ca", "some other CA")] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                &format!("/CN={ca_cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}
