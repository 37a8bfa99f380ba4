#!/usr/bin/env bash
# Local backing stores for chatmesh: Redis, PostgreSQL, Cassandra, Kafka and
# an S3-compatible object store (SeaweedFS), each a private instance on
# 127.0.0.1 with all of its data under the repo's git-ignored .local/ folder.
#
#   deploy/local/backing.sh up      install what is missing, start what is not
#                                   running, wait until each really answers,
#                                   print the addresses
#   deploy/local/backing.sh down    stop them cleanly
#   deploy/local/backing.sh status  say which are up (exit 0 only if all are)
#
# The same three commands with --multinode (e.g. `backing.sh up --multinode`) run
# the multi-node Cassandra, Redis Cluster and Kafka of deploy/local/multinode.sh
# instead, beside these and with data under .local/multinode/; see that file.
#
# Ports (other code depends on these defaults; override with the same names):
#   CHATMESH_REDIS_PORT=16379  CHATMESH_PG_PORT=15432  CHATMESH_CASSANDRA_PORT=19042
#   CHATMESH_KAFKA_PORT=19092  CHATMESH_S3_PORT=18333
# Less important knobs:
#   CHATMESH_CASSANDRA_STORAGE_PORT=17000  inter-node port (nothing else uses it)
#   CHATMESH_CASSANDRA_JMX_PORT=17199      JMX on 127.0.0.1; set to "" to turn JMX off
#   CHATMESH_CASSANDRA_HEAP=1G             -Xms/-Xmx of the Cassandra JVM
#   CHATMESH_CASSANDRA_TIMEOUT=240         seconds to wait for CQL to answer
#   CHATMESH_CASSANDRA_JAVA=/path/to/java  JDK 17 (or 11) used for Cassandra 5.0 and Kafka
#   CHATMESH_KAFKA_CONTROLLER_PORT=19093   KRaft controller listener
#   CHATMESH_KAFKA_HEAP=512m               -Xms/-Xmx of the Kafka JVM
#   CHATMESH_JVM_TIMER_SLACK_NS=1000000    timer slack of the Cassandra and Kafka JVMs
#                                          (see jvm_timer_slack); 50000 is Linux's default
#   CHATMESH_S3_MASTER_PORT=19333          SeaweedFS's own parts behind its S3
#   CHATMESH_S3_VOLUME_PORT=18080          gateway; each also takes its port
#   CHATMESH_S3_FILER_PORT=18888           + 10000 for gRPC
#
# Meant to be run as root (CI and the dev machines are root): it apt-get
# installs redis-server / postgresql / a JDK / maven when missing, builds
# SeaweedFS's `weed` with deploy/local/tools.sh (Go) when missing, and runs
# PostgreSQL as the `postgres` OS user because postgres refuses to run as root.
# It is idempotent: a second `up` with everything running takes a few seconds.
set -euo pipefail

# ---------------------------------------------------------------------------
# Locations and settings
# ---------------------------------------------------------------------------

# The repo root is computed from this file's location so the script works from
# any clone (CI clones into a fresh folder) and from any working directory.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
LOCAL="$ROOT/.local"

REDIS_PORT="${CHATMESH_REDIS_PORT:-16379}"
PG_PORT="${CHATMESH_PG_PORT:-15432}"
CASSANDRA_PORT="${CHATMESH_CASSANDRA_PORT:-19042}"
CASSANDRA_STORAGE_PORT="${CHATMESH_CASSANDRA_STORAGE_PORT:-17000}"
CASSANDRA_JMX_PORT="${CHATMESH_CASSANDRA_JMX_PORT-17199}"
CASSANDRA_HEAP="${CHATMESH_CASSANDRA_HEAP:-1G}"
CASSANDRA_TIMEOUT="${CHATMESH_CASSANDRA_TIMEOUT:-240}"
KAFKA_PORT="${CHATMESH_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${CHATMESH_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${CHATMESH_KAFKA_HEAP:-512m}"
JVM_TIMER_SLACK_NS="${CHATMESH_JVM_TIMER_SLACK_NS:-1000000}"
KAFKA_TIMEOUT=120
S3_PORT="${CHATMESH_S3_PORT:-18333}"
S3_MASTER_PORT="${CHATMESH_S3_MASTER_PORT:-19333}"
S3_VOLUME_PORT="${CHATMESH_S3_VOLUME_PORT:-18080}"
S3_FILER_PORT="${CHATMESH_S3_FILER_PORT:-18888}"
S3_TIMEOUT=60
# The store's only identity; chatmesh/object_store.py has the same defaults.
S3_ACCESS_KEY=chatmesh-local
S3_SECRET_KEY=chatmesh-local-secret

REDIS_DIR="$LOCAL/redis"
PG_DIR="$LOCAL/postgres"            # owned by the postgres OS user
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
CASS_DIR="$LOCAL/cassandra"
CASS_CONF_SRC="$SCRIPT_DIR/cassandra"   # committed templates: pom.xml, cassandra.yaml, logback.xml
CASS_PIDFILE="$CASS_DIR/cassandra.pid"
CASS_LOG="$CASS_DIR/logs/system.log"
CASS_CLASSPATH="$CASS_DIR/classpath.txt"
CASS_CLASSPATH_STAMP="$CASS_DIR/classpath.pom.sha256"

KAFKA_DIR="$LOCAL/kafka"
KAFKA_CONF_SRC="$SCRIPT_DIR/kafka"      # committed: pom.xml, server.properties, log4j2.properties
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/logs/server.log"
KAFKA_CLASSPATH="$KAFKA_DIR/classpath.txt"
KAFKA_CLASSPATH_STAMP="$KAFKA_DIR/classpath.pom.sha256"
KAFKA_START_NOTE=""

WEED="$LOCAL/bin/weed"                  # built by deploy/local/tools.sh seaweedfs
SEAWEED_DIR="$LOCAL/seaweedfs"
SEAWEED_PIDFILE="$SEAWEED_DIR/weed.pid"
SEAWEED_LOG="$SEAWEED_DIR/logs/weed.log"
S3_START_NOTE=""

