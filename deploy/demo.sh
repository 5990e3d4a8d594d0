#!/usr/bin/env bash
# The whole demo in one command, on a fresh Debian machine with a Rust
# toolchain:
#   1. installs what is missing and starts ZooKeeper, MariaDB and Tansu
#      (deploy/start-stack.sh, which calls deploy/install.sh);
#   2. builds replicator-core, replicator-server (with replicatorctl) and
#      replicator-monitor (debug profile: quicker to build than release, and
#      a machine that ran deploy/test.sh has it already; 4.5 min from a clean
#      target directory on 2 cores);
#   3. starts a Server (web console on http://127.0.0.1:8080/, or a free port
#      when 8080 is taken) and a Monitor;
#   4. creates the database `demo` and, through `replicatorctl task create`,
#      a hot task `orders` and a group `batch` of three cold tasks
#      (`customers`, `payments`, `shipments`), each into topics
#      `demo.<table>`;
#   5. starts two Cores on the hot task and two Cores on the group;
#   6. writes rows continuously (inserts, updates, deletes), waits until they
#      arrive in Kafka and in the console, and prints where to look.
# Ctrl-C stops everything it started, in order (writer, Monitor, Cores,
# Server, stack). A second run reuses the installed packages and the build;
# ZooKeeper starts empty each run, MariaDB keeps the `demo` database.
#
# Usage: deploy/demo.sh [STATE_DIR]                 (default: <repo>/.state/demo)
# Environment:
#   REPLICATOR_DEMO_PROFILE=debug|release   build profile (default debug)
#   REPLICATOR_DEMO_PORT=N                  console port (default 8080)
#   REPLICATOR_DEMO_EXIT_AFTER=S            stop by itself S seconds after rows
#                                           flow (for scripts; default: run until Ctrl-C)
set -euo pipefail
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$DEPLOY")"
STATE="${1:-$REPO/.state/demo}"
PROFILE="${REPLICATOR_DEMO_PROFILE:-debug}"
PORT="${REPLICATOR_DEMO_PORT:-8080}"
EXIT_AFTER="${REPLICATOR_DEMO_EXIT_AFTER:-}"
SESSION_MS=4000 # ZooKeeper sessions of the demo's processes: a killed Core is replaced in about 4 s

T0=$SECONDS
elapsed() { printf '%d:%02d' $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)); }
step() { printf '\n=== demo.sh [%s] %s\n' "$(elapsed)" "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
    echo "demo.sh: $*" >&2
    exit 1
}

case "$PROFILE" in
    debug) CARGO_PROFILE=() ;;
    release) CARGO_PROFILE=(--release) ;;
    *) die "REPLICATOR_DEMO_PROFILE must be debug or release, not $PROFILE" ;;
esac

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
STACK="$STATE/stack"
LOGS="$STATE/logs"
TASKS="$STATE/tasks"

# --- stopping everything we started, once -------------------------------------
PIDS=() # "name pid", in start order
stack_started=0
stopped=0

stop_pids() { # SIGTERM to every pid given, SIGKILL to those alive after 10 s
    local pid deadline=$((SECONDS + 10))
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "demo.sh: pid $pid did not stop in 10 s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

pids_of() { # pids of the started processes whose name matches the pattern
    local entry
    for entry in "${PIDS[@]}"; do
        # shellcheck disable=SC2053
        [[ "${entry%% *}" == $1 ]] && echo "${entry##* }"
    done
    return 0
}

stop() {
    ((stopped)) && return
    stopped=1
    # finish even when a second Ctrl-C comes or our output pipe is gone
    set +e
    trap '' INT TERM PIPE
    echo
    step "stopping what demo.sh started"
    # shellcheck disable=SC2046
    stop_pids $(pids_of 'writer*')
    # shellcheck disable=SC2046
    stop_pids $(pids_of monitor)
    # shellcheck disable=SC2046
    stop_pids $(pids_of 'core-*')
    # shellcheck disable=SC2046
    stop_pids $(pids_of server)
    if ((stack_started)); then "$DEPLOY/stop-stack.sh" "$STACK"; fi
    note "logs stay in $LOGS"
}
trap stop EXIT
trap 'exit 130' INT TERM

started() { # name pid
    PIDS+=("$1 $2")
}

wait_log() { # file pattern seconds pid: waits for a line, prints it
    local file=$1 pattern=$2 deadline=$((SECONDS + $3)) pid=$4 line
    while ((SECONDS < deadline)); do
        if line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null); then
            echo "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "demo.sh: no /$pattern/ in $file; its last lines:" >&2
    tail -n 20 "$file" >&2
    return 1
}

# --- 1. the stack -------------------------------------------------------------
step "1/6 install what is missing, start ZooKeeper, MariaDB and Tansu"
note "first time on a fresh machine: Debian packages, then Tansu built with cargo install (7-12 min)"
if [[ -f "$STACK/stack.env" ]]; then
    "$DEPLOY/stop-stack.sh" "$STACK" >/dev/null 2>&1 || true # left over by a killed run
