"""Media benchmark: upload-URL issuance per second, and the chat servers'
CPU per media message as the media grows.

    .venv/bin/python -m bench.media [--issuances 3000] [--users 20]
                                    [--messages 40] [--sizes 1024,4194304]

Starts a cluster on free ports over throwaway stores (the object store is
the local SeaweedFS of ``deploy/local/backing.sh``).

1. **Issuance.** ``--users`` connected users ask for ``--issuances``
   upload URLs in all (``create_upload`` frames, closed loop, each user
   keeping a few in flight), through Envoy and a gateway to msgsvc, which
   checks the declaration, counts it against the user's daily quota in
   PostgreSQL and signs the URL. Measured: URLs per second, the latency of
   each, and the CPU each process spent per URL.
2. **CPU per media message.** For each size in ``--sizes``, ``--messages``
   media messages each go the whole way: create the upload, PUT the bytes
   to the store, complete (msgsvc checks the object with a HEAD), send the
   message, the recipient receives it, asks for a download URL and GETs the
   bytes. Measured: CPU seconds per message of the gateways, msgsvc and
   Envoy, and of the object store. If bytes passed through a chat server,
   its CPU per message would grow with the size; it must not.

3. **Object store calls.** The CPU msgsvc's S3 client spends per HEAD (at
   completion) and per URL signed, measured in this process over 200 calls
   each with msgsvc's own client code.

Each process's idle CPU (timers, heartbeats, pollers) is measured for 10 s
first; CPU figures are given in all and above idle, so a phase that takes
longer (bigger media) is not charged for the time it took.

The backing stores are shared; only the object store's CPU is reported.
Bounded; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import uvloop

from bench.accounting import cpu_seconds
from bench.common import latency_summary
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, download_media, upload_media
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.media.objects import s3_object_store

IN_FLIGHT_PER_USER = 4
CHAT_SERVERS = ("gateway-1", "gateway-2", "msgsvc", "envoy")
IDLE_S = 10.0


def _store_cpu_seconds(cluster: LocalCluster) -> float:
    """CPU so far of the local SeaweedFS."""
    return cpu_seconds(cluster).get("object-store", 0.0)


@dataclass(frozen=True, slots=True)
class Idle:
    """What each process spends per second doing nothing for anyone (timers,
    heartbeats, pollers): subtracted, so slow phases are not charged for it."""

    cpu_s_per_s: dict[str, float]

    @classmethod
    async def measure(cls, cluster: LocalCluster, seconds: float = IDLE_S) -> Idle:
        before, started = cpu_seconds(cluster), time.perf_counter()
        await asyncio.sleep(seconds)
        after, elapsed = cpu_seconds(cluster), time.perf_counter() - started
        return cls({n: (after[n] - before.get(n, 0.0)) / elapsed for n in after})


def _spent(
    before: dict[str, float], after: dict[str, float], per: int, idle: Idle, elapsed_s: float
) -> dict[str, dict[str, float]]:
    """CPU milliseconds per operation: all of it, and above idle."""
    spent: dict[str, dict[str, float]] = {}
    for name in sorted(after):
        if name not in CHAT_SERVERS:
            continue
        total = after[name] - before.get(name, 0.0)
        above = total - idle.cpu_s_per_s.get(name, 0.0) * elapsed_s
        spent[name] = {
            "total": round(total / per * 1000, 3),
            "above_idle": round(max(above, 0.0) / per * 1000, 3),
        }
    return spent


async def _users(conn: asyncpg.Connection, tag: str, count: int) -> list[str]:
    users = [f"m{tag}{i:03d}" for i in range(count)]
    await conn.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
    await conn.executemany(
        "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')", [(u,) for u in users]
    )
    return users


async def _open(cluster: LocalCluster, users: list[str]) -> list[Connection]:
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    return [
        await Connection.open(
            cluster.edge_url,
            issuer.mint(Identity(user, "bench"), ttl_s=3600),
            encoding=Encoding.BINARY,
        )
        for user in users
    ]


async def _issuance(
    cluster: LocalCluster,
    conn: asyncpg.Connection,
    tag: str,
    issuances: int,
    users: int,
    idle: Idle,
) -> dict[str, object]:
    connections = await _open(cluster, await _users(conn, tag + "i", users))
    latencies: list[float] = []
    errors: dict[str, int] = {}
    remaining = issuances

    async def worker(connection: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            declared = client_pb2.CreateUploadFrame(
                kind=common_pb2.MESSAGE_KIND_IMAGE,
                content_type="image/jpeg",
                size_bytes=200_000,
                sha256=hashlib.sha256(uuid.uuid4().bytes).digest(),
            )
            started = time.perf_counter()
            reply = await connection.request(
                client_pb2.ClientFrame(create_upload=declared), timeout_s=30
            )
            if reply.WhichOneof("kind") == "upload":
                latencies.append(time.perf_counter() - started)
            else:
                errors[reply.error.reason] = errors.get(reply.error.reason, 0) + 1

    before = cpu_seconds(cluster)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections for _ in range(IN_FLIGHT_PER_USER)))
    finally:
        elapsed = time.perf_counter() - started
        after = cpu_seconds(cluster)
        await asyncio.gather(*(c.close() for c in connections))
    return {
        "issued": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "urls_per_s": round(len(latencies) / elapsed, 1),
        "latency": latency_summary(latencies),
        "cpu_ms_per_url": _spent(before, after, max(len(latencies), 1), idle, elapsed),
    }


async def _per_message(
    cluster: LocalCluster,
    conn: asyncpg.Connection,
    tag: str,
    size: int,
    messages: int,
    idle: Idle,
) -> dict[str, object]:
    sender, recipient = await _open(cluster, await _users(conn, f"{tag}s{size}", 2))
    data = os.urandom(size)
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as http:
        before, store_before = cpu_seconds(cluster), _store_cpu_seconds(cluster)
        phase_started = time.perf_counter()
        for _ in range(messages):
            started = time.perf_counter()
            media = await upload_media(
                sender.request,
                http,
                data,
                kind=common_pb2.MESSAGE_KIND_DOCUMENT,
                content_type="application/octet-stream",
            )
            media.file_name = "bench.bin"
            send = client_pb2.SendFrame(
                client_msg_id=uuid.uuid4().hex,
                to_user_id=recipient.hello.user_id,
                kind=common_pb2.MESSAGE_KIND_DOCUMENT,
                media=media,
            )
            ack = await sender.request(client_pb2.ClientFrame(send=send), timeout_s=30)
            assert ack.WhichOneof("kind") == "ack", ack
            delivered = (await recipient.recv_kind("deliver", timeout_s=30)).deliver.message
            got = await download_media(recipient.request, http, delivered)
            assert got == data
            latencies.append(time.perf_counter() - started)
        after, store_after = cpu_seconds(cluster), _store_cpu_seconds(cluster)
        elapsed = time.perf_counter() - phase_started
    await asyncio.gather(sender.close(), recipient.close())
    return {
        "size_bytes": size,
        "messages": messages,
        "round_trip": latency_summary(latencies),
        "seconds": round(elapsed, 2),
        "cpu_ms_per_message": _spent(before, after, messages, idle, elapsed),
        "object_store_cpu_ms_per_message": round((store_after - store_before) / messages * 1000, 3),
    }


async def _call_costs(cluster: LocalCluster, calls: int = 200) -> dict[str, float]:
    """CPU milliseconds per call of msgsvc's object store client, in this process."""
    async with s3_object_store(cluster.config.object_store) as objects:
        key = "bench/" + uuid.uuid4().hex
        upload = await objects.sign_upload(
            key,
            content_type="image/png",
            size_bytes=3,
            sha256=hashlib.sha256(b"abc").digest(),
            ttl_s=60,
        )
        async with httpx.AsyncClient() as http:
            put = await http.put(upload.url, content=b"abc", headers=upload.headers)
            assert put.status_code == 200, put.text
        costs = {}
        for name, call in (
            ("head", lambda: objects.head(key)),
            ("sign_download", lambda: objects.sign_download(key, ttl_s=60)),
            (
                "sign_upload",
                lambda: objects.sign_upload(
                    key, content_type="image/png", size_bytes=3, sha256=b"s" * 32, ttl_s=60
                ),
            ),
        ):
            await call()  # warm
            started = time.process_time()
            for _ in range(calls):
                await call()
            costs[name] = round((time.process_time() - started) / calls * 1000, 3)
        await objects.delete([key])
    return costs


