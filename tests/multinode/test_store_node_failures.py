"""Chaos on the multi-node stores: a Cassandra node, a Redis primary and a
Kafka broker are killed with SIGKILL under traffic, one after the other, and
each is brought back before the next.

Five devices chat as in ``tests/e2e/test_chaos.py`` (1:1 and a group of
three, the group routed from the message log), on a cluster whose stores are
the local multi-node ones: a 3-node Cassandra ring (replication factor 3,
LOCAL_QUORUM), a Redis Cluster of 3 primaries and 3 replicas, and 3 Kafka
brokers (replication factor 3, min.insync.replicas 2, producers with
acks=all). The Redis primary killed is the one holding the first device's
session, so routing feels it. Then ``tests.e2e.checker`` compares what the
devices show with what Cassandra holds: nothing acked is lost, nothing shown
twice, one order per conversation, and every member's delivered watermark
reaches the newest message.

A probe sends one message at a time beside them and notes how long sends
were refused (an error or no ack within a second) after each fault.

Run it alone, with the counts shown (the stores up, their environment
loaded; ``make test-multinode`` does both)::

    .venv/bin/python -m pytest -s -m multinode tests/multinode/test_store_node_failures.py
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from chatmesh.client import Connection
from chatmesh.client.connection import text_send
from chatmesh.devcluster import ClusterConfig, LocalCluster
from msgsvc.storage.accounts import PostgresAccountStore
from msgsvc.storage.messages import CassandraMessageStore
from tests.conftest import Stores, add_users, unique
from tests.e2e.checker import check
from tests.e2e.device import brief, snapshot
from tests.multinode import nodes
from tests.support.chaos import (
    chatter,
    chatters,
    receipts_lagging,
    resync_all,
    stored_rows,
    token_factory,
    until,
)

pytestmark = pytest.mark.multinode

DOWN_FOR_S = 8.0  # a killed node stays down this long, traffic flowing, before its restart
SETTLE_S = 5.0  # after a node is whole again, before the next fault
# Longer than twice the sync re-read window (30 s) beyond the last fault.
AFTER_FAULTS_S = 65.0
CONNECT_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0
RECEIPTS_TIMEOUT_S = 15.0
PROBE_ACK_TIMEOUT_S = 1.0
PROBE_PAUSE_S = 0.1
SEED = 20_261_130


@pytest.fixture(scope="module")
def store_chaos_cluster(
    stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """Two msgsvc, two fan-out workers, on the shared multi-node stores."""
    assert stores.redis_cluster, "run with the multi-node stores' environment (make test-multinode)"
    config = ClusterConfig.on_free_ports(
        stores,
        tmp_path_factory.mktemp("store-chaos"),
        "store-chaos",
        msgsvc_instances=2,
        fanout_workers=2,
    )
    with LocalCluster.running(config) as cluster:
        yield cluster


@dataclass
class Probe:
    """Sends one message at a time and notes when sends were refused."""

    refused: list[tuple[float, float]] = field(default_factory=list)  # (from, until) monotonic
    acked: int = 0
    attempts: int = 0

    async def run(
        self, connect: Callable[[], Awaitable[Connection]], to_user: str, stop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        conn: Connection | None = None
        while not stop.is_set():
            client_msg_id = uuid.uuid4().hex
            failing_since: float | None = None
            while True:  # the same message until acked, as a client does
                started = loop.time()
                self.attempts += 1
                try:
                    if conn is None or conn.closed:
                        conn = await connect()
                    reply = await conn.request(
                        text_send(client_msg_id, to_user, None, "probe"),
                        timeout_s=PROBE_ACK_TIMEOUT_S,
                    )
                    acked = reply.WhichOneof("kind") == "ack"
                except Exception:
                    acked = False
                if acked:
                    self.acked += 1
                    if failing_since is not None:
                        self.refused.append((failing_since, loop.time()))
                    break
                failing_since = started if failing_since is None else failing_since
                await asyncio.sleep(PROBE_PAUSE_S)
            await asyncio.sleep(PROBE_PAUSE_S)
        if conn is not None:
            await conn.close()

    def refused_between(self, start: float, end: float) -> tuple[float, int]:
        """Seconds refused within [start, end), and how many refusals began there."""
        spans = [(max(a, start), min(b, end)) for a, b in self.refused if a < end and b > start]
        return sum(b - a for a, b in spans), sum(1 for a, _ in self.refused if start <= a < end)


@dataclass
class Fault:
    node: str
    killed_at: float
    restarted_at: float
    whole_at: float


async def test_nothing_acked_is_lost_when_a_node_of_each_store_dies(
    store_chaos_cluster: LocalCluster,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    cluster = store_chaos_cluster
    rng = random.Random(SEED)
    chat = await chatters(cluster, pg_pool, rng)
    users, members, group, devices = chat.users, chat.members, chat.group, chat.devices
    ann = users[0]
    prober, probed = unique("prober"), unique("probed")
    await add_users(pg_pool, prober, probed)
    await PostgresAccountStore(pg_pool).ensure_device(prober, "phone")
    probe_token = token_factory(cluster, prober, "phone")
    probe = Probe()
    stop_probe = asyncio.Event()
    loop = asyncio.get_running_loop()
    started_ms = int(time.time() * 1000)
    for device in devices:
        device.start()
    faults: list[Fault] = []
    probing: asyncio.Task[None] | None = None
    try:
        connected = await until(lambda: all(d.connected for d in devices), CONNECT_TIMEOUT_S)
        assert connected, "devices not all connected before the chaos starts"
        probing = asyncio.create_task(
            probe.run(lambda: Connection.open(cluster.edge_url, probe_token()), probed, stop_probe)
        )
        sending = [
            asyncio.create_task(
                chatter(
                    d,
                    [u for u in users if u != d.user_id],
                    group,
                    rng.random(),
                    send_for_s=24 * 60.0,  # until cancelled below
                )
            )
            for d in devices
        ]
        await asyncio.sleep(SETTLE_S)
        victims = [
            lambda: nodes.cassandra(3),
            # The primary of ann's session hash: her lookups and
            # registrations, and those of every user in its slots, fail over.
            lambda: nodes.redis_primary(f"{cluster.config.key_prefix}sessions:{{{ann}}}"),
            lambda: nodes.kafka(2),
        ]
        for victim in victims:
            node = victim()
            killed_at = loop.time()
            node.kill()
            await asyncio.sleep(DOWN_FOR_S)
            restarted_at = loop.time()
            await asyncio.to_thread(nodes.bring_back)
            await asyncio.to_thread(cluster.ensure_redis_users)
            faults.append(Fault(node.name, killed_at, restarted_at, loop.time()))
            await asyncio.sleep(SETTLE_S)
        await asyncio.sleep(AFTER_FAULTS_S)
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        stop_probe.set()
        await probing
        await until(lambda: all(d.outbox_empty for d in devices), DRAIN_TIMEOUT_S)
        synced = await resync_all(devices)
        rows = await stored_rows(message_store, list(members), since_ms=started_ms)
        lagging = await receipts_lagging(pg_pool, rows)
        waited_from = loop.time()
        while lagging and loop.time() < waited_from + RECEIPTS_TIMEOUT_S:
            await asyncio.sleep(0.2)
            lagging = await receipts_lagging(pg_pool, rows)
    finally:
        stop_probe.set()
        if probing is not None:
            await asyncio.gather(probing, return_exceptions=True)
        for device in devices:
            await device.stop()
    report = check([snapshot(d) for d in devices], members, rows)

    lines = []
    ends = [f.killed_at for f in faults[1:]] + [loop.time()]
    for fault, end in zip(faults, ends, strict=True):
        refused_s, refusals = probe.refused_between(fault.killed_at, end)
        lines.append(
            f"{fault.node}: down {fault.restarted_at - fault.killed_at:.1f} s, whole again"
            f" {fault.whole_at - fault.restarted_at:.1f} s after its restart; probe sends"
            f" refused for {refused_s:.1f} s ({refusals} spells)"
        )
    outcome = (
        "store chaos:\n  "
        + "\n  ".join(lines)
        + f"\nprobe: {probe.acked} acked in {probe.attempts} attempts"
        + f"\nfinal syncs completed: {synced}"
    )
    print(f"\n{outcome}")
    for device in devices:
        print(f"  {device.name}: {brief(device)}")
    print(f"  stored rows={len(rows)} {report.counts()}")
    assert len(faults) == len(victims)
    assert report.violations == [], f"{outcome}\n{report.summary()}"
    assert all(synced), f"{outcome}\n{report.counts()}"
    assert lagging == [], f"delivered watermarks short of the newest message: {lagging}"
    assert probe.acked > 0
