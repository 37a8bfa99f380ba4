"""Group benchmark: the sender's ack and the last member's delivery, 1:1 against groups.

    .venv/bin/python -m bench.group_send [--messages 400] [--rate 10] [--sizes 2,50,500]

Starts a cluster on free ports over throwaway stores (one fan-out worker),
connects ``max(sizes)`` users through Envoy (spread over both gateways), and
for each size sends ``--messages`` messages at ``--rate`` per second (an open
loop) from one member's phone: size 2 is a 1:1 conversation (routed inline),
larger sizes are groups (routed by the fan-out worker from the message log).
Measured per message: send to ack (the row is in Cassandra, and for a group
the record is in the log), and send to the moment the *last* other member's
connection received it; per size, the CPU seconds each of the cluster's
processes (and the load generator) spent. Last, the largest group once more
with a 1:1 conversation sending at the same rate at the same time, so that
both acks are measured on an equally busy machine. The backing stores are shared and
not counted. Bounded; prints one JSON object.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import uvloop

from bench.accounting import Accounting, per_unit
from bench.common import latency_percentiles
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, text_send
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores
from chatmesh.v1 import client_pb2, group_service_pb2, group_service_pb2_grpc

CONNECT_CONCURRENCY = 25
SETTLE_S = 20.0  # after the last send, how long stragglers may take


@dataclass
class Tracking:
    """Deliveries per message id, and when each message was sent."""

    expected: int = 0  # members who must receive each message
    sent_at: dict[str, float] = field(default_factory=dict)  # client_msg_id -> time
    ack_s: list[float] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=dict)  # client_msg_id -> members
    last_s: dict[str, float] = field(default_factory=dict)  # client_msg_id -> latency
    errors: dict[str, int] = field(default_factory=dict)
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # a message reached everyone

    def delivered(self, user: str, client_msg_id: str) -> None:
        started = self.sent_at.get(client_msg_id)
        if started is None:
            return
        members = self.seen.setdefault(client_msg_id, set())
        members.add(user)
        if len(members) == self.expected and client_msg_id not in self.last_s:
            self.last_s[client_msg_id] = time.perf_counter() - started
            self.progress.set()


async def _run(
    cluster: LocalCluster, sizes: list[int], messages: int, rate: float
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    users = [f"u{tag}{i:03d}" for i in range(max(sizes))]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        await conn.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
        await conn.executemany(
            "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')",
            [(users[0],), (users[1],)],
        )
    finally:
        await conn.close()
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    tracking = Tracking()
    side = Tracking()  # a 1:1 conversation sending at the same time as a group

    def listener(user: str) -> Callable[[client_pb2.ServerFrame], None]:
        def on_frame(frame: client_pb2.ServerFrame) -> None:
            if frame.WhichOneof("kind") == "deliver":
                for tracker in (tracking, side):
                    tracker.delivered(user, frame.deliver.message.client_msg_id)

        return on_frame

    slots = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(user: str, device: str, dispatch: Callable[..., None] | None) -> Connection:
        async with slots:
            token = issuer.mint(Identity(user, device), ttl_s=3600)
            return await Connection.open(
                cluster.edge_url, token, encoding=Encoding.BINARY, dispatch=dispatch
            )

    members = await asyncio.gather(*(connect(u, "phone", listener(u)) for u in users[1:]))
    sender = await connect(users[0], "bench", None)
    side_sender = await connect(users[1], "bench", None)
    results: dict[str, object] = {}
    accounting = Accounting.of(cluster)
    try:
        async with cluster.channel("msgsvc") as channel:
            groups = group_service_pb2_grpc.GroupServiceStub(channel)
            for size in sizes:
                target: dict[str, str] = {}
                if size == 2:
                    target = {"to_user": users[1]}
                else:
                    created = await groups.CreateGroup(
                        group_service_pb2.CreateGroupRequest(
                            actor_user_id=users[0],
                            group=client_pb2.CreateGroupFrame(
                                client_group_id=f"bench-{size}",
                                title=f"{size} members",
                                member_user_ids=users[1:size],
                            ),
                        )
                    )
                    target = {"conversation": created.group.conversation_id}
                before = accounting.sample()
                outcome = await _scenario(sender, tracking, size - 1, target, messages, rate)
                after = accounting.sample()
                # Per message sent, whatever the group's size: what one more
                # message into a group of this size costs the machine.
                outcome["cost_per_message"] = per_unit(before, after, max(messages, 1))
                results[f"members_{size}"] = outcome
                if size == max(sizes) and size > 2:
                    # The same group again, with a 1:1 conversation sending
                    # alongside: both acks measured on an equally busy machine.
                    group_side, one_to_one = await asyncio.gather(
                        _scenario(sender, tracking, size - 1, target, messages, rate),
                        _scenario(side_sender, side, 1, {"to_user": users[2]}, messages, rate),
                    )
                    results[f"side_by_side_{size}"] = {
                        f"members_{size}": group_side,
                        "members_2": one_to_one,
                    }
    finally:
        await asyncio.gather(*(c.close() for c in [*members, sender, side_sender]))
    return results


async def _scenario(
    sender: Connection,
    tracking: Tracking,
    recipients: int,
    target: dict[str, str],
    messages: int,
    rate: float,
) -> dict[str, object]:
    tracking.expected = recipients
    tracking.sent_at.clear()
    tracking.seen.clear()
    tracking.last_s.clear()
    tracking.ack_s.clear()
    tracking.errors.clear()

    async def send(client_msg_id: str) -> None:
        frame = text_send(
            client_msg_id, target.get("to_user"), target.get("conversation"), "benchmark body"
        )
        tracking.sent_at[client_msg_id] = time.perf_counter()
        reply = await sender.request(frame, timeout_s=30)
        if reply.WhichOneof("kind") == "ack":
            tracking.ack_s.append(time.perf_counter() - tracking.sent_at[client_msg_id])
        else:
            reason = reply.error.reason
            tracking.errors[reason] = tracking.errors.get(reason, 0) + 1

    start = time.perf_counter()
    tasks = []
    for i in range(messages):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(uuid.uuid4().hex)))
    await asyncio.gather(*tasks)
    settle_until = time.perf_counter() + SETTLE_S
    while len(tracking.last_s) < len(tracking.ack_s):
        left = settle_until - time.perf_counter()
        if left <= 0:
            break
        tracking.progress.clear()
        try:
            await asyncio.wait_for(tracking.progress.wait(), left)
        except TimeoutError:
            break
    return {
        "recipients": recipients,
        "messages": messages,
        "rate_per_s": rate,
        "acked": len(tracking.ack_s),
        "reached_every_member": len(tracking.last_s),
        "errors": dict(tracking.errors),
        "ack_latency": latency_percentiles(tracking.ack_s),
        "last_member_latency": latency_percentiles(list(tracking.last_s.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.group_send")
    parser.add_argument("--messages", type=int, default=400, help="per conversation size")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--sizes", default="2,50,500", help="members, the sender included")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(stores, Path(tmp), "groups")
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(_run(cluster, sizes, args.messages, args.rate))
    print(
        json.dumps(
            {
                "benchmark": "group_send",
                "path": "sender -> Envoy -> gateway -> msgsvc (claim, Cassandra write, for a "
                "group the Kafka append) -> ack; 1:1 routed inline, groups by a fan-out "
                "worker -> sessionsvc -> Redis -> gateways -> Envoy -> members",
                "fanout_workers": 1,
                "results": results,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