async def _run(
    cluster: LocalCluster, issuances: int, users: int, messages: int, sizes: list[int]
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        idle = await Idle.measure(cluster)
        issuance = await _issuance(cluster, conn, tag, issuances, users, idle)
        per_message = [await _per_message(cluster, conn, tag, s, messages, idle) for s in sizes]
        calls = await _call_costs(cluster)
    finally:
        await conn.close()
    return {
        "idle_cpu_ms_per_s": {n: round(v * 1000, 2) for n, v in sorted(idle.cpu_s_per_s.items())},
        "issuance": issuance,
        "per_message": per_message,
        "object_store_client_cpu_ms_per_call": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media")
    parser.add_argument("--issuances", type=int, default=3000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=40, help="per size")
    parser.add_argument("--sizes", default="1024,4194304", help="bytes, comma-separated")
    parser.add_argument(
        "--workdir", type=Path, help="keep the cluster's logs here (default: a temporary one)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(stores, args.workdir or Path(tmp), "media")
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(_run(cluster, args.issuances, args.users, args.messages, sizes))
    print(
        json.dumps(
            {
                "benchmark": "media",
                "path": "client -> Envoy -> gateway -> msgsvc (declaration checked, quota in "
                "PostgreSQL, URL signed); bytes: client -> SeaweedFS S3 (pre-signed PUT, "
                "SHA-256 checked by the store) and back (pre-signed GET)",
                "results": results,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
