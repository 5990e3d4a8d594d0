#!/usr/bin/env bash
# Demo: brings the local stack up (installing what is missing), shows that
# each server is healthy, and keeps it running until Ctrl-C, which stops
# everything this script started.
#
# Usage: deploy/demo.sh [STATE_DIR]            (default: <repo>/.state/demo)
set -euo pipefail
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$DEPLOY")"
STATE="${1:-$REPO/.state/demo}"
TANSU="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"

"$DEPLOY/start-stack.sh" "$STATE"
STATE="$(cd "$STATE" && pwd)"

stopped=0
stop() {
    ((stopped)) && return
    stopped=1
    # finish even when a second Ctrl-C comes or our output pipe is gone
    set +e
    trap '' INT TERM PIPE
    echo
    "$DEPLOY/stop-stack.sh" "$STATE"
}
trap stop EXIT
trap 'exit 130' INT TERM

set -a
# shellcheck disable=SC1091
source "$STATE/stack.env"
set +a
MYSQL_PORT="${REPLICATOR_TEST_MYSQL##*:}"

echo
echo "== ZooKeeper $REPLICATOR_TEST_ZK"
echo srvr | socat -t2 - "TCP:$REPLICATOR_TEST_ZK" | grep -E '^(Zookeeper version|Mode|Node count)'

echo
echo "== MariaDB 127.0.0.1:$MYSQL_PORT (user repl, password repl)"
mariadb --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -urepl -prepl --table -e "
    SELECT VERSION() AS version, @@log_bin AS log_bin, @@binlog_format AS binlog_format,
           @@binlog_row_image AS row_image, @@binlog_row_metadata AS row_metadata;
    SHOW MASTER STATUS;"

echo
echo "== Tansu (Kafka protocol) $REPLICATOR_TEST_KAFKA"
"$TANSU" topic create replicator_demo --broker "tcp://$REPLICATOR_TEST_KAFKA" --partitions 1 >/dev/null
echo "topics: $("$TANSU" topic list --broker "tcp://$REPLICATOR_TEST_KAFKA" \
    | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')"

echo
echo "all three servers are healthy. For the processes and tests in another shell:"
echo "    set -a; source $STATE/stack.env; set +a"
echo "Ctrl-C stops the stack."
while true; do
    for pid in "$REPLICATOR_STACK_ZK_PID" "$REPLICATOR_STACK_MYSQL_PID" "$REPLICATOR_STACK_KAFKA_PID"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo.sh: server pid $pid exited; logs are in $STATE" >&2
            exit 1
        fi
    done
    sleep 2
done
