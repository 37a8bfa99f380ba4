# shellcheck shell=bash
# Local MULTI-NODE backing stores for chatmesh, run beside (never instead of)
# the single-node ones of backing.sh, so that both can run at once:
#
#   deploy/local/backing.sh up --multinode      start what is not running (a node
#                                             that died is started again and
#                                             rejoins), wait until each store
#                                             really answers, print the addresses
#   deploy/local/backing.sh down --multinode    stop them cleanly
#   deploy/local/backing.sh status --multinode  say what is up (exit 0 only if all is)
#
# Sourced by backing.sh, whose helpers (log, die, wait_until, the JDK and jar
# lookups, the Cassandra JVM flags) it uses; not meant to be run by itself.
#
# What runs (fixed addresses: other code depends on them). Every node N of a
# store has an address of its own, 127.0.0.N (all of 127.0.0.0/8 is loopback
# on Linux, no alias needed), so the nodes of a store share port numbers:
#   Cassandra 5.0 ring of 3   node N: CQL 127.0.0.N:29042, storage 27000, no JMX,
#                             data centre datacenter1, rack rack1
#                             (GossipingPropertyFileSnitch), 16 vnodes each
#   Redis Cluster, 3 + 3      primaries 127.0.0.{1,2,3}:26379, replicas
#                             127.0.0.{1,2,3}:26380 (cluster bus: port + 100);
#                             the replica on 127.0.0.N replicates the primary
#                             on 127.0.0.(N+1), wrapping
#   Kafka, 3 KRaft nodes      node N: broker PLAINTEXT://127.0.0.N:29092 and
#                             controller 127.0.0.N:29093 (each node is both)
# State, per node: .local/multinode/cassandra-N/, redis-PORT-N/ and kafka-N/,
# each with its pidfile (cassandra.pid, redis.pid, kafka.pid) and logs. The
# services' settings go to .local/multinode/env (format at its top).
#
# Knobs:
#   CHATMESH_CLUSTER_CASSANDRA_HEAP=768M   -Xms/-Xmx of each Cassandra JVM
#   CHATMESH_CLUSTER_KAFKA_HEAP=384m       -Xms/-Xmx of each Kafka JVM
#   CHATMESH_CLUSTER_TIMEOUT=300           seconds to wait for each store
#
# Needs the project's Python (.venv) with cassandra-driver and confluent-kafka:
# readiness is a real CQL, Kafka and Redis round trip on every node.

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

CL_DIR="$LOCAL/multinode"
CL_ENV="$CL_DIR/env"
CL_NODES=(1 2 3)
CL_TIMEOUT="${CHATMESH_CLUSTER_TIMEOUT:-300}"

CL_CASS_PORT=29042
CL_CASS_STORAGE_PORT=27000
CL_CASS_NUM_TOKENS=16                   # as in cassandra-multinode.yaml
CL_CASS_HEAP="${CHATMESH_CLUSTER_CASSANDRA_HEAP:-768M}"
CL_CASS_DC=datacenter1                  # as in cassandra-rackdc.properties

CL_REDIS_PRIMARY_PORT=26379
CL_REDIS_REPLICA_PORT=26380
# Each node's cluster bus port is its port + this. Redis' default (+ 10000)
# would put the bus on 36379/36380, which other tools' test clusters use as
# client ports.
CL_REDIS_BUS_OFFSET=100
# A primary that stops answering is failed over to its replica after about
# this long (plus an election of well under a second).
CL_REDIS_NODE_TIMEOUT_MS=2000

CL_KAFKA_PORT=29092
CL_KAFKA_CONTROLLER_PORT=29093
CL_KAFKA_HEAP="${CHATMESH_CLUSTER_KAFKA_HEAP:-384m}"

# Set while starting, for the summary lines; CL_WHY says why a readiness
# check last failed, for the error message when we give up waiting.
CL_CASS_NOTE="" CL_REDIS_NOTE="" CL_KAFKA_NOTE="" CL_WHY=""

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

cl_addr() { printf '127.0.0.%s' "$1"; }

# "A:P,A:P,A:P" over the nodes, for PORT; "A,A,A" without one.
cl_addr_list() {
    local n out=()
    for n in "${CL_NODES[@]}"; do out+=("$(cl_addr "$n")${1:+:$1}"); done
    (IFS=,; printf '%s' "${out[*]}")
}

# Like backing.sh's port_open, for any loopback address.
cl_port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# cl_pid PIDFILE MARK: the pid in PIDFILE if that process is alive and its
# command line contains MARK (a pid reused by some other process does not
# count); fails otherwise.
cl_pid() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ -n "$pid" ]] && grep -qaF -- "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s' "$pid"
}

# cl_wait_launch PID MARK: the subshell that execs a JVM needs a moment;
# until it has, cl_pid would not recognise it. (A JVM that failed at once is
# a zombie here: empty cmdline, the loop ends.)
cl_wait_launch() {
    wait_until 10 "the JVM to launch" eval \
        'grep -qaF -- "'"$2"'" /proc/'"$1"'/cmdline 2>/dev/null || [[ ! -s /proc/'"$1"'/cmdline ]]' || true
}