# Set by cassandra_up / cassandra_resolve for the summary line.
CASSANDRA_START_NOTE=""
CASS_RESOLVE_NOTE=""

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

# Progress goes to stderr so stdout of `up` is just the address list.
log() { printf '[backing] %s\n' "$*" >&2; }
die() { printf '[backing] ERROR: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }

# Called in the subshell that execs a JVM: the slack is inherited by every
# thread the JVM makes. Cassandra's request and mutation stages (its shared
# executor pool) keep a worker spinning while requests trickle in, parking
# it 10 µs at a time: at 200 requests/s on 2 cores that alone cost 0.3 of a
# core, and Kafka's request threads behave alike. With 1 ms of slack those
# parks end together with other wake-ups, for at most 1 ms more per wait;
# measured in bench/README.md ("Where the CPU goes").
jvm_timer_slack() { echo "$JVM_TIMER_SLACK_NS" >/proc/self/timerslack_ns 2>/dev/null || true; }
# Seconds (one decimal) elapsed since a now_ms timestamp.
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100)); }

# wait_until SECONDS WHAT CMD [ARGS...]
# Re-runs CMD every second until it succeeds; returns 1 after SECONDS.
# CMD runs in this shell, so it may call die() to abort early (e.g. when the
# process we are waiting for has died: no point waiting out the timeout).
wait_until() {
    local timeout=$1 what=$2; shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 1
    done
}

# True if something accepts TCP connections on 127.0.0.1:PORT (bash /dev/tcp,
# so no netcat is needed).
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# apt-get install, once per script run preceded by apt-get update (a fresh
# machine's package lists may be empty or stale). Another apt/dpkg may be
# running (e.g. a provisioning step installing the same packages): wait for
# its lock instead of failing.
APT_UPDATED=0
apt_install() {
    [[ $EUID -eq 0 ]] || die "need root to apt-get install $* (or install it yourself)"
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-o DPkg::Lock::Timeout=600 -q)
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        local i
        for i in 1 2 3 4 5 6 7 8 9 10; do  # the lists lock is not covered by Lock::Timeout
            apt-get "${apt_opts[@]}" update >&2 && break
            ((i < 10)) || die "apt-get update failed"
            sleep 10
        done
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "$@" >&2
}

# Run a command as the postgres OS user when we are root (postgres refuses to
# run as root); as ourselves otherwise.
as_pg() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null)" == PONG ]]; }

redis_up() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    if redis_ping; then
        log "redis: already answering on $REDIS_PORT, reusing it"
        return
    fi
    mkdir -p "$REDIS_DIR"
    # Our own instance, not Debian's service on 6379: loopback only. Durable
    # like production: msgsvc's idempotency claims live here, and a lost claim
    # lets a client's retry store a message twice. AOF with an fsync every
    # second, no RDB snapshots (they would only duplicate the AOF); see
    # docs/decisions/0007-redis-durability.md.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        --save "" --appendonly yes --appendfsync everysec 9>&-
    wait_until 30 "redis PING on $REDIS_PORT" redis_ping ||
        die "redis did not answer; tail of $REDIS_DIR/redis.log:
$(tail -n 20 "$REDIS_DIR/redis.log" 2>/dev/null)"
    log "redis: started on $REDIS_PORT"
}

