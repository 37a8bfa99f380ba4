"""Reconnect storm: gateways are SIGKILLed under connected devices that each
have a message arriving while they are cut off; how long until every one
has reconnected and holds its message, and whether any acked message is lost.

    .venv/bin/python -m bench.reconnect_storm [--receivers 10000] [--gateways 2]
        [--kill 1] [--per-sender 50] [--edges N] [--workers 4] [--deadline-s 180]

Starts a cluster on free ports over throwaway stores (``--gateways`` behind
``--edges`` Envoys, one per 9,000 devices by default). ``--receivers``
devices and one sender device per ``--per-sender`` receivers run the client
library (``chatmesh.client.Device``: reconnect with its jittered backoff,
sync on every connect) in ``--workers`` client processes, binary frames,
spread over the Envoys. Once all are connected and caught up, the first
``--kill`` gateways are SIGKILLed (t0) and, at the same moment, every sender
sends one 1:1 message to each of its receivers; the killed gateways are
restarted ``--restart-after-s`` later. A receiver is *caught up* when it
holds its message (live or from a sync); one that was on a killed gateway
must also have reconnected.

Reported: ``all_caught_up_s`` (t0 to the last receiver caught up), the
distribution of t0 to caught up for the receivers cut off and for the
others, t0 to the first completed sync after reconnecting, ``lost`` (messages
acked to their sender that their receiver never held by the deadline: must
be 0), sends never acked, and the CPU each process spent over the storm
(``bench.accounting``). Bounded by ``--deadline-s``; prints one JSON object.
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

import uvloop

from bench.accounting import Accounting, per_unit
from bench.common import latency_summary, print_report
from bench.connections import CONNECTIONS_PER_EDGE, DEVICE, insert_devices
from bench.fleet import Fleet
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Device, Event, MessageAdded, SyncFinished
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores

CALL_MARGIN_S = 120.0
CONNECT_TIMEOUT_S = 600.0
POLL_S = 0.5
START_BATCH = 25  # devices started at once per worker, then a pause:
START_PAUSE_S = 0.25  # 100 a second per worker
TOKEN_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class StormSpec:
    private_key_pem: bytes
    receivers: list[tuple[str, str]]  # (user, edge URL)
    senders: list[tuple[str, str, list[str]]]  # (user, edge URL, its receivers)


@dataclass
class _Receiver:
    device: Device
    expected: set[tuple[str, str]] = field(default_factory=set)  # (sender, client_msg_id)
    held_at: dict[tuple[str, str], float] = field(default_factory=dict)
    synced_at: list[float] = field(default_factory=list)
    gateway_before: str | None = None
    disconnects_before: int = 0


class StormAgent:
    """Runs its share of receivers and senders as client-library devices."""

    def __init__(self, spec: StormSpec) -> None:
        self._spec = spec
        self._receivers: dict[str, _Receiver] = {}
        self._senders: dict[str, tuple[Device, list[str]]] = {}
        self._acked: dict[tuple[str, str], str] = {}  # (sender, client_msg_id) -> receiver
        self._sent: dict[tuple[str, str], str] = {}

    def _device(self, user: str, url: str, on_event: Any) -> Device:
        issuer = TokenIssuer(self._spec.private_key_pem, SystemClock())
        return Device(
            user,
            DEVICE,
            url=url,
            token_factory=lambda: issuer.mint(Identity(user, DEVICE), ttl_s=TOKEN_TTL_S),
            encoding=Encoding.BINARY,
            on_event=on_event,
        )

    def _on_receiver_event(self, user: str) -> Any:
        def on_event(event: Event) -> None:
            receiver = self._receivers[user]
            if isinstance(event, MessageAdded):
                key = (event.message.sender_user_id, event.message.client_msg_id)
                receiver.held_at.setdefault(key, time.time())
            elif isinstance(event, SyncFinished) and event.outcome.completed:
                receiver.synced_at.append(time.time())

        return on_event

    def _on_sender_event(self, user: str) -> Any:
        def on_event(event: Event) -> None:
            if isinstance(event, MessageAdded) and event.source == "ack":
                key = (user, event.message.client_msg_id)
                if key in self._sent:
                    self._acked[key] = self._sent[key]

        return on_event

    async def start(self, _: object) -> dict[str, Any]:
        for user, url in self._spec.receivers:
            device = self._device(user, url, self._on_receiver_event(user))
            self._receivers[user] = _Receiver(device)
        for user, url, receivers in self._spec.senders:
            self._senders[user] = (self._device(user, url, self._on_sender_event(user)), receivers)
        devices = [r.device for r in self._receivers.values()]
        devices += [d for d, _ in self._senders.values()]
        started = time.perf_counter()
        # Connected at a steady pace, so that the setup is not a storm of its own.
        for i, device in enumerate(devices):
            device.start()
            if i % START_BATCH == START_BATCH - 1:
                await asyncio.sleep(START_PAUSE_S)
        for _ in range(int(CONNECT_TIMEOUT_S / POLL_S)):  # polled: devices have no event
            if all(d.connected for d in devices):
                break
            await asyncio.sleep(POLL_S)
        return {
            "devices": len(devices),
            "connected": sum(d.connected for d in devices),
            "seconds": round(time.perf_counter() - started, 1),
        }

    async def gateways(self, _: object) -> dict[str, str | None]:
        """Where each receiver is connected now; remembered for the storm."""
        for receiver in self._receivers.values():
            receiver.gateway_before = receiver.device.gateway_id
            receiver.disconnects_before = receiver.device.disconnects
        return {user: r.gateway_before for user, r in self._receivers.items()}

    async def send(self, _: object) -> int:
        for user, (device, receivers) in self._senders.items():
            for receiver in receivers:
                client_msg_id = device.send_text(to_user=receiver, body=f"storm to {receiver}")
                self._sent[(user, client_msg_id)] = receiver
                self._receivers_expect(receiver, (user, client_msg_id))
        return len(self._sent)

    def _receivers_expect(self, receiver: str, key: tuple[str, str]) -> None:
        # Senders and their receivers share a worker (see plan).
        self._receivers[receiver].expected.add(key)

    def _caught_up(self, receiver: _Receiver) -> bool:
        reconnected = (
            receiver.device.disconnects == receiver.disconnects_before or receiver.device.connected
        )
        return reconnected and receiver.expected <= receiver.held_at.keys()

    async def progress(self, _: object) -> dict[str, int]:
        return {
            "caught_up": sum(self._caught_up(r) for r in self._receivers.values()),
            "receivers": len(self._receivers),
            "acked": len(self._acked),
            "sent": len(self._sent),
        }

    async def collect(self, t0: float) -> dict[str, Any]:
        rows = []
        for user, r in self._receivers.items():
            cut = r.device.disconnects > r.disconnects_before
            held = [r.held_at[k] for k in r.expected if k in r.held_at]
            resynced = [t for t in r.synced_at if t > t0]
            rows.append(
                {
                    "cut": cut,
                    "held_s": max(held) - t0 if len(held) == len(r.expected) and held else None,
                    "first_sync_s": min(resynced) - t0 if cut and resynced else None,
                    "caught_up": self._caught_up(r),
                    "user": user,
                }
            )
        lost = [
            k for k, receiver in self._acked.items() if k not in self._receivers[receiver].held_at
        ]
        unacked_by = Counter(
            user for key in self._sent.keys() - self._acked.keys() for user in [key[0]]
        )
        return {
            "rows": rows,
            "sent": len(self._sent),
            "acked": len(self._acked),
            "lost": len(lost),
            # Why a sender's messages were not acked by the deadline.
            "senders_with_unacked": [
                {
                    "user": user,
                    "unacked": unacked,
                    "connected": device.connected,
                    "disconnects": device.disconnects,
                    "connect_failure_kinds": dict(device.connect_failure_kinds),
                }
                for user, unacked in unacked_by.most_common(10)
                for device in [self._senders[user][0]]
            ],
            "connect_failures": sum(r.device.connect_failures for r in self._receivers.values()),
            "sync_retries": sum(
                r.device.protocol.stats.sync_retries for r in self._receivers.values()
            ),
            "connect_failure_kinds": dict(
                sum((r.device.connect_failure_kinds for r in self._receivers.values()), Counter())
            ),
            "device_errors": [e for r in self._receivers.values() for e in r.device.errors][:10],
        }

    async def stop(self, _: object) -> bool:
        devices = [r.device for r in self._receivers.values()]
        devices += [d for d, _ in self._senders.values()]
        await asyncio.gather(*(d.stop() for d in devices), return_exceptions=True)
        return True


def plan(
    tag: str, receivers: int, per_sender: int, workers: int, edges: list[str], key: bytes
) -> tuple[list[str], list[StormSpec]]:
    """Users and each worker's share: a sender and its receivers in the same
    worker, so a worker knows what each of its receivers expects."""
    users: list[str] = []
    specs: list[StormSpec] = []
    senders = math.ceil(receivers / per_sender)
    shares: list[tuple[list[tuple[str, str]], list[tuple[str, str, list[str]]]]] = [
        ([], []) for _ in range(workers)
    ]
    connection = 0
    for s in range(senders):
        sender = f"s{tag}{s:05d}"
        mine = [
            f"r{tag}{r:06d}" for r in range(s * per_sender, min(receivers, (s + 1) * per_sender))
        ]
        share = shares[s % workers]
        share[1].append((sender, edges[connection % len(edges)], mine))
        connection += 1
        for receiver in mine:
            share[0].append((receiver, edges[connection % len(edges)]))
            connection += 1
        users += [sender, *mine]
    for rs, ss in shares:
        specs.append(StormSpec(key, rs, ss))
    return users, specs


async def _run(cluster: LocalCluster, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    key = (cluster.keys_dir / "jwt-private.pem").read_bytes()
    users, specs = plan(tag, args.receivers, args.per_sender, args.workers, cluster.edge_urls, key)
    await insert_devices(cluster.config.pg_dsn, users)
    fleet = Fleet(StormAgent, specs)
    results: dict[str, Any] = {}
    try:
        base = Accounting.of(cluster)
        accounting = Accounting({**base.pids, **fleet.pids}, base.postmaster)
        started = await fleet.call_all("start", CONNECT_TIMEOUT_S + CALL_MARGIN_S)
        results["connect"] = {
            "devices": sum(r["devices"] for r in started),
            "connected": sum(r["connected"] for r in started),
            "seconds": max(r["seconds"] for r in started),
        }
        placed = await fleet.call_all("gateways", CALL_MARGIN_S)
        killed = [f"gateway-{i}" for i in range(1, args.kill + 1)]
        killed_ids = {cluster.gateway_id(i) for i in range(1, args.kill + 1)}
        on_killed = sum(1 for p in placed for g in p.values() if g in killed_ids)
        before = accounting.sample()
        t0 = time.time()
        for name in killed:
            cluster.processes[name].kill()
        sent = sum(await fleet.call_all("send", CALL_MARGIN_S))

        async def restart() -> float:
            await asyncio.sleep(args.restart_after_s)
            for name in killed:
                await asyncio.to_thread(cluster.restart, name)
            return time.time() - t0

        restarting = asyncio.get_running_loop().create_task(restart())
        deadline = t0 + args.deadline_s
        progress: list[dict[str, int]] = []
        while time.time() < deadline:
            await asyncio.sleep(POLL_S)
            progress = await fleet.call_all("progress", CALL_MARGIN_S)
            if sum(p["caught_up"] for p in progress) == args.receivers:
                break
        all_caught_up_s = time.time() - t0
        after = accounting.sample()
        restarted_s = await restarting
        collected = await fleet.call_all("collect", CALL_MARGIN_S, [t0] * len(specs))
        rows = [row for c in collected for row in c["rows"]]
        caught = sum(1 for r in rows if r["caught_up"])
        cut = [r for r in rows if r["cut"]]
        kept = [r for r in rows if not r["cut"]]
        results["storm"] = {
            "killed": killed,
            "receivers_on_killed_gateways": on_killed,
            "receivers_cut": len(cut),
            "messages_sent": sent,
            "messages_acked": sum(c["acked"] for c in collected),
            "lost": sum(c["lost"] for c in collected),
            "receivers_caught_up": caught,
            "all_caught_up": caught == len(rows),
            "all_caught_up_s": round(all_caught_up_s, 2) if caught == len(rows) else None,
            "restarted_after_s": round(restarted_s, 2),
            "cut_t0_to_caught_up": {
                "samples": sum(1 for r in cut if r["held_s"] is not None),
                **latency_summary([r["held_s"] for r in cut if r["held_s"] is not None]),
            },
            "cut_t0_to_first_sync": {
                "samples": sum(1 for r in cut if r["first_sync_s"] is not None),
                **latency_summary(
                    [r["first_sync_s"] for r in cut if r["first_sync_s"] is not None]
                ),
            },
            "kept_t0_to_message": {
                "samples": sum(1 for r in kept if r["held_s"] is not None),
                **latency_summary([r["held_s"] for r in kept if r["held_s"] is not None]),
            },
            "senders_with_unacked": [u for c in collected for u in c["senders_with_unacked"]][:10],
            "connect_failures": sum(c["connect_failures"] for c in collected),
            "sync_retries": sum(c["sync_retries"] for c in collected),
            "connect_failure_kinds": dict(
                sum((Counter(c["connect_failure_kinds"]) for c in collected), Counter())
            ),
            "device_errors": [e for c in collected for e in c["device_errors"]][:10],
            "not_caught_up_sample": [r["user"] for r in rows if not r["caught_up"]][:10],
            "cost_per_receiver": per_unit(before, after, max(len(rows), 1)),
        }
    finally:
        try:
            await fleet.stop(CALL_MARGIN_S)
        finally:
            fleet.end()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reconnect_storm")
    parser.add_argument("--receivers", type=int, default=10_000)
    parser.add_argument("--per-sender", type=int, default=50, help="receivers per sender (<= 60)")
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--kill", type=int, default=1, help="gateways SIGKILLed")
    parser.add_argument("--restart-after-s", type=float, default=1.0)
    parser.add_argument("--edges", type=int, help="Envoy processes (default: 1 per 9,000)")
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--deadline-s", type=float, default=180.0)
    parser.add_argument("--label", default="")
    parser.add_argument("--workdir", type=Path, help="keep the cluster's logs here")
    args = parser.parse_args()
    if not 0 < args.kill < args.gateways:
        parser.error("--kill must leave at least one gateway running")
    devices = args.receivers + math.ceil(args.receivers / args.per_sender)
    args.edges = args.edges or math.ceil(devices / CONNECTIONS_PER_EDGE)
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    started = time.time()
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(
            stores, args.workdir or Path(tmp), "storm", gateways=args.gateways, edges=args.edges
        )
        config = dataclasses.replace(config, log_level="WARNING")
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(_run(cluster, args))
    print_report(
        "reconnect-storm",
        started,
        {
            "label": args.label,
            "receivers": args.receivers,
            "per_sender": args.per_sender,
            "gateways": args.gateways,
            "killed": args.kill,
            "edges": args.edges,
            "client_processes": args.workers,
        },
        results,
    )


if __name__ == "__main__":
    main()
