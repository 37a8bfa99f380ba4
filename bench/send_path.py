"""Send-path benchmark: real clients, through Envoy, against every service as a process.

    .venv/bin/python -m bench.send_path [--pairs 20] [--messages 100] [--rate 10]

Starts a cluster on free ports over throwaway stores, connects ``pairs``
senders and receivers through Envoy (so they spread over both gateways), and
has each sender send ``messages`` 1:1 messages to its receiver at ``rate``
per second (a fixed schedule: an open loop). Measures, per message, the time from the
send to the sender's ack (persisted in Cassandra) and to the receiver's
deliver frame. Bounded: a fixed number of messages and a deadline. Prints one
JSON object.
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
from bench.common import latency_summary
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores
from chatmesh.v1 import client_pb2, common_pb2

DEADLINE_S = 300.0
SETTLE_S = 15.0
BODY = b"benchmark message body of a typical length, about sixty bytes"


@dataclass
class Timings:
    sent_at: dict[str, float] = field(default_factory=dict)
    ack_s: list[float] = field(default_factory=list)
    deliver_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # set on each delivery


class _SenderReplies:
    """A sender's acks and errors, timed as they arrive."""

    def __init__(self, t: Timings) -> None:
        self._t = t
        self.pending: set[str] = set()
        self.settled = asyncio.Event()

    def on_frame(self, frame: client_pb2.ServerFrame) -> None:
        kind = frame.WhichOneof("kind")
        t = self._t
        if kind == "ack":
            t.ack_s.append(time.perf_counter() - t.sent_at[frame.ack.client_msg_id])
            t.acked.add(frame.ack.client_msg_id)
            self.pending.discard(frame.ack.client_msg_id)
        elif kind == "error":
            t.errors[frame.error.reason] = t.errors.get(frame.error.reason, 0) + 1
            self.pending.discard(frame.error.client_msg_id)
        if not self.pending:
            self.settled.set()


async def _sender(
    conn: Connection, replies: _SenderReplies, to_user: str, count: int, rate: float, t: Timings
) -> None:
    """Open loop: sends on a fixed schedule whatever the acks do, so a slow
    server shows up as latency instead of silently lowering the offered load."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client_msg_id = uuid.uuid4().hex
        frame = client_pb2.ClientFrame(
            request_id=client_msg_id[:8],
            send=client_pb2.SendFrame(
                client_msg_id=client_msg_id,
                to_user_id=to_user,
                kind=common_pb2.MESSAGE_KIND_TEXT,
                body=BODY,
            ),
        )
        replies.pending.add(client_msg_id)
        replies.settled.clear()
        t.sent_at[client_msg_id] = time.perf_counter()
        await conn.send(frame)
    await replies.settled.wait()


def _on_delivery(t: Timings) -> Callable[[client_pb2.ServerFrame], None]:
    def on_frame(frame: client_pb2.ServerFrame) -> None:
        if frame.WhichOneof("kind") == "deliver":
            client_msg_id = frame.deliver.message.client_msg_id
            if client_msg_id in t.sent_at and client_msg_id not in t.delivered:
                t.delivered.add(client_msg_id)
                t.deliver_s.append(time.perf_counter() - t.sent_at[client_msg_id])
                t.progress.set()

    return on_frame


async def _run(cluster: LocalCluster, pairs: int, messages: int, rate: float) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    senders = [f"s{tag}{i}" for i in range(pairs)]
    receivers = [f"r{tag}{i}" for i in range(pairs)]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        await conn.executemany(
            "INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in senders + receivers]
        )
        await conn.executemany(
            "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')",
            [(u,) for u in senders + receivers],
        )
    finally:
        await conn.close()
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())

    def token(user: str) -> str:
        return issuer.mint(Identity(user, "bench"), ttl_s=3600)

    t = Timings()
    receiver_conns = [
        await Connection.open(
            cluster.edge_url, token(u), encoding=Encoding.BINARY, dispatch=_on_delivery(t)
        )
        for u in receivers
    ]
    sender_replies = [_SenderReplies(t) for _ in senders]
    sender_conns = [
        await Connection.open(
            cluster.edge_url, token(u), encoding=Encoding.BINARY, dispatch=r.on_frame
        )
        for u, r in zip(senders, sender_replies, strict=True)
    ]
    accounting = Accounting.of(cluster)
    before = accounting.sample()
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(
            *(
                _sender(conn, replies, to, messages, rate, t)
                for conn, replies, to in zip(sender_conns, sender_replies, receivers, strict=True)
            ),
        ),
        DEADLINE_S,
    )
    elapsed = time.perf_counter() - started
    # Deliveries trail the acks; give stragglers a bounded moment.
    settle_until = time.perf_counter() + SETTLE_S
    while not t.acked <= t.delivered and (left := settle_until - time.perf_counter()) > 0:
        t.progress.clear()
        try:
            await asyncio.wait_for(t.progress.wait(), left)
        except TimeoutError:
            break
    after = accounting.sample()
    for conn in receiver_conns + sender_conns:
        await conn.close()
    total = pairs * messages
    return {
        "benchmark": "send_path",
        "path": "client -> Envoy -> gateway -> msgsvc (Redis claim, Cassandra write) -> ack; "
        "-> sessionsvc lookup -> Redis publish -> other gateway -> Envoy -> receiver",
        "pairs": pairs,
        "messages_per_sender": messages,
        "offered_per_s": round(pairs * rate, 1),
        "messages": total,
        "acked": len(t.ack_s),
        "delivered": len(t.deliver_s),
        "acked_not_delivered": len(t.acked - t.delivered),
        "errors": t.errors,
        "elapsed_s": round(elapsed, 3),
        "acked_per_s": round(len(t.ack_s) / elapsed, 1),
        "ack_latency": latency_summary(t.ack_s),
        "delivery_latency": latency_summary(t.deliver_s),
        # Over the load window and the deliveries' settling, per delivered message.
        "cost_per_delivered_message": per_unit(before, after, max(len(t.deliver_s), 1)),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.send_path")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="per sender")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="messages per second per sender (limit 20)"
    )
    parser.add_argument("--logs", default="", help="keep the services' logs in this folder")
    args = parser.parse_args()
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.logs) if args.logs else Path(tmp)
        config = ClusterConfig.on_free_ports(stores, workdir, "bench")
        with LocalCluster.running(config) as cluster:
            result = uvloop.run(_run(cluster, args.pairs, args.messages, args.rate))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
