"""What a trickle of writes costs the local Cassandra, by its own threads.

    .venv/bin/python -m bench.cassandra_trickle [--rates 50,200,1000] [--seconds 15]

Open-loop single-row inserts (the driver's libev reactor, one session) at
each rate into a scratch table of the local store, one rate after the other,
after an unmeasured warm-up at the highest rate (a JVM just started spends
its first minute compiling).
Per rate: Cassandra's CPU per second and per write from /proc, split by
thread pool (the name a thread carries, digits dropped), and the write
latency as the client sees it. The JVM's timer slack is reported too
(``/proc/<pid>/timerslack_ns``): ``deploy/local/backing.sh`` sets it, and
it decides how often an idle-spinning pool wakes up.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cassandra.cluster import Cluster
from cassandra.io.libevreactor import LibevConnection

from bench.common import latency_percentiles, print_report
from chatmesh.devcluster import REPO_ROOT

PID_FILE = REPO_ROOT / ".local" / "cassandra" / "cassandra.pid"
KEYSPACE = "bench_trickle"
_TICKS = os.sysconf("SC_CLK_TCK")


# Cassandra's shared executor pool: its workers take the name of whichever
# stage they serve at the moment, so they are counted together (thread names
# are cut to 15 characters).
SHARED_POOL_STAGES = ("Native-Transpor", "MutationStage", "ReadStage")


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """Per thread of ``pid``: its pool (the name, digits dropped) and its CPU
    seconds so far."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        pool = "".join(c for c in name if not c.isdigit()).rstrip("-:# ")
        if pool.startswith(SHARED_POOL_STAGES):
            pool = "shared executor pool"
        threads[tid] = (pool, (int(fields[11]) + int(fields[12])) / _TICKS)
    return threads


def spent_by_pool(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]
) -> Counter[str]:
    spent: Counter[str] = Counter()
    for tid, (pool, cpu_s) in after.items():
        spent[pool] += cpu_s - before.get(tid, (pool, 0.0))[1]
    return spent


def one_rate(session: Any, insert: Any, pid: int, rate: float, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    futures = []
    before = thread_cpu(pid)
    started = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - started < seconds:
        due = started + sent / rate
        if due > now:
            time.sleep(due - now)
        future = session.execute_async(insert, (f"k{sent % 100}", sent, "hello " * 8))
        sent_at = time.perf_counter()
        future.add_callback(lambda _rows, t=sent_at: latencies.append(time.perf_counter() - t))
        futures.append(future)
        sent += 1
    for future in futures:
        future.result()
    elapsed = time.perf_counter() - started
    after = thread_cpu(pid)
    spent = spent_by_pool(before, after)
    total = sum(spent.values())
    top = sorted(spent.items(), key=lambda item: -item[1])[:5]
    return {
        "rate_per_s": rate,
        "writes": sent,
        "cassandra_cpu_ms_per_s": round(total / elapsed * 1000, 1),
        "cassandra_cpu_ms_per_write": round(total / sent * 1000, 3),
        "by_thread_pool_ms_per_s": {pool: round(s / elapsed * 1000, 1) for pool, s in top},
        "write_latency": latency_percentiles(latencies),
    }


def measure(
    port: int, rates: list[float], seconds: float, warmup_s: float, keyspace: str = KEYSPACE
) -> tuple[list[dict[str, Any]], int]:
    """Per rate, what the writes cost; and the JVM's timer slack."""
    pid = int(PID_FILE.read_text().split()[0])
    cluster = Cluster(["127.0.0.1"], port=port, connection_class=LibevConnection)
    session = cluster.connect()
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {keyspace}.rows (k text, id bigint, body text,"
            " PRIMARY KEY (k, id))"
        )
        insert = session.prepare(f"INSERT INTO {keyspace}.rows (k, id, body) VALUES (?, ?, ?)")
        if warmup_s:
            one_rate(session, insert, pid, max(rates), warmup_s)
        time.sleep(2)  # the schema change's and the warm-up's own work settles
        results = [one_rate(session, insert, pid, rate, seconds) for rate in rates]
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        cluster.shutdown()
    return results, int(Path(f"/proc/{pid}/timerslack_ns").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cassandra_trickle")
    parser.add_argument("--rates", default="50,200,1000")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=30.0,
        help="unmeasured writes at the highest rate first: a JVM just started compiles",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CHATMESH_CASSANDRA_PORT", "19042"))
    )
    args = parser.parse_args()
    started = time.time()
    rates = [float(rate) for rate in args.rates.split(",")]
    results, slack_ns = measure(args.port, rates, args.seconds, args.warmup_s)
    print_report(
        "cassandra_trickle",
        started,
        {
            "seconds_per_rate": args.seconds,
            "warmup_s": args.warmup_s,
            "cassandra_timer_slack_ns": slack_ns,
        },
        results,
    )


if __name__ == "__main__":
    main()
