"""chatmesh beside Centrifugo, the same 1:1 load shape, in one sitting.

    .venv/bin/python -m bench.peers [--rates 200,1000] [--duration 20] [--redis]

Starts a chatmesh cluster (every service a process, clients through Envoy,
as bench.send_path) and a Centrifugo v6 (memory engine; with ``--redis`` a
second one on our Redis), then at each rate runs ``bench.loadgen``'s open
loop against each system in turn, alternating which goes first from one rate
to the next so neither always gets the fresher machine. Prints one JSON
object: each run's figures, and per rate the ratios chatmesh / Centrifugo of
server CPU per delivered message and of the delivery latency percentiles.
Absolute figures drift from day to day on a shared machine; ratios measured
in one sitting are what to compare.

chatmesh persists every message before its ack and Centrifugo persists
nothing (its history is a bounded in-memory stream); the ratio prices that
difference too, and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import centrifugo, send_path
from bench.accounting import Accounting, redis_pid
from bench.dialects import CentrifugoTarget
from bench.loadgen import LoadShape, run_load
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.isolation import isolated_stores

CHATMESH = "chatmesh"
PERCENTILES = ("p50_ms", "p99_ms", "p99.9_ms")


def _centrifugo_step(
    server: centrifugo.Centrifugo, pairs: int, shape: LoadShape, workers: int, redis_url: str
) -> dict[str, Any]:
    pids = {"centrifugo": server.process.pid, "load-generator": os.getpid()}
    if server.engine == "redis" and (pid := redis_pid(redis_url)) is not None:
        pids["redis"] = pid
    target = CentrifugoTarget(server.url)
    return run_load(target, centrifugo.pairs(pairs), shape, workers, Accounting(pids, None))


def _step(
    system: str,
    cluster: LocalCluster,
    peers: dict[str, centrifugo.Centrifugo],
    pairs: int,
    shape: LoadShape,
    workers: int,
    encoding: str,
) -> dict[str, Any]:
    if system == CHATMESH:
        return send_path.run_step(cluster, pairs, shape, workers, encoding)
    return _centrifugo_step(peers[system], pairs, shape, workers, cluster.redis_url)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 2)


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    cost = "cost_per_delivered_message"
    found: dict[str, float | None] = {
        "server_cpu_per_message": _ratio(
            ours[cost]["total"]["cpu_ms"], theirs[cost]["total"]["cpu_ms"]
        )
    }
    for p in PERCENTILES:
        found[f"deliver_{p}"] = _ratio(
            ours["delivery_latency"].get(p), theirs["delivery_latency"].get(p)
        )
    return found


def compare(
    cluster: LocalCluster,
    peers: list[centrifugo.Centrifugo],
    rates: list[float],
    shape: LoadShape,
    workers: int,
    encoding: str,
    settle_between_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    systems = [CHATMESH, *(f"centrifugo-{p.engine}" for p in peers)]
    by_name = {f"centrifugo-{p.engine}": p for p in peers}
    for system in systems if warmup_s > 0 else []:
        # Discarded: a fresh cluster's JIT, caches and connection pools warm up
        # here rather than in the first measured run.
        warm = LoadShape(shape.rate_per_sender, warmup_s, shape.settle_s)
        _step(
            system,
            cluster,
            by_name,
            round(rates[0] / shape.rate_per_sender),
            warm,
            workers,
            encoding,
        )
    runs: list[dict[str, Any]] = []
    for n, rate in enumerate(rates):
        pairs = max(1, round(rate / shape.rate_per_sender))
        order = systems if n % 2 == 0 else systems[::-1]
        for system in order:
            if runs:
                time.sleep(settle_between_s)
            result = _step(system, cluster, by_name, pairs, shape, workers, encoding)
            runs.append({"system": system, "rate": rate, **result})
    ratio_table: dict[str, dict[str, Any]] = {}
    for rate in rates:
        at_rate = {r["system"]: r for r in runs if r["rate"] == rate}
        ratio_table[f"{rate:g}"] = {
            f"chatmesh/{peer}": ratios(at_rate[CHATMESH], at_rate[peer]) for peer in by_name
        }
    summary = {
        f"{r['system']}@{r['rate']:g}": {
            "server_cpu_ms_per_message": r["cost_per_delivered_message"]["total"]["cpu_ms"],
            "loadgen_cpu_ms_per_message": r["cost_per_delivered_message"]
            .get("loadgen", {})
            .get("cpu_ms"),
            "deliver": {p: r["delivery_latency"].get(p) for p in PERCENTILES},
            "ack": {p: r["ack_latency"].get(p) for p in PERCENTILES},
            "lost": r["lost"],
        }
        for r in runs
    }
    return {
        "order": [f"{r['system']}@{r['rate']:g}" for r in runs],
        "summary": summary,
        "ratios": ratio_table,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers")
    parser.add_argument("--rates", default="200,1000", help="total msg/s, in sequence")
    parser.add_argument("--rate", type=float, default=10.0, help="msg/s per sender")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run")
    parser.add_argument("--workers", type=int, default=3, help="load generator processes")
    parser.add_argument("--encoding", choices=["json", "binary"], default="json")
    parser.add_argument("--settle", type=float, default=10.0, help="for stragglers, per run")
    parser.add_argument("--settle-between", type=float, default=10.0, help="between runs")
    parser.add_argument("--warmup", type=float, default=10.0, help="discarded seconds each")
    parser.add_argument("--redis", action="store_true", help="also Centrifugo on our Redis")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    shape = LoadShape(args.rate, args.duration, args.settle)
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = ClusterConfig.on_free_ports(stores, workdir, "bench")
        redis_base = urlsplit(stores.redis_url)
        redis_url = f"redis://{redis_base.hostname}:{redis_base.port}"
        with (
            LocalCluster.running(config) as cluster,
            centrifugo.running(workdir) as memory_engine,
        ):
            peers = [memory_engine]
            if args.redis:
                with centrifugo.running(workdir, redis_url) as redis_engine:
                    peers.append(redis_engine)
                    result = compare(
                        cluster,
                        peers,
                        rates,
                        shape,
                        args.workers,
                        args.encoding,
                        args.settle_between,
                        args.warmup,
                    )
            else:
                result = compare(
                    cluster,
                    peers,
                    rates,
                    shape,
                    args.workers,
                    args.encoding,
                    args.settle_between,
                    args.warmup,
                )
    print(
        json.dumps(
            {
                "benchmark": "peers",
                "shape": "1:1 open loop, pairs x rate_per_sender; latency from the scheduled send",
                "clients": args.encoding,
                "persistence": {"chatmesh": "Cassandra before the ack", "centrifugo": "none"},
                "centrifugo": "v6.9.1",
                **result,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
