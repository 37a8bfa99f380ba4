"""What the chaos tests share: devices that chat, and reading back what the
stores hold once the chaos is over (``tests.e2e.checker`` compares them)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from chatmesh import snowflake
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import ClientOptions, Device
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import client_pb2, group_service_pb2, group_service_pb2_grpc
from msgsvc.storage.accounts import PostgresAccountStore
from msgsvc.storage.messages import CassandraMessageStore, bucket_at
from tests.conftest import add_users, unique
from tests.e2e.checker import StoredRow

SEND_INTERVAL_S = (0.5, 1.5)  # about one message a second per device
GROUP_SHARE = 1 / 3  # of the sends that go to the group
RESYNC_TIMEOUT_S = 15.0
READ_PAGE = 500
TOKEN_TTL_S = 600


@dataclass(frozen=True, slots=True)
class Chatters:
    """Three users, two of them with two devices, each pair in a 1:1 and all
    three in a group: what the chaos tests send between."""

    users: list[str]
    members: dict[str, frozenset[str]]  # conversation -> its members
    group: str
    devices: list[Device]


async def chatters(cluster: LocalCluster, pg_pool: asyncpg.Pool, rng: random.Random) -> Chatters:
    """The users registered, the group created, the devices made (not started)."""
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
    group = await create_group(cluster, ann, [ben, cat])
    members[group] = frozenset(users)
    devices = [
        Device(
            user,
            device_id,
            url=cluster.edge_url,
            token_factory=token_factory(cluster, user, device_id),
            options=ClientOptions(mark_delivered=True),
            rng=random.Random(rng.random()),
            client_msg_ids=numbered(),
        )
        for user, device_id in layout
    ]
    return Chatters(users, members, group, devices)


def numbered() -> Callable[[], str]:
    """m1, m2, ...: the same sequence on every device."""
    counter = itertools.count(1)
    return lambda: f"m{next(counter)}"


def token_factory(cluster: LocalCluster, user: str, device: str) -> Callable[[], str]:
    issuer = TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    return lambda: issuer.mint(Identity(user, device), ttl_s=TOKEN_TTL_S)


async def chatter(
    device: Device, others: Sequence[str], group: str, seed: float, *, send_for_s: float
) -> None:
    """About one message a second, to the group or a random other user, for ``send_for_s``."""
    rng = random.Random(seed)
    deadline = asyncio.get_running_loop().time() + send_for_s
    for n in itertools.count(1):
        if asyncio.get_running_loop().time() >= deadline:
            return
        if rng.random() < GROUP_SHARE:
            device.send_text(conversation=group, body=f"{device.name} #{n}")
        else:
            device.send_text(to_user=rng.choice(others), body=f"{device.name} #{n}")
        await asyncio.sleep(rng.uniform(*SEND_INTERVAL_S))


async def create_group(cluster: LocalCluster, creator: str, others: list[str]) -> str:
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


async def until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Waits until ``condition`` holds; False if it still does not after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def resync_all(devices: Sequence[Device]) -> list[bool]:
    """A final sync on every device at once; False for one that did not complete in time."""
    tasks = [asyncio.create_task(d.resync(), name=f"resync:{d.name}") for d in devices]
    done, _ = await asyncio.wait(tasks, timeout=RESYNC_TIMEOUT_S)
    completed = [task in done and task.result() for task in tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return completed


async def receipts_lagging(
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


async def stored_rows(
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