fi
rm -rf "$STACK/zookeeper" "$LOGS" "$TASKS" # coordination state starts empty each run
mkdir -p "$LOGS" "$TASKS"
stack_started=1
"$DEPLOY/start-stack.sh" "$STACK"
set -a
# shellcheck disable=SC1091
source "$STACK/stack.env"
set +a
ZK="$REPLICATOR_TEST_ZK"
KAFKA="$REPLICATOR_TEST_KAFKA"
MYSQL_PORT="${REPLICATOR_TEST_MYSQL##*:}"
mysql_root() { mariadb --defaults-file="$STACK/mariadb/my.cnf" "$@"; }

# --- 2. the build -------------------------------------------------------------
step "2/6 build replicator-core, replicator-server, replicatorctl, replicator-monitor ($PROFILE)"
note "first build from a clean target directory: about 4.5 min on 2 cores (debug), seconds afterwards; cargo prints each crate"
build_started=$SECONDS
cargo build "${CARGO_PROFILE[@]}" --manifest-path "$REPO/Cargo.toml" \
    -p replicator-core -p replicator-server -p replicator-monitor --bins
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps --manifest-path "$REPO/Cargo.toml" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$TARGET_DIR/$PROFILE"
note "built in $((SECONDS - build_started)) s: binaries in $BIN"
CTL="$BIN/replicatorctl"

# --- 3. Server and Monitor ----------------------------------------------------
step "3/6 start replicator-server and replicator-monitor"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    note "port $PORT is taken: the server takes a free one"
    PORT=0
fi
setsid "$BIN/replicator-server" --zk "$ZK" --listen "127.0.0.1:$PORT" \
    --zk-session-timeout-ms "$SESSION_MS" </dev/null >"$LOGS/server.log" 2>&1 &
started server $!
line=$(wait_log "$LOGS/server.log" 'listening' 60 $!) || die "the server did not start"
SERVER="http://$(sed -E 's/.*addr=([^ ]+).*/\1/' <<<"$line")"
export REPLICATOR_SERVER="$SERVER"
note "server $SERVER (log $LOGS/server.log)"

setsid "$BIN/replicator-monitor" --zk "$ZK" --listen 127.0.0.1:0 --host-id demo-monitor \
    --zk-session-timeout-ms "$SESSION_MS" --alert-topic replicator.alerts --brokers "$KAFKA" \
    --core-lost-grace-ms 2000 --not-running-grace-ms 5000 --no-standby-grace-ms 5000 \
    --failover-hold-ms 30000 --resolved-linger-ms 30000 \
    </dev/null >"$LOGS/monitor.log" 2>&1 &
started monitor $!
line=$(wait_log "$LOGS/monitor.log" 'monitor listening' 60 $!) || die "the monitor did not start"
note "monitor http://$(sed -E 's/.*addr=([^ ]+).*/\1/' <<<"$line")/alerts (log $LOGS/monitor.log)"

# --- 4. database and tasks ----------------------------------------------------
step "4/6 create the demo database and the tasks through replicatorctl"
mysql_root <<'SQL'
CREATE DATABASE IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,
    amount DECIMAL(10,2) NOT NULL, status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE IF NOT EXISTS demo.customers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL);
