"""Catch-up under reconnect churn: how often a device is sent what it holds.

    .venv/bin/python -m bench.catch_up_churn [--receivers 4] [--rate 5] \
        [--duration 60] [--reconnect-every 3] [--phases named,plain]

Starts a cluster on free ports over throwaway stores. In each phase, fresh
receivers run the client library's ``Device`` (binary frames, through Envoy)
and drop their connection every ``--reconnect-every`` seconds (staggered);
each reconnect catches up from the device's cursor before going live again.
Meanwhile one sender sends ``--rate`` 1:1 messages per second to each
receiver (open loop) for ``--duration`` seconds. At the end every receiver
syncs once more and must hold every acknowledged message.

A phase is ``named`` (sync page requests name the ids the device holds, the
default) or ``plain`` (they name nothing: every sync re-sends the re-read
window of decision 0008). Reported per phase: message copies received per
acknowledged message, by source (live ``deliver`` frames, ``sync`` pages),
the repeats the device dropped, and CPU milliseconds per message of every
process (``bench.accounting``). Phases run in the order given, so run
``named,plain,named,plain`` to see the spread between runs. Bounded by the
sizes given; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import uvloop

from bench.accounting import Accounting, per_unit
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import ClientOptions, Connection, Device, text_send
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores

CONNECT_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0  # a close handshake gives up after 10 s


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def _churn(device: Device, every_s: float, offset_s: float, stop_at: float) -> int:
    """Drops the device's connection every ``every_s`` until ``stop_at``;
    ``Device.start`` reconnects and catches up from the cursor at once. A
    stop that does not finish in time ends this device's churn (returns -1)
    rather than the whole run: a measured run once hung in one."""
    cuts = 0
    await asyncio.sleep(offset_s)
    while time.monotonic() + every_s < stop_at:
        await asyncio.sleep(every_s)
        stopping = asyncio.ensure_future(device.stop())
        done, _ = await asyncio.wait({stopping}, timeout=STOP_TIMEOUT_S)
        if not done:
            return -1
        device.start()
        cuts += 1
    return cuts


async def _send_all(
    sender: Connection, receivers: list[str], rate: float, duration_s: float
) -> dict[str, set[int]]:
    """Open loop: message i goes out at i / (rate * receivers) seconds; each
    is awaited in its own task so a slow ack does not delay the schedule."""
    acked: dict[str, set[int]] = {r: set() for r in receivers}
    total = int(rate * len(receivers) * duration_s)
    interval = 1 / (rate * len(receivers))

    async def one(to_user: str, i: int) -> None:
        for _ in range(5):  # a resend with the same client_msg_id is stored once
            try:
                reply = await sender.request(
                    text_send(f"churn-{i}", to_user, None, f"message {i} of the churn bench"),
                    timeout_s=10,
                )
            except TimeoutError:
                continue
            if reply.WhichOneof("kind") == "ack":
                acked[to_user].add(reply.ack.message_id)
                return
            await asyncio.sleep(0.2)

    started = time.monotonic()
    tasks = []
    for i in range(total):
        await asyncio.sleep(max(0.0, started + i * interval - time.monotonic()))
        tasks.append(asyncio.create_task(one(receivers[i % len(receivers)], i)))
    await asyncio.gather(*tasks)
    return acked


async def _phase(
    cluster: LocalCluster, issuer: TokenIssuer, names_held: bool, args: argparse.Namespace
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    sender = f"churnsender{tag}"
    receivers = [f"churnreader{tag}{i}" for i in range(args.receivers)]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        await conn.executemany(
            "INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in [sender, *receivers]]
        )
        await conn.executemany(
            "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')",
            [(u,) for u in [sender, *receivers]],
        )
    finally:
        await conn.close()

    def tokens(user: str) -> Callable[[], str]:
        return lambda: issuer.mint(Identity(user, "bench"), ttl_s=3600)

    rng = random.Random(args.seed)
    devices = [
        Device(
            user,
            "bench",
            url=cluster.edge_url,
            token_factory=tokens(user),
            options=ClientOptions(sync_names_held=names_held),
            rng=random.Random(rng.random()),
            encoding=Encoding.BINARY,
        )
        for user in receivers
    ]
    for device in devices:
        device.start()
    sending = await Connection.open(
        cluster.edge_url,
        issuer.mint(Identity(sender, "bench"), ttl_s=3600),
        encoding=Encoding.BINARY,
    )
    accounting = Accounting.of(cluster)
    try:
        if not await _until(lambda: all(d.connected for d in devices), CONNECT_TIMEOUT_S):
            raise RuntimeError("receivers did not all connect")
        before = accounting.sample()
        started = time.monotonic()
        stop_at = started + args.duration
        churns = [
            asyncio.create_task(
                _churn(d, args.reconnect_every, i * args.reconnect_every / len(devices), stop_at)
            )
            for i, d in enumerate(devices)
        ]
        acked = await _send_all(sending, receivers, args.rate, args.duration)
        churned = await asyncio.gather(*churns)
        stuck = [d.user_id for d, n in zip(devices, churned, strict=True) if n < 0]
        devices = [d for d, n in zip(devices, churned, strict=True) if n >= 0]
        cuts = sum(n for n in churned if n >= 0)
        if not await _until(lambda: all(d.connected for d in devices), SETTLE_TIMEOUT_S):
            raise RuntimeError("receivers did not all reconnect")
        finished = await asyncio.wait_for(
            asyncio.gather(*(d.resync() for d in devices)), SETTLE_TIMEOUT_S
        )
        load_s = time.monotonic() - started
        after = accounting.sample()
    finally:
        await sending.close()
        for device in devices:
            await device.stop()
    messages = sum(len(acked[d.user_id]) for d in devices)
    lost = sum(
        1
        for device in devices
        for message_id in acked[device.user_id]
        if not device.protocol.store.has(direct_conversation_id(sender, device.user_id), message_id)
    )
    stats = [d.protocol.stats for d in devices]
    deliver = sum(s.received["deliver"] for s in stats)
    synced = sum(s.received["sync"] for s in stats)
    repeats = sum(s.duplicates_filtered for s in stats)
    return {
        "phase": "named" if names_held else "plain",
        "messages_acked": messages,
        "lost": lost,
        "final_syncs_completed": all(finished),
        "reconnects": cuts,
        "receivers_left_out_stuck_in_stop": stuck,
        "syncs": sum(s.syncs for s in stats),
        "sync_retries": sum(s.sync_retries for s in stats),
        "copies_per_message": {
            "deliver": round(deliver / messages, 3),
            "sync": round(synced / messages, 3),
            "repeats_dropped": round(repeats / messages, 3),
        },
        "copies": {"deliver": deliver, "sync": synced, "repeats_dropped": repeats},
        "anomalies": sum(len(d.protocol.anomalies) for d in devices),
        "load_window_s": round(load_s, 1),
        "cost_per_message": per_unit(before, after, max(messages, 1)),
    }


async def _run(cluster: LocalCluster, args: argparse.Namespace) -> dict[str, object]:
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    phases = [await _phase(cluster, issuer, p == "named", args) for p in args.phases.split(",")]
    return {
        "benchmark": "catch_up_churn",
        "receivers": args.receivers,
        "rate_per_receiver_msg_s": args.rate,
        "duration_s": args.duration,
        "reconnect_every_s": args.reconnect_every,
        "phases": phases,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catch_up_churn")
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="msg/s to each receiver")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--reconnect-every", type=float, default=3.0, help="seconds")
    parser.add_argument("--phases", default="named,plain", help="named / plain, in order")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    if any(p not in ("named", "plain") for p in args.phases.split(",")):
        parser.error("--phases: a comma-separated list of named and plain")
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(stores, Path(tmp), "churn")
        with LocalCluster.running(config) as cluster:
            result = uvloop.run(_run(cluster, args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
