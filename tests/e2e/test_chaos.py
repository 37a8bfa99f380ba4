"""Chaos: devices chat through crashes of gateways, msgsvc, fan-out workers, Kafka and Redis.

Five simulated devices (two users with two each, one with one) send about a
message a second through the edge for about a minute, a third of them to the
group of all three users (routed by the fan-out workers from the message
log), the rest to a random other user, while in turn each gateway, each
msgsvc instance, each fan-out worker, the Kafka broker and Redis are killed
with SIGKILL and restarted. Each device numbers its sends ``m1``, ``m2``... as
many apps do, so the devices of one user keep reusing each other's
client_msg_ids: each is still its own message. Then sending stops, every outbox drains, every device
syncs a last time, and ``tests.e2e.checker`` compares what the devices show
with what Cassandra holds: nothing acked is lost, nothing is shown or stored
twice, and every device shows each conversation in the same order. Every
member's delivered watermark must also reach the newest message.

Run it alone, with the counts shown::

    .venv/bin/python -m pytest -s tests/e2e/test_chaos.py
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence

import asyncpg
import pytest

from chatmesh.client import Device
from chatmesh.devcluster import ClusterConfig, LocalCluster
from msgsvc.storage.messages import CassandraMessageStore
from tests.conftest import Stores
from tests.e2e.checker import check
from tests.e2e.device import brief, snapshot
from tests.support.chaos import (
    chatter,
    chatters,
    receipts_lagging,
    resync_all,
    stored_rows,
    until,
)

# Longer than twice the sync re-read window (30 s): later syncs start from
# cursors whose floor is above early messages, so a cursor that skipped
# anything would show as a lost message.
SEND_FOR_S = 65.0
# Stands for the msgsvc instance behind the gateway holding most devices: the
# gateway crash moves every device to the other gateway, and a crash of the
# instance nobody uses would test nothing.
BUSIEST_MSGSVC = "busiest msgsvc"
# (seconds after sending starts, process): one crash at a time, each given
# time to heal before the next, all well inside the sending window.
FAULTS = (
    (5.0, "gateway-1"),
    (11.0, "fanout-1"),
    (18.0, BUSIEST_MSGSVC),
    (24.0, "kafka"),
    (34.0, "redis"),
    (40.0, "fanout-2"),
    (46.0, "gateway-2"),
    (55.0, BUSIEST_MSGSVC),
)
DOWN_FOR_S = 1.0  # a crashed process stays down this long before its restart
CONNECT_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 20.0
RECEIPTS_TIMEOUT_S = 10.0
SEED = 20_240_101  # fixed, so a failing run can be replayed with the same traffic


@pytest.fixture(scope="module")
def chaos_cluster(
    stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A cluster of its own (its Redis and Kafka included, two msgsvc, two
    fan-out workers): this test kills them."""
    config = ClusterConfig.on_free_ports(
        stores,
        tmp_path_factory.mktemp("chaos"),
        "chaos",
        own_redis=True,
        own_kafka=True,
        msgsvc_instances=2,
        fanout_workers=2,
    )
    with LocalCluster.running(config) as cluster:
        yield cluster


async def test_devices_agree_after_crashes_of_every_kind_of_process(
    chaos_cluster: LocalCluster, pg_pool: asyncpg.Pool, message_store: CassandraMessageStore
) -> None:
    rng = random.Random(SEED)
    chat = await chatters(chaos_cluster, pg_pool, rng)
    users, members, group, devices = chat.users, chat.members, chat.group, chat.devices
    started_ms = int(time.time() * 1000)
    for device in devices:
        device.start()
    try:
        connected = await until(lambda: all(d.connected for d in devices), CONNECT_TIMEOUT_S)
        assert connected, "devices not all connected before the chaos starts"
        faults: list[str] = []
        await asyncio.gather(
            *(
                chatter(
                    d,
                    [u for u in users if u != d.user_id],
                    group,
                    rng.random(),
                    send_for_s=SEND_FOR_S,
                )
                for d in devices
            ),
            _inject_faults(chaos_cluster, devices, faults),
        )
        # Undrained outboxes and unfinished syncs are reported by the checker
        # along with everything else, rather than failing here without a report.
        await until(lambda: all(d.outbox_empty for d in devices), DRAIN_TIMEOUT_S)
        synced = await resync_all(devices)
        rows = await stored_rows(message_store, list(members), since_ms=started_ms)
        # Devices report delivery of the newest message they hold; once they
        # hold everything, every member's watermark reaches the newest row.
        lagging = await receipts_lagging(pg_pool, rows)
        lagging_at_first = len(lagging)
        waited_from = asyncio.get_running_loop().time()
        while lagging and asyncio.get_running_loop().time() < waited_from + RECEIPTS_TIMEOUT_S:
            await asyncio.sleep(0.2)
            lagging = await receipts_lagging(pg_pool, rows)
        receipts_took_s = asyncio.get_running_loop().time() - waited_from
    finally:
        for device in devices:
            await device.stop()
    report = check([snapshot(d) for d in devices], members, rows)

    outcome = (
        f"chaos: {'; '.join(faults)}\nfinal syncs completed: {synced}\n"
        f"receipts: {lagging_at_first} watermarks behind after the final sync,"
        f" {len(lagging)} after {receipts_took_s:.1f} s"
    )
    print(f"\n{outcome}")
    for device in devices:
        print(f"  {device.name}: {brief(device)}")
    print(f"  stored rows={len(rows)} {report.counts()}")
    assert report.violations == [], f"{outcome}\n{report.summary()}"
    assert all(synced), f"{outcome}\n{report.counts()}"
    assert lagging == [], f"delivered watermarks short of the newest message: {lagging}"


async def _inject_faults(cluster: LocalCluster, devices: Sequence[Device], done: list[str]) -> None:
    """SIGKILL each process of FAULTS at its time, restart it after DOWN_FOR_S."""
    start = asyncio.get_running_loop().time()
    for at_s, fault in FAULTS:
        await asyncio.sleep(max(0.0, start + at_s - asyncio.get_running_loop().time()))
        name = _busiest_msgsvc(cluster, devices) if fault == BUSIEST_MSGSVC else fault
        process = cluster.processes[name]
        # Blocking calls (kill waits for the exit, restart for health) run in a
        # thread so the devices keep running meanwhile.
        await asyncio.to_thread(process.kill)
        await asyncio.sleep(DOWN_FOR_S)
        restarted_at = asyncio.get_running_loop().time()
        await asyncio.to_thread(cluster.restart, name)
        took = asyncio.get_running_loop().time() - restarted_at
        done.append(f"{name} killed at {at_s:g} s, healthy again {took:.1f} s after restart")


def _busiest_msgsvc(cluster: LocalCluster, devices: Sequence[Device]) -> str:
    """The msgsvc instance serving the gateway with most devices connected
    (gateway i talks to instance i mod n, see ``chatmesh.devcluster``)."""
    on_gateway = Counter(d.gateway_id for d in devices)
    gateways = range(1, len(cluster.config.ports.gateway_ws) + 1)
    busiest = max(gateways, key=lambda i: on_gateway[cluster.gateway_id(i)])
    return cluster.msgsvc_names[(busiest - 1) % len(cluster.msgsvc_names)]
