#!/usr/bin/env bash
# Starts the local stack: ZooKeeper, MariaDB (binlog on, row format), a second
# MariaDB replicating from the first by GTID (read-only, log_slave_updates: a
# replica to promote when trying source failover, see docs/source-failover.md)
# and Tansu (Kafka protocol), each on a free loopback port, with their files in
# STATE_DIR.
#
# Usage: deploy/start-stack.sh [STATE_DIR]     (default: <repo>/.state/stack)
#
# REPLICATOR_ZK_SERVERS=3 starts a 3-server ZooKeeper ensemble instead of one
# server (any odd number from 1 to 7; member N in STATE_DIR/zookeeper-N, all
# on loopback ports); REPLICATOR_TEST_ZK then lists all of them.
#
# Writes STATE_DIR/stack.env, which a shell can source:
#   REPLICATOR_TEST_ZK=127.0.0.1:P              ZooKeeper connect string
#   REPLICATOR_TEST_MYSQL=mysql://repl:repl@127.0.0.1:P
#   REPLICATOR_TEST_KAFKA=127.0.0.1:P           Kafka bootstrap servers
#   REPLICATOR_TEST_MYSQL_REPLICA=mysql://repl:repl@127.0.0.1:P   the replica
#   REPLICATOR_STACK_ZK_PID, _MYSQL_PID, _MYSQL_REPLICA_PID, _KAFKA_PID,
#   REPLICATOR_STACK_DIR
#   REPLICATOR_STACK_ZK_PIDS                    every ZooKeeper member's pid
# With those three REPLICATOR_TEST_* variables exported, `cargo test` reuses
# these servers instead of starting its own.
#
# Stop with deploy/stop-stack.sh STATE_DIR. Several stacks may run at once in
# different state directories. MariaDB's data stays in STATE_DIR between runs;
# Tansu keeps topics in memory only. Config templates: deploy/conf/.
set -euo pipefail
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$DEPLOY")"
STATE="${1:-$REPO/.state/stack}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
ENV_FILE="$STATE/stack.env"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
TANSU="${TANSU_BIN:-$CARGO_BIN/tansu}"
ZK_CLASSPATH="$(cat "$DEPLOY/conf/zookeeper.classpath")"
read -r -a ZK_JVM_OPTIONS <"$DEPLOY/conf/zookeeper.jvm-options"

log() { echo "start-stack.sh: $*" >&2; }

STARTED_PIDS=()
cleanup_on_failure() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

fail() {
    log "$1"
    if [[ -n "${2:-}" && -f "$2" ]]; then
        log "last lines of $2:"
        tail -n 30 "$2" >&2
    fi
    cleanup_on_failure
    exit 1
}

if [[ -f "$ENV_FILE" ]]; then
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    # shellcheck disable=SC2086
    for pid in "${REPLICATOR_STACK_ZK_PID:-}" ${REPLICATOR_STACK_ZK_PIDS:-} "${REPLICATOR_STACK_MYSQL_PID:-}" "${REPLICATOR_STACK_KAFKA_PID:-}"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            log "a stack already runs in $STATE (pid $pid); stop it first: deploy/stop-stack.sh $STATE"
            exit 1
        fi
    done
    rm -f "$ENV_FILE"
fi

ZK_SERVERS="${REPLICATOR_ZK_SERVERS:-1}"
case "$ZK_SERVERS" in
1 | 3 | 5 | 7) ;;
*) log "REPLICATOR_ZK_SERVERS=$ZK_SERVERS: give 1, 3, 5 or 7 (an ensemble needs an odd number)"; exit 1 ;;
esac

"$DEPLOY/install.sh"