redis_down() {
    if ! redis_ping; then log "redis: not running"; return; fi
    # NOSAVE skips an RDB snapshot (disabled anyway); the AOF is still
    # flushed and fsynced on shutdown. SHUTDOWN alone as a fallback for
    # servers that refuse the modifier.
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SHUTDOWN NOSAVE >/dev/null 2>&1 ||
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SHUTDOWN >/dev/null 2>&1 || true
    wait_until 30 "redis to stop" eval '! redis_ping' || die "redis on $REDIS_PORT did not stop"
    log "redis: stopped"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# Debian keeps the server binaries out of PATH, one folder per major version
# (15 on Debian 12): take the newest.
pg_latest_bin() {
    find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

PG_BIN=""
pg_find_bin() {
    local d
    d=$(pg_latest_bin)
    if [[ -z "$d" || ! -x "$d/initdb" ]]; then
        apt_install postgresql
        d=$(pg_latest_bin)
    fi
    [[ -n "$d" && -x "$d/initdb" ]] || die "postgresql binaries not found under /usr/lib/postgresql/*/bin"
    PG_BIN="$d"
}

# The unix socket goes inside .local (not /var/run/postgresql, which belongs
# to Debian's own cluster). Socket paths are limited to ~107 bytes, so a very
# deep clone falls back to a per-port folder in /tmp.
pg_socket_dir() {
    local d="$PG_DIR/run"
    if (( ${#d} + 20 > 100 )); then d="/tmp/chatmesh-pg-$PG_PORT"; fi
    printf '%s' "$d"
}

pg_answers()  { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
pg_app_ready() {
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U chatmesh -d chatmesh -XAtqc 'SELECT 1' >/dev/null 2>&1
}
pg_admin() {  # run SQL as the cluster's bootstrap superuser over TCP (trust auth)
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"
}

# postgres (the OS user) must be able to reach its data dir: give "search"
# (x) permission on every ancestor that lacks it, e.g. a clone under /root.
# Walks from / downwards, since a folder is only reachable if its parents are.
pg_make_reachable() {
    [[ $EUID -eq 0 ]] || return 0
    local d="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${PG_DIR#/}"
    for part in "${parts[@]::${#parts[@]}-1}"; do
        d="$d/$part"
        if ! runuser -u postgres -- test -x "$d"; then
            log "postgres: chmod o+x $d so the postgres user can reach its data dir"
            chmod o+x "$d"
        fi
    done
}

pg_up() {
    pg_find_bin
    local sock; sock=$(pg_socket_dir)
    if pg_answers; then
        log "postgres: already answering on $PG_PORT, reusing it"
    else
        mkdir -p "$PG_DIR" "$sock"
        [[ $EUID -ne 0 ]] || chown postgres:postgres "$PG_DIR" "$sock"
        pg_make_reachable
        if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
            log "postgres: initdb $PG_DATA"
            # trust: loopback-only throwaway cluster, tests connect without passwords.
            as_pg "$PG_BIN/initdb" -D "$PG_DATA" --username=postgres --auth=trust \
                --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
                die "initdb failed: $(tail -n 20 "$PG_DIR/initdb.log")"
        fi
        # Port, address and socket dir are given on the command line (not baked
        # into postgresql.conf) so a changed CHATMESH_PG_PORT takes effect.
        log "postgres: starting on $PG_PORT"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $sock" start >/dev/null 9>&- ||
            die "postgres did not start; tail of $PG_LOG:
$(tail -n 20 "$PG_LOG" 2>/dev/null)"
        wait_until 30 "postgres on $PG_PORT" pg_answers || die "postgres does not answer on $PG_PORT"
    fi
    # Role and database the services use. SUPERUSER so tests can create and
    # drop throwaway databases. Checked on every `up`: cheap, and repairs a
    # reused cluster that lacks them.
    if ! pg_app_ready; then
        if [[ -z "$(pg_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'chatmesh'")" ]]; then
            log "postgres: creating role chatmesh"
            pg_admin -c 'CREATE ROLE chatmesh SUPERUSER LOGIN' >/dev/null
        fi
        if [[ -z "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = 'chatmesh'")" ]]; then
            log "postgres: creating database chatmesh"
            pg_admin -c 'CREATE DATABASE chatmesh OWNER chatmesh' >/dev/null
        fi
    fi
    wait_until 30 "psql as chatmesh on $PG_PORT" pg_app_ready ||
        die "cannot run SELECT 1 as chatmesh@127.0.0.1:$PG_PORT/chatmesh"
}

pg_down() {
    PG_BIN=$(pg_latest_bin)
    if [[ -z "$PG_BIN" ]]; then log "postgres: not installed"; return; fi
    if [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        # fast: roll back open transactions and disconnect clients, then a
        # clean shutdown checkpoint (no crash recovery on the next start).
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 stop -m fast >/dev/null
        log "postgres: stopped"
    elif pg_answers; then
        log "postgres: something answers on $PG_PORT but it is not our cluster in $PG_DATA; left alone"
    else
        log "postgres: not running"
    fi
}

# ---------------------------------------------------------------------------
# Cassandra
# ---------------------------------------------------------------------------
# No Debian package: cassandra-all and its dependencies come from Maven
# Central, resolved by the tiny pom in deploy/local/cassandra/ into ~/.m2 (kept
# between runs); the resulting classpath is cached in .local/cassandra and
# only recomputed when the pom changes or a jar has gone from ~/.m2. The
# daemon runs with the JVM flags of Cassandra 5.0's conf/jvm-server.options
# and conf/jvm17-server.options (bin/cassandra is not in the Maven artifact).

JAVA=""
cassandra_find_java() {
    # Cassandra 5.0 runs on Java 11 or 17 only; the machine may also carry a
    # newer JDK, so prefer an explicit 17 over whatever `java` is on PATH.
    local c
    for c in "${CHATMESH_CASSANDRA_JAVA:-}" /usr/lib/jvm/java-17-openjdk-*/bin/java "$(command -v java || true)"; do
        [[ -n "$c" && -x "$c" ]] || continue
        if "$c" -version 2>&1 | head -n 1 | grep -Eq '"(17|11)[."]'; then JAVA="$c"; return; fi
    done
    apt_install openjdk-17-jre-headless
    JAVA=$(find /usr/lib/jvm -path '*/java-17-openjdk-*/bin/java' | head -n 1)
    [[ -x "$JAVA" ]] || die "no JDK 17 after installing openjdk-17-jre-headless"
}

# classpath_fresh POM OUT STAMP: true if OUT was written for this very pom and
# every jar it names is still in ~/.m2.
classpath_fresh() {
    local pom=$1 out=$2 stamp=$3 jar
    [[ -s "$out" && -f "$stamp" && "$(cat "$stamp")" == "$(sha256sum <"$pom")" ]] || return 1
    while IFS= read -r jar; do [[ -f "$jar" ]] || return 1; done < <(tr ':' '\n' <"$out")
}

# maven_classpath NAME POM OUT STAMP LOGDIR
# Resolves the pom's runtime dependencies into a classpath file, unless OUT
# is still fresh: written for this very pom (STAMP holds its hash) and every
# jar it names still in ~/.m2. Offline first: a fresh clone on a machine
# whose ~/.m2 already has everything needs no network at all.
MAVEN_NOTE=""
maven_classpath() {
    local name=$1 pom=$2 out=$3 stamp=$4 logdir=$5
    MAVEN_NOTE=""
    ! classpath_fresh "$pom" "$out" "$stamp" || return 0
    command -v mvn >/dev/null || apt_install maven
    mkdir -p "$logdir"
    local t0; t0=$(now_ms)
    local mvn_args=(-B -q -Dstyle.color=never -f "$pom" dependency:build-classpath
        -Dmdep.outputFile="$out.tmp" -Dmdep.includeScope=runtime)
    log "$name: resolving its jars with Maven (the first run downloads them)"
    if ! mvn -o "${mvn_args[@]}" >"$logdir/maven.log" 2>&1; then
        mvn "${mvn_args[@]}" >"$logdir/maven.log" 2>&1 ||
            die "maven could not resolve $name; tail of $logdir/maven.log:
$(tail -n 30 "$logdir/maven.log")"
    fi
    mv "$out.tmp" "$out"
    sha256sum <"$pom" >"$stamp"
    MAVEN_NOTE="maven resolve: $(since "$t0") s"
    log "$name: classpath resolved in $(since "$t0") s"
}

cassandra_resolve() {
    maven_classpath cassandra "$CASS_CONF_SRC/pom.xml" "$CASS_CLASSPATH" \
        "$CASS_CLASSPATH_STAMP" "$CASS_DIR/logs"
    CASS_RESOLVE_NOTE="$MAVEN_NOTE"
}

cassandra_pid() {  # pid of our Cassandra JVM if it is alive, else fails
    local pid
    pid=$(cat "$CASS_PIDFILE" 2>/dev/null) || return 1
    [[ -n "$pid" ]] && grep -qa CassandraDaemon "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s' "$pid"
}

# Python with the DataStax driver for the readiness query: the project venv
# (may still be being installed while we run), else the system python3.
CQL_PYTHON=""
cassandra_find_cql_python() {
    local p
    for p in "$ROOT/.venv/bin/python" python3; do
        if "$p" -c 'import cassandra.cluster' >/dev/null 2>&1; then CQL_PYTHON="$p"; return; fi
    done
    CQL_PYTHON=""
}

# A real CQL round trip. Prints the server's release_version.
cassandra_cql_query() {
    "$CQL_PYTHON" - "$CASSANDRA_PORT" 2>/dev/null <<'PY'
import logging, sys
logging.disable(logging.CRITICAL)  # the driver logs protocol-negotiation noise
from cassandra.cluster import Cluster
cluster = Cluster(["127.0.0.1"], port=int(sys.argv[1]), connect_timeout=5, control_connection_timeout=5)
try:
    row = cluster.connect().execute("SELECT release_version FROM system.local", timeout=10).one()
    print(row[0])
finally:
    cluster.shutdown()
PY
}

CASSANDRA_VERSION=""
cassandra_ready() {
    port_open "$CASSANDRA_PORT" || return 1
    # Re-checked each time: the venv may have gained the driver meanwhile.
    [[ -n "$CQL_PYTHON" ]] || cassandra_find_cql_python
    if [[ -n "$CQL_PYTHON" ]]; then
        CASSANDRA_VERSION=$(cassandra_cql_query) || return 1
    else
        # No driver yet: the port is open and the log says CQL is being served.
        grep -q 'Starting listening for CQL clients' "$CASS_LOG" 2>/dev/null || return 1
        CASSANDRA_VERSION="$(grep -oE 'cassandra-all-[0-9][^/]*\.jar' "$CASS_CLASSPATH" 2>/dev/null |
            sed -E 's/cassandra-all-(.*)\.jar/\1/') (CQL not queried: no python cassandra-driver yet)"
    fi
}

# Used while waiting for startup: fail fast if the JVM died.
cassandra_ready_or_dead() {
    cassandra_ready && return 0
    cassandra_pid >/dev/null || die "cassandra exited during startup; tail of $CASS_LOG:
$(tail -n 40 "$CASS_LOG" 2>/dev/null)
--- $CASS_DIR/logs/stdout.log:
$(tail -n 20 "$CASS_DIR/logs/stdout.log" 2>/dev/null)"
    return 1
}

cassandra_render_config() {
    # Absolute paths differ per clone, so the yaml template is rendered at
    # every start into .local/cassandra/cassandra.yaml.
    sed -e "s|@DATA_DIR@|$CASS_DIR|g" \
        -e "s|@NATIVE_PORT@|$CASSANDRA_PORT|g" \
        -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" \
        -e "s|@SSL_STORAGE_PORT@|$((CASSANDRA_STORAGE_PORT + 1))|g" \
        "$CASS_CONF_SRC/cassandra.yaml" >"$CASS_DIR/cassandra.yaml"
}

# cassandra_jvm_opts DIR HEAP: sets CASS_JVM_OPTS to the JVM flags every
# Cassandra node runs with (the single node and the --multinode ones), its
# state and cassandra.yaml in DIR. Needs JAVA found and the classpath
# resolved.
CASS_JVM_OPTS=()
cassandra_jvm_opts() {
    local dir=$1 heap=$2 jamm
    jamm=$(tr ':' '\n' <"$CASS_CLASSPATH" | grep -E '/jamm-[0-9][^/]*\.jar$' | head -n 1) ||
        die "jamm jar not found on the resolved classpath"
    CASS_JVM_OPTS=(
        # --- conf/jvm-server.options (5.0) ---
        -ea -da:net.openhft...
        -XX:+UseThreadPriorities
        -XX:+HeapDumpOnOutOfMemoryError "-XX:HeapDumpPath=$dir/logs"
        -XX:+CrashOnOutOfMemoryError "-XX:ErrorFile=$dir/logs/hs_err_%p.log"
        -Xss256k
        -XX:+AlwaysPreTouch
        -XX:+UseTLAB -XX:+ResizeTLAB -XX:+UseNUMA
        -XX:+PerfDisableSharedMem
        -Djava.net.preferIPv4Stack=true
        # --- conf/jvm17-server.options (5.0): G1 ---
        -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
        -XX:G1HeapRegionSize=16m -XX:G1RSetUpdatingPauseTimePercent=5
        -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
        # --- conf/jvm17-server.options (5.0): JPMS ---
        -Djdk.attach.allowAttachSelf=true
        --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
        --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
        --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
        --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
        --add-exports java.sql/java.sql=ALL-UNNAMED
        --add-exports java.base/java.lang.ref=ALL-UNNAMED
        --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
        --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
        --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
        --add-opens java.base/java.lang.module=ALL-UNNAMED
        --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
        --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
        --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
        --add-opens java.base/jdk.internal.math=ALL-UNNAMED
        --add-opens java.base/jdk.internal.module=ALL-UNNAMED
        --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
        --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
        --add-opens java.base/sun.nio.ch=ALL-UNNAMED
        --add-opens java.base/java.io=ALL-UNNAMED
        --add-opens java.base/java.lang.reflect=ALL-UNNAMED
        --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
        --add-opens java.base/java.lang=ALL-UNNAMED
        --add-opens java.base/java.util=ALL-UNNAMED
        # --- conf/jvm17-server.options (5.0): Netty ---
        -Dio.netty.tryReflectionSetAccessible=true
        -Dio.netty.allocator.useCacheForAllThreads=true
        -Dio.netty.allocator.maxOrder=11
        # --- what bin/cassandra + cassandra-env.sh would add ---
        "-javaagent:$jamm"
        "-Xms$heap" "-Xmx$heap"
        "-Dcassandra.config=file://$dir/cassandra.yaml"
        "-Dcassandra.storagedir=$dir"
        "-Dcassandra.logdir=$dir/logs"
        "-Dcassandra.triggers_dir=$dir/triggers"
        "-Dlogback.configurationFile=$CASS_CONF_SRC/logback.xml"
    )
}

cassandra_start() {
    cassandra_find_java
    cassandra_resolve
    mkdir -p "$CASS_DIR"/{data,commitlog,saved_caches,hints,cdc_raw,logs,triggers}
    cassandra_render_config

    local cp; cp=$(cat "$CASS_CLASSPATH")
    cassandra_jvm_opts "$CASS_DIR" "$CASSANDRA_HEAP"
    local jvm_opts=(
        "${CASS_JVM_OPTS[@]}"
        # --- single-node fast start ---
        -Dcassandra.skip_wait_for_gossip_to_settle=0  # no peers to wait for
        -Dcassandra.ring_delay_ms=100                 # default 30 s of waiting for a ring that is just us
        -Dcassandra.superuser_setup_delay_ms=0
        -Dcassandra.initial_token=0
    )
    if [[ -n "$CASSANDRA_JMX_PORT" ]]; then
        # "local" JMX: bound to 127.0.0.1, no authentication.
        jvm_opts+=("-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT"
            "-Dcom.sun.management.jmxremote.rmi.port=$CASSANDRA_JMX_PORT")  # else RMI takes a random port
    fi

    log "cassandra: starting on $CASSANDRA_PORT (log: ${CASS_LOG#"$ROOT/"})"
    : >"$CASS_LOG"  # start each run with a fresh log so readiness greps this run only
    # setsid + nohup: detached from this shell's session, survives it ending.
    # Without -Dcassandra-foreground the daemon closes stdout/stderr after
    # start-up, so stdout.log only holds early JVM errors.
    (cd "$CASS_DIR" && jvm_timer_slack && exec setsid nohup "$JAVA" "${jvm_opts[@]}" -cp "$cp" \
        org.apache.cassandra.service.CassandraDaemon >"$CASS_DIR/logs/stdout.log" 2>&1 </dev/null) 9>&- &
    local pid=$!
    echo "$pid" >"$CASS_PIDFILE"
    # The subshell needs a moment to exec into the JVM; until it has,
    # cassandra_pid would not recognise it and we would report a dead start.
    # (A JVM that failed at once is a zombie here: empty cmdline, loop ends.)
    wait_until 10 "the JVM to launch" eval \
        'grep -qa CassandraDaemon /proc/'"$pid"'/cmdline 2>/dev/null || [[ ! -s /proc/'"$pid"'/cmdline ]]' || true
}

cassandra_up() {
    if cassandra_pid >/dev/null || port_open "$CASSANDRA_PORT"; then
        # Either it already answers, or our JVM from an earlier call is still
        # starting up: wait for that one instead of starting a second.
        cassandra_find_cql_python
        if cassandra_ready; then
            log "cassandra: already answering on $CASSANDRA_PORT, reusing it"
            CASSANDRA_START_NOTE="reused (already running)"
            return
        fi
        if ! cassandra_pid >/dev/null; then
            die "something listens on $CASSANDRA_PORT but does not answer CQL, and it is not our Cassandra"
        fi
        log "cassandra: our JVM (pid $(cassandra_pid)) is still starting, waiting for it"
        CASSANDRA_START_NOTE="was already starting"
    else
        local t0; t0=$(now_ms)
        cassandra_start
        local t1; t1=$(now_ms)
        cassandra_find_cql_python
        [[ -n "$CQL_PYTHON" ]] || log "cassandra: no python cassandra-driver yet; readiness = port open + log line"
        wait_until "$CASSANDRA_TIMEOUT" "CQL on $CASSANDRA_PORT" cassandra_ready_or_dead ||
            die "cassandra not ready after ${CASSANDRA_TIMEOUT}s (pid $(cat "$CASS_PIDFILE")); tail of $CASS_LOG:
$(tail -n 40 "$CASS_LOG" 2>/dev/null)"
        CASSANDRA_START_NOTE="started in $(since "$t0") s (JVM launch to CQL answer: $(since "$t1") s${CASS_RESOLVE_NOTE:+; $CASS_RESOLVE_NOTE})"
        log "cassandra: $CASSANDRA_START_NOTE, version $CASSANDRA_VERSION"
        return
    fi
    wait_until "$CASSANDRA_TIMEOUT" "CQL on $CASSANDRA_PORT" cassandra_ready_or_dead ||
        die "cassandra not ready after ${CASSANDRA_TIMEOUT}s; tail of $CASS_LOG:
$(tail -n 40 "$CASS_LOG" 2>/dev/null)"
}

cassandra_down() {
    local pid
    if pid=$(cassandra_pid); then
        # TERM runs Cassandra's shutdown hook (drain: flush memtables, close
        # the commit log), so the next start replays nothing. Give it time.
        log "cassandra: stopping pid $pid"
        kill -TERM "$pid"
        if ! wait_until 90 "cassandra to exit" eval '! kill -0 '"$pid"' 2>/dev/null'; then
            log "cassandra: still alive after 90 s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_until 10 "cassandra to die" eval '! kill -0 '"$pid"' 2>/dev/null' || true
        fi
        rm -f "$CASS_PIDFILE"
        log "cassandra: stopped"
    elif port_open "$CASSANDRA_PORT"; then
        log "cassandra: something listens on $CASSANDRA_PORT but it is not our JVM (no live $CASS_PIDFILE); left alone"
    else
        rm -f "$CASS_PIDFILE"
        log "cassandra: not running"
    fi
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------
# Like Cassandra: kafka_2.13 and its dependencies come from Maven Central,
# resolved by the tiny pom in deploy/local/kafka/, the classpath cached in
# .local/kafka. One JVM is both the KRaft controller and the broker; its
# storage is formatted once with a cluster id kept beside it.

kafka_resolve() {
    maven_classpath kafka "$KAFKA_CONF_SRC/pom.xml" "$KAFKA_CLASSPATH" \
        "$KAFKA_CLASSPATH_STAMP" "$KAFKA_DIR/logs"
}

kafka_pid() {  # pid of our Kafka JVM if it is alive, else fails
    local pid
    pid=$(cat "$KAFKA_PIDFILE" 2>/dev/null) || return 1
    [[ -n "$pid" ]] && grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s' "$pid"
}

KAFKA_PYTHON=""
kafka_find_python() {
    local p
    for p in "$ROOT/.venv/bin/python" python3; do
        if "$p" -c 'import confluent_kafka' >/dev/null 2>&1; then KAFKA_PYTHON="$p"; return; fi
    done
    KAFKA_PYTHON=""
}

# A real round trip: creates the readiness topic if needed, produces one
# record with acks=all and reads it back from its offset.
kafka_round_trip() {
    "$KAFKA_PYTHON" - "127.0.0.1:$KAFKA_PORT" 2>/dev/null <<'PY'
import sys, uuid
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic = sys.argv[1], "_chatmesh_ready"
admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
try:
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
except KafkaException as exc:
    if "TOPIC_ALREADY_EXISTS" not in str(exc):
        raise
marker = uuid.uuid4().hex.encode()
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 10000})
delivered = []
producer.produce(topic, marker, on_delivery=lambda err, msg: delivered.append((err, msg)))
producer.flush(10)
error, record = delivered[0]
if error is not None:
    sys.exit(1)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "_chatmesh_ready", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, record.partition(), record.offset())])
got = consumer.poll(10)
consumer.close()
sys.exit(0 if got is not None and got.error() is None and got.value() == marker else 1)
PY
}

kafka_ready() {
    port_open "$KAFKA_PORT" || return 1
    [[ -n "$KAFKA_PYTHON" ]] || kafka_find_python
    if [[ -n "$KAFKA_PYTHON" ]]; then
        kafka_round_trip
    else
        # No client library yet: the port is open and the broker says it started.
        grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null
    fi
}

kafka_ready_or_dead() {
    kafka_ready && return 0
    kafka_pid >/dev/null || die "kafka exited during startup; tail of $KAFKA_LOG:
$(tail -n 40 "$KAFKA_LOG" 2>/dev/null)
--- $KAFKA_DIR/logs/stdout.log:
$(tail -n 20 "$KAFKA_DIR/logs/stdout.log" 2>/dev/null)"
    return 1
}

kafka_start() {
    cassandra_find_java
    kafka_resolve
    mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
    sed -e "s|@PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" \
        "$KAFKA_CONF_SRC/server.properties" >"$KAFKA_DIR/server.properties"
    local cp; cp=$(cat "$KAFKA_CLASSPATH")
    local log_opts=("-Dkafka.logs.dir=$KAFKA_DIR/logs"
        "-Dlog4j2.configurationFile=$KAFKA_CONF_SRC/log4j2.properties")
    if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
        local id
        id=$("$JAVA" "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
        log "kafka: formatting storage (cluster $id)"
        "$JAVA" "${log_opts[@]}" -cp "$cp" kafka.tools.StorageTool format --standalone \
            -t "$id" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1 ||
            die "kafka storage format failed: $(tail -n 20 "$KAFKA_DIR/logs/format.log")"
    fi
    log "kafka: starting on $KAFKA_PORT (log: ${KAFKA_LOG#"$ROOT/"})"
    : >"$KAFKA_LOG"
    (cd "$KAFKA_DIR" && jvm_timer_slack && exec setsid nohup "$JAVA" "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true "${log_opts[@]}" \
        -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" \
        >"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null) 9>&- &
    local pid=$!
    echo "$pid" >"$KAFKA_PIDFILE"
    wait_until 10 "the JVM to launch" eval \
        'grep -qa kafka.Kafka /proc/'"$pid"'/cmdline 2>/dev/null || [[ ! -s /proc/'"$pid"'/cmdline ]]' || true
}

kafka_up() {
    kafka_find_python
    if kafka_pid >/dev/null || port_open "$KAFKA_PORT"; then
        if kafka_ready; then
            log "kafka: already answering on $KAFKA_PORT, reusing it"
            KAFKA_START_NOTE="reused (already running)"
            return
        fi
        kafka_pid >/dev/null ||
            die "something listens on $KAFKA_PORT but is not a working Kafka, and not ours"
        log "kafka: our JVM (pid $(kafka_pid)) is still starting, waiting for it"
    else
        local t0; t0=$(now_ms)
        kafka_start
        wait_until "$KAFKA_TIMEOUT" "a Kafka round trip on $KAFKA_PORT" kafka_ready_or_dead ||
            die "kafka not ready after ${KAFKA_TIMEOUT}s; tail of $KAFKA_LOG:
$(tail -n 40 "$KAFKA_LOG" 2>/dev/null)"
        KAFKA_START_NOTE="started in $(since "$t0") s"
        log "kafka: $KAFKA_START_NOTE"
        return
    fi
    wait_until "$KAFKA_TIMEOUT" "a Kafka round trip on $KAFKA_PORT" kafka_ready_or_dead ||
        die "kafka not ready after ${KAFKA_TIMEOUT}s"
    KAFKA_START_NOTE="was already starting"
}

kafka_down() {
    local pid
    if pid=$(kafka_pid); then
        # TERM runs a controlled shutdown: logs flushed, no recovery next start.
        log "kafka: stopping pid $pid"
        kill -TERM "$pid"
        if ! wait_until 60 "kafka to exit" eval '! kill -0 '"$pid"' 2>/dev/null'; then
            log "kafka: still alive after 60 s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$KAFKA_PIDFILE"
        log "kafka: stopped"
    elif port_open "$KAFKA_PORT"; then
        log "kafka: something listens on $KAFKA_PORT but it is not our JVM; left alone"
    else
        rm -f "$KAFKA_PIDFILE"
        log "kafka: not running"
    fi
}

# ---------------------------------------------------------------------------
# SeaweedFS (the S3-compatible object store)
# ---------------------------------------------------------------------------
# One `weed server` process runs SeaweedFS's master, volume server, filer and
# S3 gateway. No Debian package and no release download here: the binary is
# built from source through the Go module proxy by deploy/local/tools.sh
# (about five minutes the first time) and cached in .local/bin.

s3_pid() {  # pid of our weed server if it is alive, else fails
    local pid
    pid=$(cat "$SEAWEED_PIDFILE" 2>/dev/null) || return 1
    [[ -n "$pid" ]] && grep -qa -- '-s3.config=' "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s' "$pid"
}

# The S3 gateway's own health check, over bash /dev/tcp like port_open.
s3_healthz() {
    timeout 3 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$S3_PORT"' || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        IFS= read -r status <&3
        [[ $status == "HTTP/1."?" 200 "* ]]' 2>/dev/null
}

S3_PYTHON=""
s3_find_python() {
    local p
    for p in "$ROOT/.venv/bin/python" python3; do
        if "$p" -c 'import botocore' >/dev/null 2>&1; then S3_PYTHON="$p"; return; fi
    done
    S3_PYTHON=""
}

# A signed request (ListBuckets) as the local identity: proves the gateway
# has loaded s3.json, not only that it listens.
s3_signed_request() {
    "$S3_PYTHON" - "http://127.0.0.1:$S3_PORT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" 2>/dev/null <<'PY'
import sys
import botocore.session
from botocore.config import Config
endpoint, key, secret = sys.argv[1:4]
config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
client = botocore.session.get_session().create_client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id=key, aws_secret_access_key=secret, config=config)
client.list_buckets()
PY
}

s3_ready() {
    s3_healthz || return 1
    [[ -n "$S3_PYTHON" ]] || s3_find_python
    # No botocore yet (the venv may still be being installed): health only.
    [[ -z "$S3_PYTHON" ]] || s3_signed_request
}

s3_ready_or_dead() {
    s3_ready && return 0
    s3_pid >/dev/null || die "weed exited during startup; tail of $SEAWEED_LOG:
$(tail -n 40 "$SEAWEED_LOG" 2>/dev/null)"
    return 1
}

s3_port_free() {  # PORT WHAT: dies if something listens on PORT
    port_open "$1" || return 0
    die "port $1 ($2) is taken by another process $(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' || true)"
}

s3_start() {
    mkdir -p "$SEAWEED_DIR/data" "$SEAWEED_DIR/logs"
    # The master keeps its state per port (data/m<port>) and the volumes
    # belong to the cluster it made first: under another master port, weed
    # would make a new cluster that grows no volumes, and every write hangs.
    local other
    other=$(find "$SEAWEED_DIR/data" -mindepth 1 -maxdepth 1 -type d -name 'm[0-9]*' \
        ! -name "m$S3_MASTER_PORT" -printf '%f\n' | head -n 1)
    [[ -z "$other" ]] || die "the data in ${SEAWEED_DIR#"$ROOT/"}/data is a SeaweedFS cluster whose master used port ${other#m}; run with CHATMESH_S3_MASTER_PORT=${other#m}, or remove ${SEAWEED_DIR#"$ROOT/"} to start empty"
    # Eight ports, four of them named nowhere (the gRPC ones): say which is
    # taken rather than leave it to weed's log.
    local part name port
    for part in "master:$S3_MASTER_PORT" "volume:$S3_VOLUME_PORT" "filer:$S3_FILER_PORT" "S3:$S3_PORT"; do
        name=${part%:*} port=${part#*:}
        s3_port_free "$port" "SeaweedFS $name"
        s3_port_free "$((port + 10000))" "SeaweedFS $name gRPC"
    done
    # Written at every start, so the identity is always the one above.
    printf '{"identities":[{"name":"local","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
        "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$SEAWEED_DIR/s3.json"
    log "s3: starting SeaweedFS on $S3_PORT (log: ${SEAWEED_LOG#"$ROOT/"})"
    : >"$SEAWEED_LOG"
    # Each bucket is a SeaweedFS collection with volumes of its own, and the
    # master grows 7 volumes at a time for a new one: growing one at a time
    # and allowing 100 lets the tests' per-run buckets coexist. Also: no
    # pre-stop pause (no load balancer to drain), no usage reports to
    # SeaweedFS's telemetry server, no Iceberg or Lance listeners (two fewer
    # ports to collide), and a write to a missing bucket fails as on S3.
    # Run from its folder: weed reads master.toml / filer.toml from ".".
    (cd "$SEAWEED_DIR" && export WEED_MASTER_VOLUME_GROWTH_COPY_1=1 &&
        exec setsid nohup "$WEED" -logtostderr=true server -dir="$SEAWEED_DIR/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$S3_MASTER_PORT" -master.telemetry=false \
        -volume.port="$S3_VOLUME_PORT" -volume.max=100 -volume.preStopSeconds=0 \
        -filer -filer.port="$S3_FILER_PORT" \
        -s3 -s3.port="$S3_PORT" -s3.config="$SEAWEED_DIR/s3.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false \
        >"$SEAWEED_LOG" 2>&1 </dev/null) 9>&- &
    local pid=$!
    echo "$pid" >"$SEAWEED_PIDFILE"
    wait_until 10 "weed to launch" eval \
        'grep -qa -- -s3.config= /proc/'"$pid"'/cmdline 2>/dev/null || [[ ! -s /proc/'"$pid"'/cmdline ]]' || true
}

s3_up() {
    if [[ ! -x "$WEED" ]]; then
        log "s3: building weed (SeaweedFS) with deploy/local/tools.sh, about five minutes"
        bash "$SCRIPT_DIR/tools.sh" seaweedfs >&2 || die "could not build weed (needs Go >= 1.26)"
    fi
    s3_find_python
    if s3_pid >/dev/null || port_open "$S3_PORT"; then
        if s3_ready; then
            log "s3: already answering on $S3_PORT, reusing it"
            S3_START_NOTE="reused (already running)"
            return
        fi
        s3_pid >/dev/null ||
            die "something listens on $S3_PORT but is not a working S3 gateway, and not ours"
        log "s3: our weed (pid $(s3_pid)) is still starting, waiting for it"
        wait_until "$S3_TIMEOUT" "the S3 gateway on $S3_PORT" s3_ready_or_dead ||
            die "the S3 gateway is not ready after ${S3_TIMEOUT}s"
        S3_START_NOTE="was already starting"
        return
    fi
    local t0; t0=$(now_ms)
    s3_start
    wait_until "$S3_TIMEOUT" "the S3 gateway on $S3_PORT" s3_ready_or_dead ||
        die "the S3 gateway is not ready after ${S3_TIMEOUT}s; tail of $SEAWEED_LOG:
$(tail -n 40 "$SEAWEED_LOG" 2>/dev/null)"
    S3_START_NOTE="started in $(since "$t0") s"
    log "s3: $S3_START_NOTE"
}

s3_down() {
    local pid
    if pid=$(s3_pid); then
        # TERM stops the parts in turn. It takes ~17 s: the filer waits out a
        # last flush of its metadata change log to the volume server, which
        # has stopped already (the objects and the filer's store are closed
        # cleanly before).
        log "s3: stopping pid $pid"
        kill -TERM "$pid"
        if ! wait_until 60 "weed to exit" eval '! kill -0 '"$pid"' 2>/dev/null'; then
            log "s3: still alive after 60 s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$SEAWEED_PIDFILE"
        log "s3: stopped"
    elif port_open "$S3_PORT"; then
        log "s3: something listens on $S3_PORT but it is not our weed; left alone"
    else
        rm -f "$SEAWEED_PIDFILE"
        log "s3: not running"
    fi
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

print_addresses() {
    printf 'redis      redis://127.0.0.1:%s/0\n' "$REDIS_PORT"
    printf 'postgres   postgresql://chatmesh@127.0.0.1:%s/chatmesh\n' "$PG_PORT"
    printf 'cassandra  127.0.0.1:%s\n' "$CASSANDRA_PORT"
    printf 'cassandra  %s, version %s\n' "$CASSANDRA_START_NOTE" "$CASSANDRA_VERSION"
    printf 'kafka      127.0.0.1:%s\n' "$KAFKA_PORT"
    printf 'kafka      %s\n' "$KAFKA_START_NOTE"
    printf 's3         http://127.0.0.1:%s (access key %s)\n' "$S3_PORT" "$S3_ACCESS_KEY"
    printf 's3         %s\n' "$S3_START_NOTE"
}

# up/down take a lock so two concurrent calls (say, two CI steps) do not both
# start an instance or stop one while the other starts it. The servers we
# start must not inherit the lock's fd 9 (hence the `9>&-` on their command
# lines), or the lock would stay held for as long as they run.
take_lock() {
    mkdir -p "$LOCAL"
    exec 9>"$LOCAL/backing.lock"
    flock -w 900 9 || die "another backing.sh is still running (lock $LOCAL/backing.lock)"
}

cmd_up() {
    take_lock
    redis_up
    pg_up
    cassandra_up
    kafka_up
    s3_up
    print_addresses
}

cmd_down() {
    take_lock
    s3_down
    kafka_down
    cassandra_down
    pg_down
    redis_down
}

cmd_status() {
    local all=0 state
    if command -v redis-cli >/dev/null && redis_ping; then state=up; else state=down; all=1; fi
    printf 'redis      %-5s redis://127.0.0.1:%s/0\n' "$state" "$REDIS_PORT"

    PG_BIN=$(pg_latest_bin)
    if [[ -n "$PG_BIN" ]] && pg_app_ready; then state=up; else state=down; all=1; fi
    printf 'postgres   %-5s postgresql://chatmesh@127.0.0.1:%s/chatmesh\n' "$state" "$PG_PORT"

    cassandra_find_cql_python
    if cassandra_ready; then state=up
    elif cassandra_pid >/dev/null; then state=starting; all=1
    else state=down; all=1; fi
    printf 'cassandra  %-5s 127.0.0.1:%s %s\n' "$state" "$CASSANDRA_PORT" \
        "$([[ $state == up ]] && printf '(%s)' "$CASSANDRA_VERSION")"

    kafka_find_python
    if kafka_ready; then state=up
    elif kafka_pid >/dev/null; then state=starting; all=1
    else state=down; all=1; fi
    printf 'kafka      %-5s 127.0.0.1:%s\n' "$state" "$KAFKA_PORT"

    s3_find_python
    if s3_ready; then state=up
    elif s3_pid >/dev/null; then state=starting; all=1
    else state=down; all=1; fi
    printf 's3         %-5s http://127.0.0.1:%s\n' "$state" "$S3_PORT"
    return "$all"
}

# --multinode: the multi-node stores of deploy/local/multinode.sh instead (they
# run beside the single-node ones above, which it leaves alone).
if [[ "${2:-}" == --multinode ]]; then
    # shellcheck source=deploy/local/multinode.sh
    source "$SCRIPT_DIR/multinode.sh"
    case "${1:-}" in
        up) cluster_cmd_up ;;
        down) cluster_cmd_down ;;
        status) cluster_cmd_status ;;
        *) echo "usage: $0 up|down|status [--multinode]" >&2; exit 2 ;;
    esac
    exit
fi

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status [--multinode]" >&2; exit 2 ;;
esac
