"""Push benchmark: send to push request at the provider, and pushes per second.

    .venv/bin/python -m bench.push [--window-ms 2000] [--messages 1000] [--rate 50]
                                   [--recipients 400] [--backlog 5000]

Starts a cluster on free ports over throwaway stores, with its local push
providers (FCM, APNs and Web Push, round robin over the recipients' phones).

1. **Latency.** One connected sender sends ``--messages`` 1:1 messages at
   ``--rate`` per second (open loop) to ``--recipients`` offline users in
   turn, each with a phone registered for pushes. Measured per message: from
   its send (client clock) to the arrival of the push naming it at the local
   provider, through Envoy, a gateway, msgsvc (stored, acked, routed, its
   push job appended), the job topic, its window (``--window-ms``, the coalescing delay
   every push waits by design) and the provider's HTTP exchange.
2. **Throughput.** ``--backlog`` jobs, each for another 1:1 conversation and
   device, are appended to the job topic at once (as routers would during a
   burst); measured: the rate the pushes reach the providers, and the CPU
   notifysvc and the local providers spent per push.

The backing stores are shared and not counted. Bounded; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop
from confluent_kafka import Producer

from bench.accounting import cpu_seconds
from bench.common import latency_summary
from chatmesh import snowflake
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, text_send
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from chatmesh.isolation import isolated_stores
from chatmesh.kafka_io import topic_name
from chatmesh.push_jobs import PushJob, PushRecipient, encode
from notifysvc.providers.local.keys import APNS_TOPIC

SETTLE_S = 30.0  # after the last send, how long pushes may take to arrive
# A sender's share of the rate: well inside a user's write budget (20/s).
RATE_PER_SENDER = 10.0
BENCH_WORKER_ID = 1023  # message ids of the backlog's jobs: apart from msgsvc's


async def _register_phones(
    conn: asyncpg.Connection, http: httpx.AsyncClient, users: list[str]
) -> dict[str, str]:
    """Each user's phone on one of the three providers in turn; returns the
    key each provider files its pushes under, per user."""
    await conn.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
    rows: list[tuple[str, str, str, str | None]] = []
    keys: dict[str, str] = {}
    for i, user in enumerate(users):
        kind = i % 3
        if kind == 0:
            token = uuid.uuid4().hex + uuid.uuid4().hex
            rows.append((user, "fcm", token, None))
            keys[user] = token
        elif kind == 1:
            token = uuid.uuid4().hex + uuid.uuid4().hex
            params = {"topic": APNS_TOPIC, "environment": "sandbox"}
            rows.append((user, "apns", token, json.dumps(params)))
            keys[user] = token
        else:
            subscription = (await http.post("/webpush/subscriptions")).json()
            params = {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}
            rows.append((user, "webpush", subscription["endpoint"], json.dumps(params)))
            keys[user] = subscription["endpoint"].rsplit("/", 1)[1]
    await conn.executemany(
        "INSERT INTO devices (user_id, device_id, push_platform, push_token, push_params)"
        " VALUES ($1, 'phone', $2, $3, $4::jsonb)",
        rows,
    )
    return keys


async def _pushes(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/pushes", timeout=60.0)
    response.raise_for_status()
    pushes: list[dict[str, Any]] = response.json()["pushes"]
    return pushes


def _message_ids(push: dict[str, Any]) -> Iterable[int]:
    return (int(m) for m in push["data"]["message_ids"].split(","))


async def _latency(
    cluster: LocalCluster,
    conn: asyncpg.Connection,
    http: httpx.AsyncClient,
    tag: str,
    messages: int,
    rate: float,
    recipient_count: int,
) -> dict[str, object]:
    sender_users = [f"s{tag}{i:03d}" for i in range(math.ceil(rate / RATE_PER_SENDER))]
    recipients = [f"r{tag}{i:05d}" for i in range(recipient_count)]
    await conn.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in sender_users])
    await conn.executemany(
        "INSERT INTO devices (user_id, device_id) VALUES ($1, 'bench')",
        [(u,) for u in sender_users],
    )
    await _register_phones(conn, http, recipients)
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    senders = [
        await Connection.open(
            cluster.edge_url,
            issuer.mint(Identity(user, "bench"), ttl_s=3600),
            encoding=Encoding.BINARY,
        )
        for user in sender_users
    ]
    sent_at: dict[int, float] = {}
    errors: dict[str, int] = {}

    async def send(i: int) -> None:
        started = time.time()
        reply = await senders[i % len(senders)].request(
            text_send(uuid.uuid4().hex, recipients[i % len(recipients)], None, "bench body"),
            timeout_s=30,
        )
        if reply.WhichOneof("kind") == "ack":
            sent_at[reply.ack.message_id] = started
        else:
            errors[reply.error.reason] = errors.get(reply.error.reason, 0) + 1

    before = cpu_seconds(cluster)
    start = time.perf_counter()
    tasks = []
    try:
        for i in range(messages):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(send(i)))
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(sender.close() for sender in senders))
    arrived: dict[int, float] = {}
    deadline = time.monotonic() + SETTLE_S
    while len(arrived) < len(sent_at) and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        for push in await _pushes(http):
            for message_id in _message_ids(push):
                if message_id in sent_at:
                    arrived.setdefault(message_id, push["received_at"])
    after = cpu_seconds(cluster)
    latencies = [arrived[m] - sent_at[m] for m in arrived]
    return {
        "messages": messages,
        "rate_per_s": rate,
        "senders": len(senders),
        "recipients": recipient_count,
        "acked": len(sent_at),
        "pushed": len(arrived),
        "errors": errors,
        "send_to_provider": latency_summary(latencies),
        "cpu_s_by_process": {n: round(after[n] - before.get(n, 0.0), 2) for n in after},
    }


async def _throughput(
    cluster: LocalCluster,
    conn: asyncpg.Connection,
    http: httpx.AsyncClient,
    tag: str,
    backlog: int,
) -> dict[str, object]:
    owner = f"o{tag}"
    users = [f"b{tag}{i:05d}" for i in range(backlog)]
    await conn.execute("INSERT INTO users (user_id) VALUES ($1)", owner)
    keys = await _register_phones(conn, http, users)
    conversations = {u: f"bench-{tag}-{u}" for u in users}
    await conn.executemany(
        "INSERT INTO conversations (conversation_id, kind, created_at_ms) VALUES ($1, 1, 0)",
        [(c,) for c in conversations.values()],
    )
    await conn.executemany(
        "INSERT INTO members (conversation_id, user_id) VALUES ($1, $2), ($1, $3)",
        [(c, owner, u) for u, c in conversations.items()],
    )
    wanted = {keys[u] for u in users}
    now_ms = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": cluster.kafka_bootstrap, "linger.ms": 5})
    topic = topic_name(cluster.config.key_prefix, "push-jobs")
    before = cpu_seconds(cluster)
    started = time.time()
    for i, user in enumerate(users):
        job = PushJob(
            conversations[user],
            snowflake.compose(
                now_ms + i // (snowflake.MAX_SEQUENCE + 1),
                BENCH_WORKER_ID,
                i % (snowflake.MAX_SEQUENCE + 1),
            ),
            owner,
            (PushRecipient(user, frozenset()),),
        )
        producer.produce(topic, encode(job), job.conversation_id.encode())
        producer.poll(0)
    if producer.flush(30) != 0:
        raise RuntimeError("the backlog was not appended")
    appended = time.time()
    count_before = (await http.get("/pushes/count")).json()["count"]
    deadline = time.monotonic() + SETTLE_S + backlog / 100
    while time.monotonic() < deadline:
        # Counting, not listing: the providers' CPU is measured too.
        if (await http.get("/pushes/count")).json()["count"] - count_before >= backlog:
            break
        await asyncio.sleep(0.5)
    after = cpu_seconds(cluster)
    mine = [p for p in await _pushes(http) if p["key"] in wanted]
    received = sorted(p["received_at"] for p in mine)
    by_provider: dict[str, int] = {}
    for push in mine:
        by_provider[push["provider"]] = by_provider.get(push["provider"], 0) + 1
    cpu = {n: round(after[n] - before.get(n, 0.0), 2) for n in after}
    drained_s = (received[-1] - received[0]) if len(received) > 1 else 0.0
    return {
        "backlog_jobs": backlog,
        "append_s": round(appended - started, 2),
        "pushed": len(received),
        # A push whose answer was lost (a timeout) is sent again: at least once.
        "pushed_twice": len(received) - len({p["key"] for p in mine}),
        "pushed_by_provider": by_provider,
        "first_push_after_append_s": round(received[0] - appended, 2) if received else None,
        "drain_s": round(drained_s, 2),
        "pushes_per_s": round((len(received) - 1) / drained_s, 1) if drained_s else None,
        "cpu_ms_per_push": {
            name: round(cpu[name] * 1000 / max(len(received), 1), 3)
            for name in ("notifysvc", "push-providers")
            if name in cpu
        },
        "cpu_s_by_process": cpu,
    }


async def _run(
    cluster: LocalCluster, messages: int, rate: float, recipients: int, backlog: int
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(cluster.config.pg_dsn)
    try:
        async with httpx.AsyncClient(base_url=cluster.push_control_url) as http:
            latency = await _latency(cluster, conn, http, tag, messages, rate, recipients)
            throughput = await _throughput(cluster, conn, http, tag, backlog)
    finally:
        await conn.close()
    return {"latency": latency, "throughput": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.push")
    parser.add_argument("--window-ms", type=int, default=2000, help="notifysvc's window")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--recipients", type=int, default=400)
    parser.add_argument("--backlog", type=int, default=5000, help="jobs for the throughput run")
    parser.add_argument(
        "--workdir", type=Path, help="keep the cluster's logs here (default: a temporary one)"
    )
    args = parser.parse_args()
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(
            ClusterConfig.on_free_ports(stores, args.workdir or Path(tmp), "push"),
            env={"CHATMESH_PUSH_WINDOW_MS": str(args.window_ms)},
        )
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(
                _run(cluster, args.messages, args.rate, args.recipients, args.backlog)
            )
    print(
        json.dumps(
            {
                "benchmark": "push",
                "path": "sender -> Envoy -> gateway -> msgsvc (stored, acked, routed, push "
                "job appended) -> Kafka push-jobs -> notifysvc pipeline (window, sessionsvc, "
                "PostgreSQL checks) -> local FCM / APNs (HTTP/2, TLS) / Web Push (RFC 8291)",
                "window_ms": args.window_ms,
                "results": results,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