# $1 distinct free loopback ports, held open together while chosen.
free_ports() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
    else
        local ports=() p
        while ((${#ports[@]} < $1)); do
            p=$((20000 + RANDOM % 12000))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
                ports+=("$p")
            fi
        done
        echo "${ports[*]}"
    fi
}
# MariaDB, Tansu, the MariaDB replica, then per ZooKeeper member: client,
# quorum and election ports
read -r -a PORTS < <(free_ports $((3 + 3 * ZK_SERVERS)))
MYSQL_PORT=${PORTS[0]}
KAFKA_PORT=${PORTS[1]}
REPLICA_PORT=${PORTS[2]}
zk_port() { echo "${PORTS[$((3 + 3 * ($1 - 1) + $2))]}"; } # member kind(0 client, 1 quorum, 2 election)
ZK_PORT=$(zk_port 1 0)

fill() { # template dir port > output
    sed -e "s|@DIR@|$2|g" -e "s|@PORT@|$3|g" "$1"
}

# Waits until "$@" succeeds, at most $1 seconds; false when it never did.
wait_for() {
    local deadline=$((SECONDS + $1)) pid=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

zk_ok() { [[ "$(echo ruok | socat -t1 - "TCP:127.0.0.1:$1" 2>/dev/null)" == imok ]]; }
# an ensemble member serves once srvr reports its mode
zk_serving() { echo srvr | socat -t1 - "TCP:127.0.0.1:$1" 2>/dev/null | grep -Eq '^Mode: (leader|follower|standalone)'; }
mysql_ok() { mariadb --defaults-file="$STATE/mariadb/my.cnf" -e 'SELECT 1'; }
replica_ok() { mariadb --defaults-file="$STATE/mariadb-replica/my.cnf" -e 'SELECT 1'; }
kafka_ok() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT"); }

T0=$SECONDS

# --- ZooKeeper ---------------------------------------------------------------
ZK_PIDS=()
ZK_CONNECT=()
if ((ZK_SERVERS == 1)); then
    ZK_DIR="$STATE/zookeeper"
    mkdir -p "$ZK_DIR/data"
    fill "$DEPLOY/conf/zoo.cfg.in" "$ZK_DIR" "$ZK_PORT" >"$ZK_DIR/zoo.cfg"
    ZK_DIRS=("$ZK_DIR")
else
    ZK_DIRS=()
    for ((i = 1; i <= ZK_SERVERS; i++)); do
        d="$STATE/zookeeper-$i"
        mkdir -p "$d/data"
        echo "$i" >"$d/data/myid"
        # longer init/sync limits than the standalone template: a busy
        # machine must not drop followers
        fill "$DEPLOY/conf/zoo.cfg.in" "$d" "$(zk_port "$i" 0)" |
            sed -e 's/^initLimit=.*/initLimit=50/' -e 's/^syncLimit=.*/syncLimit=20/' >"$d/zoo.cfg"
        for ((j = 1; j <= ZK_SERVERS; j++)); do
            echo "server.$j=127.0.0.1:$(zk_port "$j" 1):$(zk_port "$j" 2)" >>"$d/zoo.cfg"
        done
        ZK_DIRS+=("$d")
    done
fi
for ((i = 1; i <= ZK_SERVERS; i++)); do
    d="${ZK_DIRS[$((i - 1))]}"
    cp "$DEPLOY/conf/log4j.properties" "$d/log4j.properties"
    setsid java "${ZK_JVM_OPTIONS[@]}" -cp "$d:$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain \
        "$d/zoo.cfg" </dev/null >"$d/zookeeper.log" 2>&1 &
    ZK_PIDS+=("$!")
    STARTED_PIDS+=("$!")
    ZK_CONNECT+=("127.0.0.1:$(zk_port "$i" 0)")
done
ZK_PID=${ZK_PIDS[0]}
ZK_DIR=${ZK_DIRS[0]}
ZK_CONNECT_STRING=$(
    IFS=,
    echo "${ZK_CONNECT[*]}"
)

# --- MariaDB -----------------------------------------------------------------
MY_DIR="$STATE/mariadb"
mkdir -p "$MY_DIR/tmp"
fill "$DEPLOY/conf/my.cnf.in" "$MY_DIR" "$MYSQL_PORT" >"$MY_DIR/my.cnf"
if ((${#MY_DIR} > 90)); then
    fail "state dir path too long for a unix socket ($MY_DIR/mysql.sock): use a shorter STATE_DIR"
fi
if [[ ! -d "$MY_DIR/data/mysql" ]]; then
    rm -rf "$MY_DIR/data"
    mariadb-install-db --defaults-file="$MY_DIR/my.cnf" --user=root --skip-test-db \
        >"$MY_DIR/install.log" 2>&1 || fail "mariadb-install-db failed" "$MY_DIR/install.log"
fi
setsid mariadbd --defaults-file="$MY_DIR/my.cnf" </dev/null >"$MY_DIR/mariadbd.out" 2>&1 &
MYSQL_PID=$!
STARTED_PIDS+=("$MYSQL_PID")

# --- MariaDB replica (GTID, read-only, logs what it applies) ------------------
REPLICA_DIR="$STATE/mariadb-replica"
mkdir -p "$REPLICA_DIR/tmp"
{
    fill "$DEPLOY/conf/my.cnf.in" "$REPLICA_DIR" "$REPLICA_PORT"
    printf 'server_id=2\nlog_slave_updates=ON\nread_only=ON\nskip_slave_start=ON\n'
} >"$REPLICA_DIR/my.cnf"
if [[ ! -d "$REPLICA_DIR/data/mysql" ]]; then
    rm -rf "$REPLICA_DIR/data"
    mariadb-install-db --defaults-file="$REPLICA_DIR/my.cnf" --user=root --skip-test-db \
        >"$REPLICA_DIR/install.log" 2>&1 || fail "mariadb-install-db (replica) failed" "$REPLICA_DIR/install.log"
fi
setsid mariadbd --defaults-file="$REPLICA_DIR/my.cnf" </dev/null >"$REPLICA_DIR/mariadbd.out" 2>&1 &
REPLICA_PID=$!
STARTED_PIDS+=("$REPLICA_PID")

# --- Tansu -------------------------------------------------------------------
KAFKA_DIR="$STATE/tansu"
mkdir -p "$KAFKA_DIR"
[[ -x "$TANSU" ]] || fail "tansu not found at $TANSU (deploy/install.sh builds it)"
(
    cd "$KAFKA_DIR" # tansu reads a .env file from its working directory
    unset OTEL_EXPORTER_OTLP_ENDPOINT
    exec setsid "$TANSU" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine memory://tansu/ </dev/null >"$KAFKA_DIR/tansu.log" 2>&1
) &
KAFKA_PID=$!
STARTED_PIDS+=("$KAFKA_PID")

# --- readiness ---------------------------------------------------------------
for ((i = 1; i <= ZK_SERVERS; i++)); do
    p=$(zk_port "$i" 0)
    wait_for 60 "${ZK_PIDS[$((i - 1))]}" zk_ok "$p" || fail "ZooKeeper did not answer ruok on 127.0.0.1:$p" "${ZK_DIRS[$((i - 1))]}/zookeeper.log"
    wait_for 60 "${ZK_PIDS[$((i - 1))]}" zk_serving "$p" || fail "ZooKeeper on 127.0.0.1:$p did not join the ensemble" "${ZK_DIRS[$((i - 1))]}/zookeeper.log"
done
wait_for 60 "$MYSQL_PID" mysql_ok || fail "MariaDB did not start on 127.0.0.1:$MYSQL_PORT" "$MY_DIR/mariadbd.err"
mariadb --defaults-file="$MY_DIR/my.cnf" <"$DEPLOY/conf/users.sql" || fail "creating the repl user failed"
wait_for 60 "$REPLICA_PID" replica_ok || fail "MariaDB replica did not start on 127.0.0.1:$REPLICA_PORT" "$REPLICA_DIR/mariadbd.err"
# the replica's own user is created outside its binlog: its GTID history is
# only the primary's; the primary's port changes at each start
{
    echo "SET sql_log_bin = 0;"
    cat "$DEPLOY/conf/users.sql"
    echo "SET sql_log_bin = 1;"
    echo "STOP SLAVE;"
    echo "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $MYSQL_PORT, MASTER_USER = 'repl',"
    echo "  MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;"
    echo "START SLAVE;"
} | mariadb --defaults-file="$REPLICA_DIR/my.cnf" || fail "setting up the replica failed" "$REPLICA_DIR/mariadbd.err"
wait_for 30 "$KAFKA_PID" kafka_ok || fail "Tansu did not listen on 127.0.0.1:$KAFKA_PORT" "$KAFKA_DIR/tansu.log"

cat >"$ENV_FILE" <<EOF
# written by deploy/start-stack.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ); stop with deploy/stop-stack.sh $STATE
REPLICATOR_TEST_ZK=$ZK_CONNECT_STRING
REPLICATOR_TEST_MYSQL=mysql://repl:repl@127.0.0.1:$MYSQL_PORT
REPLICATOR_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
REPLICATOR_TEST_MYSQL_REPLICA=mysql://repl:repl@127.0.0.1:$REPLICA_PORT
REPLICATOR_STACK_DIR=$STATE
REPLICATOR_STACK_MYSQL_SOCKET=$MY_DIR/mysql.sock
REPLICATOR_STACK_ZK_PID=$ZK_PID
REPLICATOR_STACK_ZK_PIDS="${ZK_PIDS[*]}"
REPLICATOR_STACK_MYSQL_PID=$MYSQL_PID
REPLICATOR_STACK_MYSQL_REPLICA_PID=$REPLICA_PID
REPLICATOR_STACK_KAFKA_PID=$KAFKA_PID
EOF

cat <<EOF
stack up in $((SECONDS - T0)) s, files in $STATE
  ZooKeeper  $ZK_CONNECT_STRING    pid ${ZK_PIDS[*]}    log ${ZK_DIRS[*]/%//zookeeper.log}
  MariaDB    127.0.0.1:$MYSQL_PORT    pid $MYSQL_PID    user repl/repl over TCP; root: mariadb --defaults-file=$MY_DIR/my.cnf
  replica    127.0.0.1:$REPLICA_PORT    pid $REPLICA_PID    GTID replica of the MariaDB above (read-only); root: mariadb --defaults-file=$REPLICA_DIR/my.cnf
  Tansu      127.0.0.1:$KAFKA_PORT    pid $KAFKA_PID    log $KAFKA_DIR/tansu.log
use it:  set -a; source $ENV_FILE; set +a    (then cargo test reuses these servers)
stop it: $DEPLOY/stop-stack.sh $STATE
EOF
