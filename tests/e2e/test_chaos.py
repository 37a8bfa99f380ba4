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
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import asyncpg
import pytest

from chatmesh import snowflake
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import ClientOptions, Device
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.v1 import client_pb2, group_service_pb2, group_service_pb2_grpc
from msgsvc.storage.accounts import PostgresAccountStore
from msgsvc.storage.messages import CassandraMessageStore, bucket_at
from tests.conftest import Stores, add_users, unique
from tests.e2e.checker import StoredRow, check
from tests.e2e.device import brief, snapshot

# Longer than twice the sync re-read window (30 s): later syncs start from
# cursors whose floor is above early messages, so a cursor that skipped
# anything would show as a lost message.
SEND_FOR_S = 65.0
SEND_INTERVAL_S = (0.5, 1.5)  # about one message a second per device
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
GROUP_SHARE = 1 / 3  # of the sends that go to the group
DOWN_FOR_S = 1.0  # a crashed process stays down this long before its restart
CONNECT_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 20.0
RESYNC_TIMEOUT_S = 15.0
RECEIPTS_TIMEOUT_S = 10.0
READ_PAGE = 500
TOKEN_TTL_S = 600
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
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    users = [ann, ben, cat]
    layout = [(ann, "phone"), (ann, "laptop"), (ben, "phone"), (ben, "laptop"), (cat, "phone")]
    await add_users(pg_pool, *users)
    accounts = PostgresAccountStore(pg_pool)
    for user, device_id in layout:
        await accounts.ensure_device(user, device_id)
    members = {
        direct_conversation_id(a, b): frozenset({a, b}) for a, b in itertools.combinations(users, 2)
    }
    group = await _create_group(chaos_cluster, ann, [ben, cat])
    members[group] = frozenset(users)
    devices = [
        Device(
            user,
            device_id,
            url=chaos_cluster.edge_url,
            token_factory=_token_factory(chaos_cluster, user, device_id),
            options=ClientOptions(mark_delivered=True),
            rng=random.Random(rng.random()),
            client_msg_ids=_numbered(),
        )
        for user, device_id in layout
    ]
    started_ms = int(time.time() * 1000)
    for device in devices:
        device.start()
    try:
        connected = await _until(lambda: all(d.connected for d in devices), CONNECT_TIMEOUT_S)
        assert connected, "devices not all connected before the chaos starts"
        faults: list[str] = []
        await asyncio.gather(
            *(
                _chatter(d, [u for u in users if u != d.user_id], group, rng.random())
                for d in devices
            ),
            _inject_faults(chaos_cluster, devices, faults),
        )
        # Undrained outboxes and unfinished syncs are reported by the checker
        # along with everything else, rather than failing here without a report.
        await _until(lambda: all(d.outbox_empty for d in devices), DRAIN_TIMEOUT_S)
        synced = await _resync_all(devices)
        rows = await _stored_rows(message_store, list(members), since_ms=started_ms)
        # Devices report delivery of the newest message they hold; once they
        # hold everything, every member's watermark reaches the newest row.
        lagging = await _receipts_lagging(pg_pool, rows)
        lagging_at_first = len(lagging)
        waited_from = asyncio.get_running_loop().time()
        while lagging and asyncio.get_running_loop().time() < waited_from + RECEIPTS_TIMEOUT_S:
            await asyncio.sleep(0.2)
            lagging = await _receipts_lagging(pg_pool, rows)
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


def _numbered() -> Callable[[], str]:
    """m1, m2, ...: the same sequence on every device."""
    counter = itertools.count(1)
    return lambda: f"m{next(counter)}"


def _token_factory(cluster: LocalCluster, user: str, device: str) -> Callable[[], str]:
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    return lambda: issuer.mint(Identity(user, device), ttl_s=TOKEN_TTL_S)


async def _chatter(device: Device, others: Sequence[str], group: str, seed: float) -> None:
    """About one message a second, to the group or a random other user, for SEND_FOR_S."""
    rng = random.Random(seed)
    deadline = asyncio.get_running_loop().time() + SEND_FOR_S
    for n in itertools.count(1):
        if asyncio.get_running_loop().time() >= deadline:
            return
        if rng.random() < GROUP_SHARE:
            device.send_text(conversation=group, body=f"{device.name} #{n}")
        else:
            device.send_text(to_user=rng.choice(others), body=f"{device.name} #{n}")
        await asyncio.sleep(rng.uniform(*SEND_INTERVAL_S))


async def _create_group(cluster: LocalCluster, creator: str, others: list[str]) -> str:
    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_service_pb2.CreateGroupRequest(
                actor_user_id=creator,
                group=client_pb2.CreateGroupFrame(
                    client_group_id="chaos", title="All of us", member_user_ids=others
                ),
            )
        )
    return str(created.group.conversation_id)


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


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Waits until ``condition`` holds; False if it still does not after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _resync_all(devices: Sequence[Device]) -> list[bool]:
    """A final sync on every device at once; False for one that did not complete in time."""
    tasks = [asyncio.create_task(d.resync(), name=f"resync:{d.name}") for d in devices]
    done, _ = await asyncio.wait(tasks, timeout=RESYNC_TIMEOUT_S)
    completed = [task in done and task.result() for task in tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return completed


async def _receipts_lagging(
    pg_pool: asyncpg.Pool, rows: Sequence[StoredRow]
) -> list[tuple[str, str, int, int]]:
    """(conversation, member, delivered watermark, newest row) where the
    member's delivered watermark is short of the conversation's newest row."""
    newest: dict[str, int] = {}
    for row in rows:
        newest[row.conversation_id] = max(newest.get(row.conversation_id, 0), row.message_id)
    found = await pg_pool.fetch(
        "SELECT conversation_id, user_id, delivered_watermark FROM members"
        " WHERE conversation_id = ANY($1::text[])",
        list(newest),
    )
    return [
        (r["conversation_id"], r["user_id"], r["delivered_watermark"], newest[r["conversation_id"]])
        for r in found
        if r["delivered_watermark"] < newest[r["conversation_id"]]
    ]


async def _stored_rows(
    store: CassandraMessageStore, conversation_ids: Sequence[str], *, since_ms: int
) -> list[StoredRow]:
    """Every row of the conversations, written since ``since_ms``."""
    rows: list[StoredRow] = []
    # Bounded to this run: an unbounded ``before_id`` would walk every
    # ten-day bucket back from the year 2093.
    newest = snowflake.lowest_id_at(int(time.time() * 1000) + 60_000)
    oldest_bucket = bucket_at(since_ms - 60_000)
    for conversation_id in conversation_ids:
        before = newest
        while True:
            page = await store.page(
                conversation_id, before_id=before, limit=READ_PAGE, oldest_bucket=oldest_bucket
            )
            rows.extend(
                StoredRow(
                    conversation_id,
                    m.message_id,
                    m.sender_user_id,
                    m.sender_device_id,
                    m.client_msg_id,
                )
                for m in page
            )
            if len(page) < READ_PAGE:
                break
            before = page[-1].message_id
    return rows
