#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run):
#   1. deploy/install.sh: Debian packages and Tansu, only what is missing;
#   2. build every target of the workspace;
#   3. cargo fmt --check, clippy with warnings as errors, and no import
#      circle between the modules of a crate (.ci/import_circles.py);
#   4. cargo test --workspace --no-fail-fast (every test binary runs, so one
#      report shows every failure): the end-to-end tests start their own
#      ZooKeeper, MariaDB and Tansu through the harness (tests/src), or reuse
#      a running stack when REPLICATOR_TEST_ZK/_MYSQL/_KAFKA are set.
#
# Usage: deploy/test.sh [extra arguments for cargo test]
set -euo pipefail
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() {
    echo
    echo "=== test.sh: $* ($(date -u +%H:%M:%S))"
}

T0=$SECONDS
step "install what is missing"
deploy/install.sh

step "build"
cargo build --workspace --all-targets

step "format check"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "import circles"
python3 .ci/import_circles.py

step "tests"
cargo test --workspace --no-fail-fast "$@"

step "all passed in $((SECONDS - T0)) s"
