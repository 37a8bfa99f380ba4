"""Send-path benchmark: real clients, through Envoy, against every service as a process.

    .venv/bin/python -m bench.send_path [--pairs 20] [--messages 100] [--rate 10]
    .venv/bin/python -m bench.send_path --rates 200,1000,2000,3000 [--duration 15]

Starts a cluster on free ports over throwaway stores, connects ``pairs``
senders and receivers through Envoy (so they spread over both gateways), and
has each sender send 1:1 messages to its receiver at ``rate`` per second on
a fixed schedule (an open loop, ``bench.loadgen``, from ``--workers``
processes). Measures, per message, the time from the scheduled send to the
sender's ack (persisted in Cassandra) and to the receiver's deliver frame,
and every process's CPU per delivered message. ``--rates`` sweeps total
rates in sequence on one cluster (``rate`` per sender, so rate / ``rate``
pairs, fresh users each step), settling between steps, and names the
highest rate whose ack p99 stayed under 500 ms with nothing lost. Bounded:
a fixed number of messages and deadlines. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.accounting import Accounting
from bench.dialects import ChatmeshTarget, PairSpec
from bench.loadgen import LoadShape, run_load
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.isolation import isolated_stores

PATH = (
    "client -> Envoy -> gateway -> msgsvc (Redis claim, Cassandra write) -> ack; "
    "-> sessionsvc lookup -> Redis publish -> other gateway -> Envoy -> receiver"
)
ACK_P99_LIMIT_MS = 500.0  # issue 14's bar for a sustained rate
TOKEN_TTL_S = 3600


async def _register(pg_dsn: str, users: list[str]) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
        await conn.executemany(
            "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')", [(u,) for u in users]
        )
    finally:
        await conn.close()


def chatmesh_pairs(cluster: LocalCluster, count: int) -> list[PairSpec]:
    """``count`` fresh sender/receiver users, registered with a device each."""
    tag = uuid.uuid4().hex[:6]
    senders = [f"s{tag}{i}" for i in range(count)]
    receivers = [f"r{tag}{i}" for i in range(count)]
    asyncio.run(_register(cluster.config.pg_dsn, senders + receivers))
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())

    def token(user: str) -> str:
        return issuer.mint(Identity(user, "bench"), ttl_s=TOKEN_TTL_S)

    return [
        PairSpec(i, token(s), token(r), r)
        for i, (s, r) in enumerate(zip(senders, receivers, strict=True))
    ]


def run_step(
    cluster: LocalCluster, pairs: int, shape: LoadShape, workers: int, encoding: str
) -> dict[str, Any]:
    """One load step against the cluster, with fresh users."""
    target = ChatmeshTarget(cluster.edge_url, encoding)  # type: ignore[arg-type]
    result = run_load(
        target, chatmesh_pairs(cluster, pairs), shape, workers, Accounting.of(cluster)
    )
    return {"encoding": encoding, **result}


def sustained(step: dict[str, Any]) -> bool:
    p99 = step["ack_latency"].get("p99_ms")
    return p99 is not None and p99 < ACK_P99_LIMIT_MS and step["lost"] == 0


def sweep(
    cluster: LocalCluster,
    rates: list[float],
    shape: LoadShape,
    workers: int,
    encoding: str,
    settle_between_s: float,
) -> dict[str, Any]:
    steps = []
    for n, rate in enumerate(rates):
        if n:
            time.sleep(settle_between_s)  # let compactions, GC and queues calm down
        pairs = max(1, round(rate / shape.rate_per_sender))
        steps.append(run_step(cluster, pairs, shape, workers, encoding))
    kept = [s["offered_per_s"] for s in steps if sustained(s)]
    return {
        "steps": steps,
        "highest_rate_ack_p99_under_500ms": max(kept) if kept else None,
    }


def _stores_shape(config: ClusterConfig) -> dict[str, Any]:
    """What the run's stores were: one node each, or the multi-node ones
    (``deploy/local/backing.sh up --multinode`` and its environment)."""
    return {
        "cassandra_hosts": list(config.cassandra.hosts),
        "cassandra_consistency": config.cassandra.consistency,
        "redis_cluster": config.redis_cluster,
        "kafka_bootstrap": config.kafka_bootstrap,
        "message_topic_replication": int(os.environ.get("CHATMESH_MESSAGE_TOPIC_REPLICATION", "1")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.send_path")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="per sender")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="messages per second per sender (limit 20)"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds of load (instead of --messages)"
    )
    parser.add_argument(
        "--rates", default="", help="sweep these total msg/s in sequence, e.g. 200,1000,2000,3000"
    )
    parser.add_argument("--workers", type=int, default=3, help="load generator processes")
    parser.add_argument("--encoding", choices=["json", "binary"], default="json")
    parser.add_argument("--settle", type=float, default=10.0, help="for stragglers, per step")
    parser.add_argument("--settle-between", type=float, default=15.0, help="between sweep steps")
    parser.add_argument("--logs", default="", help="keep the services' logs in this folder")
    args = parser.parse_args()
    duration = args.duration or args.messages / args.rate
    shape = LoadShape(args.rate, duration, args.settle)
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    result: dict[str, Any] = {"benchmark": "send_path", "path": PATH}
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.logs) if args.logs else Path(tmp)
        config = ClusterConfig.on_free_ports(stores, workdir, "bench")
        result["stores"] = _stores_shape(config)
        with LocalCluster.running(config) as cluster:
            if args.rates:
                rates = [float(r) for r in args.rates.split(",")]
                result |= sweep(
                    cluster, rates, shape, args.workers, args.encoding, args.settle_between
                )
            else:
                result |= run_step(cluster, args.pairs, shape, args.workers, args.encoding)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
