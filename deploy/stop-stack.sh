#!/usr/bin/env bash
# Stops a stack started by deploy/start-stack.sh: SIGTERM to each server, then
# SIGKILL to any still alive after 5 seconds. Data files stay in STATE_DIR.
#
# Usage: deploy/stop-stack.sh [STATE_DIR]      (default: <repo>/.state/stack)
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$DEPLOY")"
STATE="${1:-$REPO/.state/stack}"
ENV_FILE="$STATE/stack.env"

if [[ ! -f "$ENV_FILE" ]]; then
    echo "stop-stack.sh: no stack.env in $STATE: nothing to stop" >&2
    exit 0
fi
# shellcheck disable=SC1090
source "$ENV_FILE"

pids=()
# shellcheck disable=SC2086
for pid in "${REPLICATOR_STACK_ZK_PID:-}" ${REPLICATOR_STACK_ZK_PIDS:-} "${REPLICATOR_STACK_MYSQL_PID:-}" \
    "${REPLICATOR_STACK_MYSQL_REPLICA_PID:-}" "${REPLICATOR_STACK_KAFKA_PID:-}"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    fi
done

deadline=$((SECONDS + 5))
for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop-stack.sh: pid $pid still alive after SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
done

rm -f "$ENV_FILE"
echo "stack in $STATE stopped (${#pids[@]} server(s) were running)"