CREATE TABLE IF NOT EXISTS demo.payments (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL, amount DECIMAL(10,2) NOT NULL,
    paid_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE IF NOT EXISTS demo.shipments (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL, carrier VARCHAR(20) NOT NULL,
    info JSON);
SQL
task_json() { # name table server_id group
    local group=null
    [[ -n "${4:-}" ]] && group="\"$4\""
    cat <<EOF
{"name": "$1", "group": $group,
 "source": {"host": "127.0.0.1", "port": $MYSQL_PORT, "user": "repl", "password": "repl",
            "server_id": $3, "include": ["demo\\\\.$2"], "start": "current"},
 "sink": {"brokers": "$KAFKA", "topic": "{database}.{table}", "format": "json", "partitions": 2}}
EOF
}
task_json orders orders 5001 >"$TASKS/orders.json"
task_json customers customers 5002 batch >"$TASKS/customers.json"
task_json payments payments 5003 batch >"$TASKS/payments.json"
task_json shipments shipments 5004 batch >"$TASKS/shipments.json"
for t in orders customers payments shipments; do
    printf '    $ replicatorctl task create %s\n    ' "$TASKS/$t.json"
    "$CTL" task create "$TASKS/$t.json"
done

# --- 5. Cores -----------------------------------------------------------------
step "5/6 start 4 Cores: demo-hot-1, demo-hot-2 on task orders; demo-cold-1, demo-cold-2 on group batch"
start_core() { # host-id args...
    local host=$1
    shift
    setsid "$BIN/replicator-core" --zk "$ZK" --host-id "$host" --zk-session-timeout-ms "$SESSION_MS" "$@" \
        </dev/null >"$LOGS/$host.log" 2>&1 &
    started "core-$host" $!
    note "$host pid $! (log $LOGS/$host.log)"
}
start_core demo-hot-1 --task orders
sleep 0.5 # so that demo-hot-1 is the first instance, RUNNING
start_core demo-hot-2 --task orders
start_core demo-cold-1 --group batch --scan-interval-ms 1000
start_core demo-cold-2 --group batch --scan-interval-ms 1000

# --- 6. rows ------------------------------------------------------------------
step "6/6 write rows continuously into demo.orders, demo.customers, demo.payments, demo.shipments"
generate_sql() { # about 10 row changes a second
    local i=0
    echo "USE demo;"
    while true; do
        i=$((i + 1))
        echo "INSERT INTO orders (customer_id, amount) VALUES ($((RANDOM % 50 + 1)), $((RANDOM % 20000)) / 100);"
        ((i % 3 == 0)) && echo "UPDATE orders SET status = 'paid' WHERE status = 'new' ORDER BY id LIMIT 1;"
        ((i % 5 == 0)) && echo "UPDATE orders SET status = 'shipped' WHERE status = 'paid' ORDER BY id LIMIT 1;"
        ((i % 20 == 0)) && echo "DELETE FROM orders WHERE status = 'shipped' ORDER BY id LIMIT 1;"
        ((i % 2 == 0)) && echo "INSERT INTO customers (name, email) VALUES ('customer $i', 'c$i@example.com');"
        ((i % 3 == 1)) && echo "INSERT INTO payments (order_id, amount) VALUES ($i, $((RANDOM % 20000)) / 100);"
        ((i % 4 == 3)) && echo "INSERT INTO shipments (order_id, carrier, info) VALUES ($i, 'dhl', '{\"parcels\": $((RANDOM % 3 + 1))}');"
        sleep 0.2
    done
}
FIFO="$STATE/writer.fifo"
rm -f "$FIFO"
mkfifo "$FIFO"
generate_sql >"$FIFO" &
started writer-sql $!
setsid mariadb --defaults-file="$STACK/mariadb/my.cnf" --force <"$FIFO" >"$LOGS/writer.log" 2>&1 &
started writer $!

note "waiting for the first row in Kafka (topic demo.orders) and in the console"
"$CTL" tail demo.orders --brokers "$KAFKA" --from-beginning --max 1 --max-wait-ms 120000 >/dev/null 2>&1 \
    || die "no row reached Kafka within 2 minutes; see the logs in $LOGS"
console_shows_rows() { # the API the console polls reports events of task orders
    local status
    status=$("$CTL" --json task show orders 2>/dev/null) || return 1
    [[ "$status" =~ \"events\":\ [1-9] ]]
}
deadline=$((SECONDS + 60))
until console_shows_rows; do
    ((SECONDS < deadline)) || die "the console shows no progress of task orders; see $LOGS"
    sleep 0.2
done
FLOWING=$((SECONDS - T0))

cat <<EOF

=== demo.sh [$(elapsed)] rows flow into Kafka and the console shows them, $FLOWING s after demo.sh started

  Console        $SERVER/
  Tail a topic   $CTL tail demo.orders --brokers $KAFKA
                 (also demo.customers, demo.payments, demo.shipments, replicator.alerts; --from-beginning, --meta)
  Tasks          REPLICATOR_SERVER=$SERVER $CTL task list
  Alerts         REPLICATOR_SERVER=$SERVER $CTL alerts --watch
  Try            the Switchover and Pause buttons of the console, or kill -9 a Core's pid
                 (demo-hot-1: $(pids_of core-demo-hot-1), demo-cold-1: $(pids_of core-demo-cold-1)) and watch the other take over
  SQL            mariadb --defaults-file=$STACK/mariadb/my.cnf demo
  Logs           $LOGS/

\$ replicatorctl task list
EOF
"$CTL" task list || true
echo
if [[ -n "$EXIT_AFTER" ]]; then
    echo "stopping in $EXIT_AFTER s (REPLICATOR_DEMO_EXIT_AFTER)"
else
    echo "Ctrl-C stops everything demo.sh started."
fi

# --- supervise ----------------------------------------------------------------
declare -A reported=()
end=$((SECONDS + ${EXIT_AFTER:-0}))
while [[ -z "$EXIT_AFTER" ]] || ((SECONDS < end)); do
    for pid in "$REPLICATOR_STACK_ZK_PID" "$REPLICATOR_STACK_MYSQL_PID" "$REPLICATOR_STACK_KAFKA_PID"; do
        kill -0 "$pid" 2>/dev/null || die "stack server pid $pid exited; its logs are in $STACK"
    done
    for entry in "${PIDS[@]}"; do
        name=${entry%% *} pid=${entry##* }
        if ! kill -0 "$pid" 2>/dev/null && [[ -z "${reported[$name]:-}" ]]; then
            reported[$name]=1
            echo "demo.sh [$(elapsed)]: $name (pid $pid) exited; log in $LOGS"
        fi
    done
    sleep 1
done