# cl_stop_pids WHAT SECONDS PID...: TERM them all at once (each runs its own
# clean shutdown, in parallel), then wait; KILL what is left after SECONDS.
cl_stop_pids() {
    local what=$1 secs=$2 pid; shift 2
    (($# > 0)) || return 0
    log "$what: stopping pids $*"
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do
        if ! wait_until "$secs" "$what pid $pid to exit" eval '! kill -0 '"$pid"' 2>/dev/null'; then
            log "$what: pid $pid still alive after $secs s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Both drivers are needed: readiness is a real round trip.
cl_find_pythons() {
    cassandra_find_cql_python
    kafka_find_python
    [[ -n "$CQL_PYTHON" && -n "$KAFKA_PYTHON" ]] ||
        die "--multinode needs a Python with cassandra-driver and confluent-kafka (the project's .venv: make install)"
}

# The jars of backing.sh's single-node Cassandra and Kafka. When they must be
# (re)resolved, a `backing.sh up` may be doing the same: take its lock for
# that (fd 8, closed again before any server starts, which must not hold it).
cl_classpaths() {
    if classpath_fresh "$CASS_CONF_SRC/pom.xml" "$CASS_CLASSPATH" "$CASS_CLASSPATH_STAMP" &&
        classpath_fresh "$KAFKA_CONF_SRC/pom.xml" "$KAFKA_CLASSPATH" "$KAFKA_CLASSPATH_STAMP"; then
        return
    fi
    mkdir -p "$LOCAL"
    exec 8>"$LOCAL/backing.lock"
    flock -w 900 8 || die "another backing.sh is still running (lock $LOCAL/backing.lock)"
    cassandra_resolve
    kafka_resolve
    exec 8>&-
}

# Its own lock, not backing.sh's: a single-node `up` (CI) must not wait for
# the multi-node stores, nor they for it.
cl_take_lock() {
    mkdir -p "$CL_DIR"
    exec 9>"$CL_DIR/backing.lock"
    flock -w 900 9 || die "another backing.sh --multinode is still running (lock $CL_DIR/backing.lock)"
}

# ---------------------------------------------------------------------------
# Cassandra: a ring of 3
# ---------------------------------------------------------------------------
# Same jars and JVM flags as the single node (cassandra_jvm_opts), one JVM per
# node. The nodes start at the same time: each has its own tokens (no token
# allocation that needs the others) and every node is a seed, so each goes on
# alone if the others do not answer yet and gossip joins them into one ring a
# moment later. Readiness waits for that ring, not just for open ports.

cl_cass_dir() { printf '%s/cassandra-%s' "$CL_DIR" "$1"; }
cl_cass_pid() { cl_pid "$(cl_cass_dir "$1")/cassandra.pid" "-Dcassandra.storagedir=$(cl_cass_dir "$1")"; }
cl_cass_has_data() { [[ -d "$(cl_cass_dir "$1")/data/system" ]]; }

# Node N's tokens, comma-separated: the ring's 3 x 16 evenly spaced tokens
# dealt out in turn, node N taking the N-th, (N+3)-th, ... Half a step off
# Long.MIN_VALUE (the partitioner's minimum, never a node's token). Summed
# step by step so that no intermediate overflows 64 bits.
cl_cass_tokens() {
    local n=$1 total=$((${#CL_NODES[@]} * CL_CASS_NUM_TOKENS)) step t k out=()
    step=$(((9223372036854775807 / total) * 2))   # ~2^64 / total
    t=$((-9223372036854775807 - 1 + step / 2))
    for ((k = 1; k < n; k++)); do t=$((t + step)); done
    for ((k = 0; k < CL_CASS_NUM_TOKENS; k++)); do
        out+=("$t")
        ((k == CL_CASS_NUM_TOKENS - 1)) || t=$((t + ${#CL_NODES[@]} * step))
    done
    (IFS=,; printf '%s' "${out[*]}")
}

# Rendered at every start: absolute paths differ per clone.
cl_cass_render() {
    local n=$1 dir; dir=$(cl_cass_dir "$1")
    sed -e "s|@DATA_DIR@|$dir|g" \
        -e "s|@ADDRESS@|$(cl_addr "$n")|g" \
        -e "s|@NATIVE_PORT@|$CL_CASS_PORT|g" \
        -e "s|@STORAGE_PORT@|$CL_CASS_STORAGE_PORT|g" \
        -e "s|@SSL_STORAGE_PORT@|$((CL_CASS_STORAGE_PORT + 1))|g" \
        -e "s|@SEEDS@|$(cl_addr_list "$CL_CASS_STORAGE_PORT")|g" \
        -e "s|@INITIAL_TOKENS@|$(cl_cass_tokens "$n")|g" \
        "$CASS_CONF_SRC/cassandra-multinode.yaml" >"$dir/cassandra.yaml"
}

cl_cass_launch() {  # N: starts node N's JVM, does not wait for it
    local n=$1 dir cp; dir=$(cl_cass_dir "$1")
    mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw,logs,triggers}
    cl_cass_render "$n"
    cp=$(cat "$CASS_CLASSPATH")
    cassandra_jvm_opts "$dir" "$CL_CASS_HEAP"
    # No JMX at all (no cassandra.jmx.*.port): nothing here needs nodetool.
    local jvm_opts=(
        "${CASS_JVM_OPTS[@]}"
        "-Dcassandra-rackdc.properties=file://$CASS_CONF_SRC/cassandra-rackdc.properties"
        # --- fast start; the ring is checked by readiness instead ---
        -Dcassandra.skip_wait_for_gossip_to_settle=0
        -Dcassandra.ring_delay_ms=1000   # default 30 s: the shadow round's wait for seeds
        -Dcassandra.superuser_setup_delay_ms=0
    )
    : >"$dir/logs/system.log"  # a fresh log per run: its tail is this run's story
    (cd "$dir" && jvm_timer_slack && exec setsid nohup "$JAVA" "${jvm_opts[@]}" -cp "$cp" \
        org.apache.cassandra.service.CassandraDaemon >"$dir/logs/stdout.log" 2>&1 </dev/null) 9>&- &
    local pid=$!
    echo "$pid" >"$dir/cassandra.pid"
    cl_wait_launch "$pid" "-Dcassandra.storagedir=$dir"
}

# One Python for all three nodes (the driver takes a while to import). On each
# node, alone (whitelisted): data centre, both peers known with their tokens,
# one schema version everywhere; then a write at consistency ALL through each
# node, which only succeeds once that node sees every replica alive (a node
# that was killed is still listed in its peers' system.peers: that alone says
# nothing). The probe keyspace is created once, replicated like the services'.
# Prints the release version, or why it is not ready.
cl_cass_check() {
    "$CQL_PYTHON" - "$CL_CASS_PORT" "$CL_CASS_DC" "${CL_NODES[@]/#/127.0.0.}" 2>/dev/null <<'PY'
import logging, sys
logging.disable(logging.CRITICAL)  # the driver logs connection and protocol noise
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement

port, dc, hosts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
clusters, sessions = [], {}

def not_ready(why):
    print(why)
    sys.exit(1)

try:
    versions, release = set(), ""
    for host in hosts:
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=10)
        cluster = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                          connect_timeout=5, control_connection_timeout=5,
                          schema_metadata_enabled=False, token_metadata_enabled=False)
        clusters.append(cluster)
        try:
            session = sessions[host] = cluster.connect()
        except Exception as exc:
            not_ready(f"{host}: no CQL answer ({type(exc).__name__})")
        local = session.execute("SELECT data_center, schema_version, release_version FROM system.local").one()
        if local.data_center != dc:
            not_ready(f"{host}: in data centre {local.data_center}, not {dc}")
        peers = {str(r.peer): r for r in session.execute("SELECT peer, schema_version, tokens FROM system.peers")}
        joined = sorted(p for p, r in peers.items() if r.tokens)
        if joined != sorted(set(hosts) - {host}):
            not_ready(f"{host}: sees peers {joined or 'none'}")
        versions |= {local.schema_version} | {r.schema_version for r in peers.values()}
        release = local.release_version
    if len(versions) != 1:
        not_ready(f"schema versions still disagree ({len(versions)})")
    first = sessions[hosts[0]]
    if first.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = 'chatmesh_ready'").one() is None:
        first.execute("CREATE KEYSPACE IF NOT EXISTS chatmesh_ready WITH replication = "
                      f"{{'class': 'NetworkTopologyStrategy', '{dc}': {len(hosts)}}}")
        first.execute("CREATE TABLE IF NOT EXISTS chatmesh_ready.probe (node text PRIMARY KEY, at timestamp)")
    write = SimpleStatement("INSERT INTO chatmesh_ready.probe (node, at) VALUES (%s, toTimestamp(now()))",
                            consistency_level=ConsistencyLevel.ALL)
    for host, session in sessions.items():
        try:
            session.execute(write, (host,))
        except Exception as exc:
            not_ready(f"{host}: a write at ALL fails ({type(exc).__name__}): not all replicas alive for it yet")
    print(release)
finally:
    for cluster in clusters:
        cluster.shutdown()
PY
}

CL_CASS_VERSION=""
cl_cass_ready() {
    local n
    for n in "${CL_NODES[@]}"; do
        cl_port_open "$(cl_addr "$n")" "$CL_CASS_PORT" ||
            { CL_WHY="cassandra-$n: CQL port not open yet"; return 1; }
    done
    # (The check's stderr is dropped: the driver's noise. A check that
    # crashed says nothing, hence the default.)
    CL_WHY=$(cl_cass_check) || { CL_WHY=${CL_WHY:-"the CQL check failed"}; return 1; }
    CL_CASS_VERSION=$CL_WHY
}

cl_cass_tail() {  # N: the end of node N's logs, for error messages
    local dir; dir=$(cl_cass_dir "$1")
    printf -- '--- tail of %s:\n%s\n--- %s:\n%s' "$dir/logs/system.log" \
        "$(tail -n 30 "$dir/logs/system.log" 2>/dev/null)" "$dir/logs/stdout.log" \
        "$(tail -n 10 "$dir/logs/stdout.log" 2>/dev/null)"
}

cl_cass_ready_or_dead() {
    cl_cass_ready && return 0
    local n
    for n in "${CL_NODES[@]}"; do
        cl_cass_pid "$n" >/dev/null || die "cassandra-$n exited during startup
$(cl_cass_tail "$n")"
    done
    return 1
}

# Launches the nodes that are not running (the JVMs boot meanwhile; see
# cl_cass_wait). A node that has data but is not running rejoins with its
# saved tokens. Fresh nodes only make sense all together: a fresh node whose
# address the others know from before would be refused by them.
CL_CASS_T0="" CL_CASS_STARTED=()
cl_cass_launch_missing() {
    local n have=0 fresh=()
    for n in "${CL_NODES[@]}"; do
        if cl_cass_has_data "$n"; then have=$((have + 1)); else fresh+=("$n"); fi
    done
    if ((have > 0 && ${#fresh[@]} > 0)); then
        die "cassandra: node(s) ${fresh[*]} have no data but the others do; run \`backing.sh down --multinode\` and remove .local/multinode/cassandra-* to start an empty ring"
    fi
    CL_CASS_T0=$(now_ms) CL_CASS_STARTED=()
    for n in "${CL_NODES[@]}"; do
        if cl_cass_pid "$n" >/dev/null; then continue; fi
        if cl_port_open "$(cl_addr "$n")" "$CL_CASS_PORT"; then
            die "something listens on $(cl_addr "$n"):$CL_CASS_PORT but it is not our cassandra-$n"
        fi
        cl_cass_launch "$n"
        CL_CASS_STARTED+=("$n")
    done
    if ((${#CL_CASS_STARTED[@]} > 0)); then
        log "cassandra: started node(s) ${CL_CASS_STARTED[*]}$( ((have == 0)) && printf ' (a new ring)') (logs: ${CL_DIR#"$ROOT/"}/cassandra-N/logs)"
    fi
}

cl_cass_wait() {
    wait_until "$CL_TIMEOUT" "the Cassandra ring" cl_cass_ready_or_dead ||
        die "the Cassandra ring is not ready after ${CL_TIMEOUT}s: $CL_WHY
$(cl_cass_tail "${CL_CASS_STARTED[0]:-1}")"
    if ((${#CL_CASS_STARTED[@]} > 0)); then
        CL_CASS_NOTE="node(s) ${CL_CASS_STARTED[*]} started, ring ready in $(since "$CL_CASS_T0") s"
    else
        CL_CASS_NOTE="reused (all 3 running)"
    fi
    log "cassandra: $CL_CASS_NOTE, version $CL_CASS_VERSION"
}

cl_cass_pids() {  # pids of the running nodes, one per line
    local n
    for n in "${CL_NODES[@]}"; do cl_cass_pid "$n" && echo; done
}

# ---------------------------------------------------------------------------
# Redis Cluster: 3 primaries, 3 replicas
# ---------------------------------------------------------------------------
# Durable like the single node (AOF, fsync every second, no RDB). A node's
# membership lives in its nodes.conf: a restarted node rejoins by itself (as
# a replica if its replica was promoted meanwhile). The cluster is created
# only from fresh nodes.

# "ADDRESS PORT" of every node, primaries first.
cl_redis_nodes() {
    local n
    for n in "${CL_NODES[@]}"; do echo "$(cl_addr "$n") $CL_REDIS_PRIMARY_PORT"; done
    for n in "${CL_NODES[@]}"; do echo "$(cl_addr "$n") $CL_REDIS_REPLICA_PORT"; done
}
cl_redis_dir() { printf '%s/redis-%s-%s' "$CL_DIR" "$2" "${1##*.}"; }  # ADDRESS PORT
cl_redis_cli() { local a=$1 p=$2; shift 2; redis-cli -h "$a" -p "$p" "$@" 2>/dev/null; }
cl_redis_ping() { [[ "$(cl_redis_cli "$1" "$2" PING)" == PONG ]]; }
cl_redis_info_field() {  # ADDRESS PORT SECTION FIELD
    cl_redis_cli "$1" "$2" INFO "$3" | tr -d '\r' | sed -n "s/^$4://p"
}
cl_redis_cluster_field() {  # ADDRESS PORT FIELD
    cl_redis_cli "$1" "$2" CLUSTER INFO | tr -d '\r' | sed -n "s/^$3://p"
}
# Fresh: knows no other node and serves no slot.
cl_redis_fresh() {
    [[ "$(cl_redis_cluster_field "$1" "$2" cluster_known_nodes)" == 1 &&
        "$(cl_redis_cluster_field "$1" "$2" cluster_slots_assigned)" == 0 ]]
}

cl_redis_start() {  # ADDRESS PORT
    local a=$1 p=$2 dir; dir=$(cl_redis_dir "$1" "$2")
    mkdir -p "$dir"
    # bind-source-addr and cluster-announce-ip: since 7.0 Redis no longer
    # connects out from its bind address, so its cluster bus and replication
    # connections would come from 127.0.0.1 and another node would take that
    # for its address (a MEET from node 2 looked like one from node 1 itself).
    # protected-mode no: a replica connects from its own 127.0.0.N, which
    # protected mode (it only trusts 127.0.0.1) would refuse; every node binds
    # to a loopback address only. cluster-require-full-coverage no: while a
    # primary and its replica are both down, the rest keep serving their slots
    # (the services prefer that); allow-reads-when-down no: no stale reads
    # from a node cut off from the majority. notify-keyspace-events is left
    # unset (empty), as on the single node.
    redis-server --port "$p" --bind "$a" --bind-source-addr "$a" --cluster-announce-ip "$a" \
        --protected-mode no --dir "$dir" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --save "" --appendonly yes --appendfsync everysec \
        --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
        --cluster-port $((p + CL_REDIS_BUS_OFFSET)) \
        --cluster-node-timeout "$CL_REDIS_NODE_TIMEOUT_MS" \
        --cluster-require-full-coverage no --cluster-allow-reads-when-down no 9>&-
}

# The replica on 127.0.0.N follows the primary on 127.0.0.(N+1), wrapping:
# never a primary on its own address. redis-cli --cluster create would pick
# the pairs itself, so the primaries are created alone and each replica is
# added to its chosen primary.
cl_redis_primary_for() {  # REPLICA_ADDRESS: the address of its primary
    local n=${1##*.}
    cl_addr $((n % ${#CL_NODES[@]} + 1))
}

cl_redis_create() {
    local a p fresh_p=0 fresh_r=() n
    for n in "${CL_NODES[@]}"; do
        if cl_redis_fresh "$(cl_addr "$n")" "$CL_REDIS_PRIMARY_PORT"; then fresh_p=$((fresh_p + 1)); fi
        if cl_redis_fresh "$(cl_addr "$n")" "$CL_REDIS_REPLICA_PORT"; then fresh_r+=("$(cl_addr "$n")"); fi
    done
    if ((fresh_p == ${#CL_NODES[@]})); then
        ((${#fresh_r[@]} == ${#CL_NODES[@]})) ||
            die "redis: the primaries are fresh but some replicas belong to an older cluster; run \`backing.sh down --multinode\` and remove .local/multinode/redis-* to start empty"
        log "redis: creating the cluster (primaries on $CL_REDIS_PRIMARY_PORT)"
        # shellcheck disable=SC2046  # one word per address:port
        # Bounded: a cluster that never forms would make it poll forever.
        timeout 120 redis-cli --cluster create $(cl_addr_list "$CL_REDIS_PRIMARY_PORT" | tr ',' ' ') \
            --cluster-replicas 0 --cluster-yes >"$CL_DIR/redis-create.log" 2>&1 ||
            die "redis-cli --cluster create failed: $(tail -n 20 "$CL_DIR/redis-create.log")"
    elif ((fresh_p > 0)); then
        die "redis: some primaries are fresh, others belong to a cluster; run \`backing.sh down --multinode\` and remove .local/multinode/redis-* to start empty"
    fi
    # Replicas not yet in the cluster (all of them after a create; also a
    # create that was interrupted before adding them).
    for a in "${fresh_r[@]}"; do
        p=$(cl_redis_primary_for "$a")
        local id; id=$(cl_redis_cli "$p" "$CL_REDIS_PRIMARY_PORT" CLUSTER MYID)
        log "redis: adding $a:$CL_REDIS_REPLICA_PORT as replica of $p:$CL_REDIS_PRIMARY_PORT"
        timeout 120 redis-cli --cluster add-node "$a:$CL_REDIS_REPLICA_PORT" "$p:$CL_REDIS_PRIMARY_PORT" \
            --cluster-slave --cluster-master-id "$id" >>"$CL_DIR/redis-create.log" 2>&1 ||
            die "redis-cli --cluster add-node failed: $(tail -n 20 "$CL_DIR/redis-create.log")"
    done
}

# cluster_state:ok on every node, and as every node sees it: all 6 nodes, none
# failing, 3 primaries with slots, each with a connected replica on another
# address; every replica's replication link up (its initial sync done).
cl_redis_ready() {
    local a p view why
    while read -r a p; do
        [[ "$(cl_redis_cluster_field "$a" "$p" cluster_state)" == ok ]] ||
            { CL_WHY="redis $a:$p: cluster_state not ok (or no answer)"; return 1; }
        view=$(cl_redis_cli "$a" "$p" CLUSTER NODES) || { CL_WHY="redis $a:$p: no CLUSTER NODES"; return 1; }
        why=$(awk -v want=$((2 * ${#CL_NODES[@]})) -v primaries=${#CL_NODES[@]} '
            { split($2, at, "@"); host = at[1]; sub(/:[0-9]+$/, "", host); known++
              if ($3 ~ /fail|handshake|noaddr/) { print at[1] " is " $3; bad = 1 }
              if ($3 ~ /master/ && NF >= 9) { mhost[$1] = host; maddr[$1] = at[1]; nm++ }
              if ($3 ~ /slave/) { of[$1] = $4; rhost[$1] = host; rlink[$1] = $8 } }
            END {
              if (known != want) { print "knows " known " nodes, not " want; bad = 1 }
              if (nm != primaries) { print nm " primaries serve slots, not " primaries; bad = 1 }
              for (m in mhost) {
                ok = 0
                for (r in of) if (of[r] == m && rlink[r] == "connected" && rhost[r] != mhost[m]) ok++
                if (!ok) { print "primary " maddr[m] " has no connected replica on another address"; bad = 1 }
              }
              exit bad }' <<<"$view") || { CL_WHY="redis as $a:$p sees it: ${why//$'\n'/; }"; return 1; }
        if [[ "$(cl_redis_info_field "$a" "$p" replication role)" == slave &&
            "$(cl_redis_info_field "$a" "$p" replication master_link_status)" != up ]]; then
            CL_WHY="redis $a:$p: replica not in sync with its primary yet"; return 1
        fi
    done < <(cl_redis_nodes)
}

# "PRIMARY > REPLICA, ..." as the cluster sees it now (a failover swaps a
# pair's roles), from the first node that answers.
cl_redis_layout() {
    local a p view
    while read -r a p; do view=$(cl_redis_cli "$a" "$p" CLUSTER NODES) && break; done < <(cl_redis_nodes)
    awk '{ split($2, at, "@"); addr[$1] = at[1]
           if ($3 ~ /master/ && NF >= 9) primary[$1] = 1; else if ($3 ~ /slave/) of[$1] = $4 }
         END { for (m in primary) { line = addr[m]; for (r in of) if (of[r] == m) line = line " > " addr[r]; print line } }' \
        <<<"$view" | sort | paste -sd, - | sed 's/,/, /g'
}

cl_redis_ready_or_dead() {
    cl_redis_ready && return 0
    local a p
    while read -r a p; do
        cl_redis_ping "$a" "$p" || die "redis $a:$p stopped answering; tail of its log:
$(tail -n 20 "$(cl_redis_dir "$a" "$p")/redis.log" 2>/dev/null)"
    done < <(cl_redis_nodes)
    return 1
}

cl_redis_up() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    local a p t0 started=()
    t0=$(now_ms)
    while read -r a p; do
        if cl_redis_ping "$a" "$p"; then
            [[ "$(cl_redis_info_field "$a" "$p" cluster cluster_enabled)" == 1 ]] ||
                die "a Redis without cluster mode answers on $a:$p; not ours"
            continue
        fi
        cl_redis_start "$a" "$p"
        started+=("$a:$p")
    done < <(cl_redis_nodes)
    while read -r a p; do
        wait_until 30 "redis PING on $a:$p" cl_redis_ping "$a" "$p" ||
            die "redis $a:$p did not answer; tail of its log:
$(tail -n 20 "$(cl_redis_dir "$a" "$p")/redis.log" 2>/dev/null)"
    done < <(cl_redis_nodes)
    ((${#started[@]} == 0)) || log "redis: started ${started[*]}"
    cl_redis_create
    wait_until "$CL_TIMEOUT" "the Redis Cluster" cl_redis_ready_or_dead ||
        die "the Redis Cluster is not ready after ${CL_TIMEOUT}s: $CL_WHY"
    if ((${#started[@]} > 0)); then
        CL_REDIS_NOTE="${#started[@]} node(s) started, cluster ready in $(since "$t0") s"
    else
        CL_REDIS_NOTE="reused (all 6 running)"
    fi
    log "redis: $CL_REDIS_NOTE"
}

cl_redis_down() {
    local a p pid pids=()
    # All at once: stopped one by one, a replica would fail over (2 s) to
    # become the primary of a cluster that is going away.
    while read -r a p; do
        cl_redis_ping "$a" "$p" || continue
        pid=$(cl_pid "$(cl_redis_dir "$a" "$p")/redis.pid" "$a:$p") || {
            log "redis: $a:$p answers but is not ours (no live pidfile); left alone"; continue; }
        pids+=("$pid")
        # NOSAVE: no RDB (disabled anyway); the AOF is flushed and fsynced.
        cl_redis_cli "$a" "$p" SHUTDOWN NOSAVE >/dev/null &
    done < <(cl_redis_nodes)
    wait
    for pid in "${pids[@]}"; do
        wait_until 30 "redis pid $pid to exit" eval '! kill -0 '"$pid"' 2>/dev/null' ||
            die "redis pid $pid did not stop"
    done
    log "redis: $( ((${#pids[@]} > 0)) && echo stopped || echo 'not running')"
}

# ---------------------------------------------------------------------------
# Kafka: 3 KRaft nodes, each broker and controller
# ---------------------------------------------------------------------------
# Same jars and JVM flags as the single node. The three storages are
# formatted together, once, with one cluster id and the same list of initial
# controllers (a dynamic quorum of all three); after that a node that is
# restarted rejoins the quorum and the brokers from its own data.

cl_kafka_dir() { printf '%s/kafka-%s' "$CL_DIR" "$1"; }
cl_kafka_pid() { cl_pid "$(cl_kafka_dir "$1")/kafka.pid" "$(cl_kafka_dir "$1")/server.properties"; }
cl_kafka_formatted() { [[ -f "$(cl_kafka_dir "$1")/data/meta.properties" ]]; }
cl_kafka_log_opts() {  # N: sets CL_KAFKA_LOG_OPTS for node N's JVMs
    CL_KAFKA_LOG_OPTS=("-Dkafka.logs.dir=$(cl_kafka_dir "$1")/logs"
        "-Dlog4j2.configurationFile=$KAFKA_CONF_SRC/log4j2.properties")
}

# A Kafka Uuid as StorageTool random-uuid prints it (16 random bytes,
# URL-safe base64, no padding), without starting a JVM for it. Kafka's own
# never begin with "-" (it would read as an option): neither do these.
cl_kafka_uuid() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [[ $id == -* ]] || { printf '%s' "$id"; return; }
    done
}

cl_kafka_render() {  # N
    local n=$1 dir; dir=$(cl_kafka_dir "$1")
    mkdir -p "$dir/data" "$dir/logs"
    sed -e "s|@NODE_ID@|$n|g" \
        -e "s|@ADDRESS@|$(cl_addr "$n")|g" \
        -e "s|@PORT@|$CL_KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$CL_KAFKA_CONTROLLER_PORT|g" \
        -e "s|@BOOTSTRAP_CONTROLLERS@|$(cl_addr_list "$CL_KAFKA_CONTROLLER_PORT")|g" \
        -e "s|@DATA_DIR@|$dir/data|g" \
        "$KAFKA_CONF_SRC/server-multinode.properties" >"$dir/server.properties"
}

# All three storages in parallel (one JVM each, ~2 s).
cl_kafka_format_all() {
    local n cid controllers=() pids=() cp; cp=$(cat "$KAFKA_CLASSPATH")
    cid=$(cl_kafka_uuid)
    for n in "${CL_NODES[@]}"; do
        controllers+=("$n@$(cl_addr "$n"):$CL_KAFKA_CONTROLLER_PORT:$(cl_kafka_uuid)")
    done
    log "kafka: formatting the storage of the 3 nodes (cluster $cid)"
    for n in "${CL_NODES[@]}"; do
        cl_kafka_log_opts "$n"
        "$JAVA" "${CL_KAFKA_LOG_OPTS[@]}" -cp "$cp" kafka.tools.StorageTool format \
            -t "$cid" -c "$(cl_kafka_dir "$n")/server.properties" \
            --initial-controllers "$(IFS=,; printf '%s' "${controllers[*]}")" \
            >"$(cl_kafka_dir "$n")/logs/format.log" 2>&1 9>&- &
        pids+=($!)
    done
    for n in "${!pids[@]}"; do
        wait "${pids[$n]}" || die "kafka storage format of kafka-${CL_NODES[$n]} failed: $(tail -n 20 "$(cl_kafka_dir "${CL_NODES[$n]}")/logs/format.log")"
    done
}

cl_kafka_launch() {  # N: starts node N's JVM, does not wait for it
    local n=$1 dir cp; dir=$(cl_kafka_dir "$1")
    cp=$(cat "$KAFKA_CLASSPATH")
    cl_kafka_log_opts "$n"
    : >"$dir/logs/server.log"
    (cd "$dir" && jvm_timer_slack && exec setsid nohup "$JAVA" "-Xms$CL_KAFKA_HEAP" "-Xmx$CL_KAFKA_HEAP" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true "${CL_KAFKA_LOG_OPTS[@]}" \
        -cp "$cp" kafka.Kafka "$dir/server.properties" \
        >"$dir/logs/stdout.log" 2>&1 </dev/null) 9>&- &
    local pid=$!
    echo "$pid" >"$dir/kafka.pid"
    cl_wait_launch "$pid" "$dir/server.properties"
}

# All 3 brokers registered, no partition short of in-sync replicas (a
# restarted broker has caught up), and a throwaway topic of 3 partitions x 3
# replicas takes a record in each partition from an idempotent acks=all
# producer and gives it back; the topic is then deleted. Prints why not.
cl_kafka_check() {
    "$KAFKA_PYTHON" - "$(cl_addr_list "$CL_KAFKA_PORT")" "${#CL_NODES[@]}" 2>/dev/null <<'PY'
import sys, time, uuid
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, nodes = sys.argv[1], int(sys.argv[2])

def not_ready(why):
    print(why)
    sys.exit(1)

admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
try:
    metadata = admin.list_topics(timeout=10)
except Exception as exc:
    not_ready(f"no metadata ({exc})")
if len(metadata.brokers) != nodes:
    not_ready(f"{len(metadata.brokers)} brokers registered, not {nodes}")
for name, topic in metadata.topics.items():
    for p in topic.partitions.values():
        if p.error is not None or len(p.isrs) < len(p.replicas):
            not_ready(f"{name}[{p.id}] has {len(p.isrs)} of {len(p.replicas)} replicas in sync")

topic = f"_chatmesh_ready_{uuid.uuid4().hex[:12]}"
try:
    admin.create_topics([NewTopic(topic, nodes, nodes)])[topic].result(15)
except Exception as exc:
    not_ready(f"cannot create a topic with {nodes} replicas ({exc})")
try:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 15000})
    sent, delivered = {}, []
    for partition in range(nodes):
        sent[partition] = uuid.uuid4().hex.encode()
        producer.produce(topic, sent[partition], partition=partition,
                         on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(20)
    if len(delivered) != nodes or any(err is not None for err, _ in delivered):
        not_ready(f"idempotent acks=all produce failed: {[str(err) for err, _ in delivered if err]}")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "_chatmesh_ready",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, msg.partition(), msg.offset()) for _, msg in delivered])
    got, deadline = {}, time.monotonic() + 15
    while len(got) < nodes and time.monotonic() < deadline:
        msg = consumer.poll(1)
        if msg is not None and msg.error() is None:
            got[msg.partition()] = msg.value()
    consumer.close()
    if got != sent:
        not_ready(f"read back {len(got)} of {nodes} records")
finally:
    try:
        admin.delete_topics([topic])[topic].result(15)
    except Exception:
        pass
PY
}

cl_kafka_ready() {
    local n
    for n in "${CL_NODES[@]}"; do
        cl_port_open "$(cl_addr "$n")" "$CL_KAFKA_PORT" ||
            { CL_WHY="kafka-$n: port not open yet"; return 1; }
    done
    CL_WHY=$(cl_kafka_check) || { CL_WHY=${CL_WHY:-"the Kafka check failed"}; return 1; }
}

cl_kafka_tail() {  # N
    local dir; dir=$(cl_kafka_dir "$1")
    printf -- '--- tail of %s:\n%s\n--- %s:\n%s' "$dir/logs/server.log" \
        "$(tail -n 30 "$dir/logs/server.log" 2>/dev/null)" "$dir/logs/stdout.log" \
        "$(tail -n 10 "$dir/logs/stdout.log" 2>/dev/null)"
}

cl_kafka_ready_or_dead() {
    cl_kafka_ready && return 0
    local n
    for n in "${CL_NODES[@]}"; do
        cl_kafka_pid "$n" >/dev/null || die "kafka-$n exited during startup
$(cl_kafka_tail "$n")"
    done
    return 1
}

CL_KAFKA_T0="" CL_KAFKA_STARTED=()
cl_kafka_launch_missing() {
    local n formatted=0
    for n in "${CL_NODES[@]}"; do
        cl_kafka_render "$n"
        if cl_kafka_formatted "$n"; then formatted=$((formatted + 1)); fi
    done
    if ((formatted == 0)); then
        cl_kafka_format_all
    elif ((formatted < ${#CL_NODES[@]})); then
        die "kafka: some nodes have no formatted storage, the others do; run \`backing.sh down --multinode\` and remove .local/multinode/kafka-* to start empty"
    fi
    CL_KAFKA_T0=$(now_ms) CL_KAFKA_STARTED=()
    for n in "${CL_NODES[@]}"; do
        if cl_kafka_pid "$n" >/dev/null; then continue; fi
        if cl_port_open "$(cl_addr "$n")" "$CL_KAFKA_PORT" ||
            cl_port_open "$(cl_addr "$n")" "$CL_KAFKA_CONTROLLER_PORT"; then
            die "something listens on $(cl_addr "$n"):$CL_KAFKA_PORT or :$CL_KAFKA_CONTROLLER_PORT but it is not our kafka-$n"
        fi
        cl_kafka_launch "$n"
        CL_KAFKA_STARTED+=("$n")
    done
    if ((${#CL_KAFKA_STARTED[@]} > 0)); then
        log "kafka: started node(s) ${CL_KAFKA_STARTED[*]} (logs: ${CL_DIR#"$ROOT/"}/kafka-N/logs)"
    fi
}

cl_kafka_wait() {
    wait_until "$CL_TIMEOUT" "the Kafka cluster" cl_kafka_ready_or_dead ||
        die "Kafka is not ready after ${CL_TIMEOUT}s: $CL_WHY
$(cl_kafka_tail "${CL_KAFKA_STARTED[0]:-1}")"
    if ((${#CL_KAFKA_STARTED[@]} > 0)); then
        CL_KAFKA_NOTE="node(s) ${CL_KAFKA_STARTED[*]} started, ready in $(since "$CL_KAFKA_T0") s"
    else
        CL_KAFKA_NOTE="reused (all 3 running)"
    fi
    log "kafka: $CL_KAFKA_NOTE"
}

cl_kafka_pids() {  # pids of the running nodes, one per line
    local n
    for n in "${CL_NODES[@]}"; do cl_kafka_pid "$n" && echo; done
}

# ---------------------------------------------------------------------------
# The services' settings
# ---------------------------------------------------------------------------

cl_write_env() {
    local tmp="$CL_ENV.tmp"
    cat >"$tmp" <<EOF
# Settings of the local multi-node stores for the chatmesh services, written
# by \`deploy/local/backing.sh up --multinode\` (deploy/local/multinode.sh).
# Format: lines starting with # are comments; every other line is KEY=VALUE
# with no spaces around =. A value containing spaces is wrapped in double
# quotes and holds no ", \\, \$ or backquote, so both \`source\` (bash) and
# "split at the first =, strip one pair of surrounding double quotes"
# (Python) read the same string.
# Note: backing.sh itself reads CHATMESH_CASSANDRA_PORT as the single-node
# port; do not run \`backing.sh up\` (without --multinode) with this sourced.
CHATMESH_CASSANDRA_HOSTS=$(cl_addr_list)
CHATMESH_CASSANDRA_PORT=$CL_CASS_PORT
CHATMESH_CASSANDRA_CONSISTENCY=LOCAL_QUORUM
CHATMESH_CASSANDRA_REPLICATION="{'class': 'NetworkTopologyStrategy', '$CL_CASS_DC': ${#CL_NODES[@]}}"
CHATMESH_CASSANDRA_LOCAL_DC=$CL_CASS_DC
CHATMESH_REDIS_URL=redis://$(cl_addr 1):$CL_REDIS_PRIMARY_PORT/0
CHATMESH_REDIS_CLUSTER=true
CHATMESH_KAFKA_BOOTSTRAP=$(cl_addr_list "$CL_KAFKA_PORT")
CHATMESH_MESSAGE_TOPIC_REPLICATION=${#CL_NODES[@]}
EOF
    mv "$tmp" "$CL_ENV"
}

cl_print_addresses() {
    printf 'cassandra  %s (CQL port %s, dc %s, RF 3, LOCAL_QUORUM)\n' \
        "$(cl_addr_list)" "$CL_CASS_PORT" "$CL_CASS_DC"
    printf 'cassandra  %s, version %s\n' "$CL_CASS_NOTE" "$CL_CASS_VERSION"
    printf 'redis      redis://%s:%s/0 (Redis Cluster, primary > replica: %s)\n' "$(cl_addr 1)" \
        "$CL_REDIS_PRIMARY_PORT" "$(cl_redis_layout)"
    printf 'redis      %s\n' "$CL_REDIS_NOTE"
    printf 'kafka      %s\n' "$(cl_addr_list "$CL_KAFKA_PORT")"
    printf 'kafka      %s\n' "$CL_KAFKA_NOTE"
    printf 'env        %s\n' "${CL_ENV#"$ROOT/"}"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

# The Cassandra JVMs are the slowest to come up: they are launched first and
# boot while Kafka is started and Redis is created, then each store is
# waited for.
cluster_cmd_up() {
    cl_take_lock
    local t0; t0=$(now_ms)
    cl_find_pythons
    cassandra_find_java
    cl_classpaths
    cl_cass_launch_missing
    cl_kafka_launch_missing
    cl_redis_up
    cl_kafka_wait
    cl_cass_wait
    cl_write_env
    log "multi-node stores ready in $(since "$t0") s"
    cl_print_addresses
}

# Kafka's and Cassandra's JVMs are stopped together (each store's nodes all
# at once: Kafka's controlled shutdowns need a live controller quorum, which
# stopping them one by one would take from the last; TERM runs Cassandra's
# drain), then Redis.
cluster_cmd_down() {
    cl_take_lock
    local n pids
    mapfile -t pids < <(cl_kafka_pids; cl_cass_pids)
    cl_stop_pids "kafka + cassandra" 90 "${pids[@]}"
    for n in "${CL_NODES[@]}"; do rm -f "$(cl_kafka_dir "$n")/kafka.pid" "$(cl_cass_dir "$n")/cassandra.pid"; done
    log "kafka + cassandra: $( ((${#pids[@]} > 0)) && echo stopped || echo 'not running')"
    cl_redis_down
}

# One line per store and why it is not up: up; starting (all processes
# alive, not ready yet); degraded (some alive); down (none).
cl_state() {  # READY LIVE TOTAL
    if (($1 == 0)); then echo up
    elif (($2 == $3)); then echo starting
    elif (($2 > 0)); then echo degraded
    else echo down; fi
}

cluster_cmd_status() {
    local all=0 ready state n live a p
    cassandra_find_cql_python
    kafka_find_python

    live=0; for n in "${CL_NODES[@]}"; do cl_cass_pid "$n" >/dev/null && live=$((live + 1)); done
    CL_WHY="no python cassandra-driver" ready=1
    if [[ -n "$CQL_PYTHON" ]] && cl_cass_ready; then ready=0 CL_WHY=""; fi
    state=$(cl_state "$ready" "$live" 3); [[ $state == up ]] || all=1
    printf 'cassandra  %-9s %s (CQL %s), %s of 3 JVMs alive%s\n' "$state" \
        "$(cl_addr_list)" "$CL_CASS_PORT" "$live" "${CL_WHY:+: $CL_WHY}"

    live=0; while read -r a p; do cl_redis_ping "$a" "$p" && live=$((live + 1)); done < <(cl_redis_nodes)
    CL_WHY="no redis-cli" ready=1
    if command -v redis-cli >/dev/null && cl_redis_ready; then ready=0 CL_WHY=""; fi
    state=$(cl_state "$ready" "$live" 6); [[ $state == up ]] || all=1
    printf 'redis      %-9s redis://%s:%s/0, %s of 6 nodes answer%s\n' "$state" "$(cl_addr 1)" \
        "$CL_REDIS_PRIMARY_PORT" "$live" "${CL_WHY:+: $CL_WHY}"

    live=0; for n in "${CL_NODES[@]}"; do cl_kafka_pid "$n" >/dev/null && live=$((live + 1)); done
    CL_WHY="no python confluent-kafka" ready=1
    if [[ -n "$KAFKA_PYTHON" ]] && cl_kafka_ready; then ready=0 CL_WHY=""; fi
    state=$(cl_state "$ready" "$live" 3); [[ $state == up ]] || all=1
    printf 'kafka      %-9s %s, %s of 3 JVMs alive%s\n' "$state" \
        "$(cl_addr_list "$CL_KAFKA_PORT")" "$live" "${CL_WHY:+: $CL_WHY}"
    return "$all"
}
