"""Idle connections benchmark: what a connected, silent device costs the
gateways and Envoy, in memory and in heartbeat CPU.

    .venv/bin/python -m bench.connections [--connections 2000] [--gateways 2]
        [--edges N] [--workers N] [--hold-s 60] [--settle-s 10]

Starts a cluster on free ports over throwaway stores with ``--gateways``
gateway processes behind ``--edges`` Envoy processes (each Envoy fronts every
gateway; a proxied WebSocket costs Envoy two of its 20,000 files, so by
default one Envoy per 9,000 connections). ``--connections`` registered
devices (users and devices inserted in PostgreSQL, a signed token each)
connect through the Envoys, round robin, from ``--workers`` client processes
(``bench.fleet``: each its own source address and raised fd limit), and
stay connected, silent, for ``--hold-s`` seconds; their WebSocket library
answers the gateways' pings and sends none of its own.

Measured from /proc (``bench.accounting``), per process:

- ``kib_per_connection``: resident memory after the hold minus before anyone
  connected (the cluster idle for ``--settle-s``), divided by the
  connections; summed for the gateways and for the Envoys.
- ``cpu_ms_per_s``: CPU the idle fleet costs per second of the hold (its
  heartbeats, and whatever else runs periodically), starting ``--settle-s``
  after the last connection opened.

Bounded; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from bench.accounting import Accounting, Sample
from bench.common import print_report
from bench.fleet import Fleet, source_address
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import decode_server_frame
from chatmesh.isolation import isolated_stores

DEVICE = "phone"
CONNECTIONS_PER_EDGE = 9_000  # two files each, under Envoy's 20,000
CONNECTIONS_PER_WORKER = 15_000  # one file each, and the client's own memory
CONNECT_CONCURRENCY = 32  # per worker: handshakes in flight
CONNECT_ATTEMPTS = 5
OPEN_TIMEOUT_S = 60.0  # a busy gateway may take long to register a session
TOKEN_TTL_S = 6 * 3600
CALL_MARGIN_S = 120.0


# -- population ----------------------------------------------------------------


async def insert_devices(pg_dsn: str, users: list[str]) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.copy_records_to_table(
            "users", records=[(u,) for u in users], columns=["user_id"]
        )
        await conn.copy_records_to_table(
            "devices", records=[(u, DEVICE) for u in users], columns=["user_id", "device_id"]
        )
    finally:
        await conn.close()


# -- the client side -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdleSpec:
    index: int
    private_key_pem: bytes
    users: list[tuple[str, str]]  # (user, edge URL)


@dataclass
class IdleAgent:
    """Holds its share of connections open, reading nothing but the hello."""

    spec: IdleSpec
    conns: dict[str, ClientConnection] = field(default_factory=dict)

    async def connect(self, _: object) -> dict[str, Any]:
        issuer = TokenIssuer(self.spec.private_key_pem, SystemClock())
        slots = asyncio.Semaphore(CONNECT_CONCURRENCY)
        errors: Counter[str] = Counter()
        source = source_address(self.spec.index)

        async def one(user: str, url: str) -> None:
            token = issuer.mint(Identity(user, DEVICE), ttl_s=TOKEN_TTL_S)
            for attempt in range(CONNECT_ATTEMPTS):
                async with slots:
                    try:
                        ws = await connect(
                            f"{url}?encoding=binary",
                            additional_headers={"Authorization": f"Bearer {token}"},
                            open_timeout=OPEN_TIMEOUT_S,
                            ping_interval=None,  # the gateways' pings are the heartbeat
                            local_addr=(source, 0),
                        )
                        hello = decode_server_frame(await asyncio.wait_for(ws.recv(), 30))
                        if hello.WhichOneof("kind") != "hello":
                            raise RuntimeError(f"first frame {hello.WhichOneof('kind')}")
                        self.conns[user] = ws
                        return
                    except Exception as exc:
                        errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5 * 2**attempt)

        started = time.perf_counter()
        await asyncio.gather(*(one(u, url) for u, url in self.spec.users))
        return {
            "connected": len(self.conns),
            "failed": len(self.spec.users) - len(self.conns),
            "errors": dict(errors),
            "seconds": round(time.perf_counter() - started, 2),
        }

    async def status(self, _: object) -> dict[str, int]:
        states: Counter[str] = Counter()
        for ws in self.conns.values():
            states["open" if ws.state is State.OPEN else f"closed_{ws.close_code}"] += 1
        return dict(states)

    async def stop(self, _: object) -> bool:
        slots = asyncio.Semaphore(256)

        async def close(ws: ClientConnection) -> None:
            async with slots:
                try:
                    await asyncio.wait_for(ws.close(), 10)
                except Exception:
                    pass

        await asyncio.gather(*(close(ws) for ws in self.conns.values()))
        return True


# -- the run -------------------------------------------------------------------


def _group(names: list[str], prefix: str) -> list[str]:
    return [n for n in names if n == prefix or n.startswith(f"{prefix}-")]


def _memory(before: Sample, after: Sample, names: list[str], connections: int) -> dict[str, Any]:
    delta = {n: after.rss_kib.get(n, 0) - before.rss_kib.get(n, 0) for n in names}
    return {
        "kib_per_connection": round(sum(delta.values()) / max(connections, 1), 2),
        "rss_mib_before": round(sum(before.rss_kib.get(n, 0) for n in names) / 1024, 1),
        "rss_mib_after": round(sum(after.rss_kib.get(n, 0) for n in names) / 1024, 1),
        "per_process_kib_delta": delta,
    }


def _cpu_per_s(before: Sample, after: Sample, seconds: float) -> dict[str, float]:
    return {
        name: round((after.cpu_s[name] - before.cpu_s.get(name, 0.0)) / seconds * 1000, 2)
        for name in sorted(after.cpu_s)
    }


async def _run(cluster: LocalCluster, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    users = [f"i{tag}{i:06d}" for i in range(args.connections)]
    await insert_devices(cluster.config.pg_dsn, users)
    edges = cluster.edge_urls
    key = (cluster.keys_dir / "jwt-private.pem").read_bytes()
    shares: list[list[tuple[str, str]]] = [[] for _ in range(args.workers)]
    for i, user in enumerate(users):
        shares[i % args.workers].append((user, edges[i % len(edges)]))
    fleet = Fleet(IdleAgent, [IdleSpec(i, key, share) for i, share in enumerate(shares)])
    try:
        base = Accounting.of(cluster)
        accounting = Accounting({**base.pids, **fleet.pids}, base.postmaster)
        await asyncio.sleep(args.settle_s)
        idle = accounting.sample()
        per_worker = math.ceil(args.connections / args.workers)
        started = time.perf_counter()
        connected = await fleet.call_all("connect", CALL_MARGIN_S + per_worker * 0.1)
        connect_s = time.perf_counter() - started
        await asyncio.sleep(args.settle_s)
        held = accounting.sample()
        hold_started = time.perf_counter()
        await asyncio.sleep(args.hold_s)
        end = accounting.sample()
        hold_s = time.perf_counter() - hold_started
        states = await fleet.call_all("status", CALL_MARGIN_S)
        count = sum(r["connected"] for r in connected)
        names = sorted(end.rss_kib)
        return {
            "connect": {
                "connected": count,
                "failed": sum(r["failed"] for r in connected),
                "errors": dict(sum((Counter(r["errors"]) for r in connected), Counter())),
                "seconds": round(connect_s, 1),
                "per_s": round(count / connect_s, 1),
            },
            "after_hold": dict(sum((Counter(s) for s in states), Counter())),
            "hold_s": round(hold_s, 1),
            "gateways": _memory(idle, end, _group(names, "gateway"), count),
            "envoy": _memory(idle, end, _group(names, "envoy"), count),
            "cpu_ms_per_s_during_hold": _cpu_per_s(held, end, hold_s),
            "rss_mib_at_end": {n: round(end.rss_kib[n] / 1024, 1) for n in names},
        }
    finally:
        try:
            await fleet.stop(CALL_MARGIN_S)
        finally:
            fleet.end()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.connections")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--edges", type=int, help="Envoy processes (default: 1 per 9,000)")
    parser.add_argument("--workers", type=int, help="client processes (default: 1 per 15,000)")
    parser.add_argument("--hold-s", type=float, default=60.0, help="the idle window measured")
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument("--label", default="", help="what this run measures, echoed in the output")
    parser.add_argument("--workdir", type=Path, help="keep the cluster's logs here")
    args = parser.parse_args()
    args.edges = args.edges or math.ceil(args.connections / CONNECTIONS_PER_EDGE)
    args.workers = args.workers or max(2, math.ceil(args.connections / CONNECTIONS_PER_WORKER))
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    started = time.time()
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(
            stores, args.workdir or Path(tmp), "idle", gateways=args.gateways, edges=args.edges
        )
        config = dataclasses.replace(config, log_level="WARNING")
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(_run(cluster, args))
    print_report(
        "connections-idle",
        started,
        {
            "label": args.label,
            "connections": args.connections,
            "gateways": args.gateways,
            "edges": args.edges,
            "client_processes": args.workers,
            "hold_s": args.hold_s,
        },
        results,
    )


if __name__ == "__main__":
    main()
