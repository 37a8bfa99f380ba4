"""Catch-up benchmark: a device comes back to a backlog and syncs it over WebSocket.

    .venv/bin/python -m bench.catch_up [--conversations 20] [--per-conversation 100]

Starts a cluster on free ports over throwaway stores. ``conversations``
senders each send ``per-conversation`` messages to one receiver over gRPC
(the receiver is offline). The receiver's device then connects through Envoy
and runs a full sync from an empty cursor: the summary, then every
conversation page by page (up to ``--in-flight`` page requests at once, as an
eager client would), ``--wait`` seconds after the backlog arrived (by default
just past the re-read window). Then a few more messages arrive, and it syncs
again from the cursor it was given: the steady cost of an incremental sync.
With ``--wait 0`` the second sync also re-reads the whole fresh backlog. That
incremental sync runs twice from the same cursor: naming nothing
(``incremental_sync``, every message of the re-read window is sent again),
then naming the ids the device holds from the full sync
(``incremental_sync_named``, only what it lacks is sent). Finally it marks
each conversation read, one receipt at a time. Bounded by the sizes given;
prints one JSON object. Repeats under reconnect churn: ``bench.catch_up_churn``.
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

import asyncpg
import uvloop

from bench.common import latency_summary
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, run_sync
from chatmesh.client.store import MessageStore
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores
from chatmesh.v1 import client_pb2, common_pb2, message_service_pb2, message_service_pb2_grpc
from msgsvc.visibility import SYNC_WINDOW_MS

SEED_CONCURRENCY = 32
LATE_MESSAGES_PER_CONVERSATION = 2


async def _sync(
    device: Connection, cursor: str, in_flight: int, held: MessageStore | None = None
) -> dict[str, object]:
    """One sync by the client library, timed: the summary, and every page."""
    started = time.perf_counter()
    summary_s = 0.0

    async def request(frame: client_pb2.ClientFrame) -> client_pb2.ServerFrame:
        nonlocal summary_s
        reply = await device.request(frame, timeout_s=30)
        if reply.WhichOneof("kind") == "sync_summary":
            summary_s = time.perf_counter() - started
        return reply

    result = await run_sync(
        request,
        cursor,
        pages_in_flight=in_flight,
        held=held.held_ids if held is not None else None,
    )
    total_s = time.perf_counter() - started
    return {
        "conversations": result.outcome.conversations,
        "messages": result.outcome.messages,
        "pages": result.outcome.pages,
        "summary_ms": round(summary_s * 1000, 1),
        "total_ms": round(total_s * 1000, 1),
        "messages_per_s": round(result.outcome.messages / total_s),
        "next_cursor": result.next_cursor,
        "views": list(result.summary.conversations),
        "received": result.messages,
    }


async def _seed(
    stub: message_service_pb2_grpc.MessageServiceStub, senders: list[str], receiver: str, count: int
) -> float:
    slots = asyncio.Semaphore(SEED_CONCURRENCY)

    async def send(sender: str, i: int) -> None:
        async with slots:
            await stub.SendMessage(
                message_service_pb2.SendMessageRequest(
                    sender_user_id=sender,
                    client_msg_id=f"{sender}-{i}-{uuid.uuid4().hex[:6]}",
                    to_user_id=receiver,
                    kind=common_pb2.MESSAGE_KIND_TEXT,
                    body=b"a backlog message of a typical length, about fifty bytes",
                )
            )

    started = time.perf_counter()
    # Each sender's messages in order, senders interleaved.
    for i in range(count):
        await asyncio.gather(*(send(s, i) for s in senders))
    return time.perf_counter() - started


async def _run(
    cluster: LocalCluster, conversations: int, per_conversation: int, in_flight: int, wait_s: float
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    receiver = f"reader{tag}"
    senders = [f"writer{tag}{i}" for i in range(conversations)]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        await conn.executemany(
            "INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in [receiver, *senders]]
        )
        await conn.execute(
            "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')", receiver
        )
    finally:
        await conn.close()
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    token = issuer.mint(Identity(receiver, "bench"), ttl_s=3600)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        seed_s = await _seed(stub, senders, receiver, per_conversation)
        device = await Connection.open(cluster.edge_url, token, encoding=Encoding.BINARY)
        try:
            # The next sync re-reads what was younger than the re-read window
            # when this one ran; waiting past it shows the steady cost.
            await asyncio.sleep(wait_s)
            full = await _sync(device, "", in_flight)
            await _seed(stub, senders, receiver, LATE_MESSAGES_PER_CONVERSATION)
            incremental = await _sync(device, str(full["next_cursor"]), in_flight)
            held = MessageStore()
            for message in full["received"]:  # type: ignore[attr-defined]
                held.add(message)
            named = await _sync(device, str(full["next_cursor"]), in_flight, held)
            marks: list[float] = []
            for view in full["views"]:  # type: ignore[attr-defined]
                started = time.perf_counter()
                reply = await device.request(
                    client_pb2.ClientFrame(
                        mark=client_pb2.MarkFrame(
                            conversation_id=view.conversation_id,
                            kind=common_pb2.RECEIPT_KIND_READ,
                            message_id=view.last_message.message_id,
                        )
                    )
                )
                marks.append(time.perf_counter() - started)
                assert reply.WhichOneof("kind") == "watermark", reply
        finally:
            await device.close()
    seeded = conversations * per_conversation
    for result in (full, incremental, named):
        result.pop("views")
        result.pop("next_cursor")
        result.pop("received")
    return {
        "benchmark": "catch_up",
        "backlog": {"conversations": conversations, "messages": seeded},
        "seed_grpc_send_per_s": round(seeded / seed_s),
        "full_sync": full,
        "incremental_sync": {
            **incremental,
            "new_messages": conversations * LATE_MESSAGES_PER_CONVERSATION,
        },
        "incremental_sync_named": named,
        "backlog_age_at_full_sync_s": wait_s,
        "mark_read": latency_summary(marks),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catch_up")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--per-conversation", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=8, help="page requests at once")
    parser.add_argument(
        "--wait",
        type=float,
        default=SYNC_WINDOW_MS / 1000 + 5,
        help="seconds between the backlog and the first sync (default: past the re-read window)",
    )
    args = parser.parse_args()
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = ClusterConfig.on_free_ports(stores, Path(tmp), "catchup")
        with LocalCluster.running(config) as cluster:
            result = uvloop.run(
                _run(cluster, args.conversations, args.per_conversation, args.in_flight, args.wait)
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
