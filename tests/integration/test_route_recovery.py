"""The route journal and its replay, against real Redis, PostgreSQL and Cassandra.

Routing itself is the real ``Router`` publishing to a gateway's real Redis
channel; sessions and push jobs are read from and written to the real Redis
stores sessionsvc and notifysvc use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from msgsvc.message_log import KafkaMessageLog
from msgsvc.recovery import RouteRecovery
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore
from msgsvc.storage.route_journal import RouteJournal, RouteRef
from msgsvc.visibility import COMMIT_BOUND_MS
from sessionsvc.store import DeviceSession as StoredSession
from sessionsvc.store import RedisSessionStore
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.inboxes import Inbox, gateway_inboxes
from tests.support.msgsvc_domain import ManualClock, store_router


@pytest.fixture
async def gateway_inbox(redis_client: redis.Redis, key_prefix: str) -> AsyncIterator[Inbox]:
    """What a gateway named "gw" would receive on its channel."""
    async with gateway_inboxes(redis_client, key_prefix, "gw") as inboxes:
        yield inboxes["gw"]


async def test_a_dead_instances_unrouted_messages_are_delivered_by_a_live_one(
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
    gateway_inbox: Inbox,
    make_instance: MakeInstance,
    message_log: KafkaMessageLog,
) -> None:
    clock = ManualClock(1_790_000_000_000)
    node = make_instance(21, clock)
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    sessions = RedisSessionStore(redis_client, key_prefix)
    await sessions.register([StoredSession(bob, "phone", "gw", "c1")])
    await sessions.heartbeat("gw", ttl_s=30)
    stored = [
        (await node.send(alice, to_user=bob, client_msg_id=f"m{i}")).message for i in range(3)
    ]
    conversation = stored[0].conversation_id

    # The crashed instance journaled all three before acking, routed one.
    dead = RouteJournal(redis_client, key_prefix, "msgsvc-dead")
    await dead.beat()
    entries = [await dead.record(RouteRef(conversation, m.message_id)) for m in stored]
    await dead.done(dead.instance_id, entries[0])
    # ...and a fourth whose write never happened (its send was never acked).
    never = node.ids.generate_now()
    await dead.record(RouteRef(conversation, never))
    await redis_client.delete(f"{key_prefix}routes:{{msgsvc-dead}}:alive")  # its beats stop

    live = RouteJournal(redis_client, key_prefix, "msgsvc-live")
    recovery = RouteRecovery(
        live,
        PostgresDirectory(pg_pool),
        message_store,
        store_router(redis_client, key_prefix),
        clock,
        GroupStore(pg_pool),
        message_log,
    )
    assert await recovery.run_once() == 2
    delivered = [await asyncio.wait_for(gateway_inbox.get(), 5) for _ in range(2)]
    assert sorted(d.frame.deliver.message.message_id for d in delivered) == [
        m.message_id for m in stored[1:]
    ]
    assert all([(t.user_id, t.device_id) for t in d.targets] == [(bob, "phone")] for d in delivered)
    # The unwritten one may still be committing: kept until the commit bound passes.
    left = await dead.entries("msgsvc-dead", recorded_before_ms=None, limit=10)
    assert [e.ref.message_id for e in left] == [never]
    assert await recovery.run_once() == 0  # another round: adoption is held, nothing routed

    clock.advance(COMMIT_BOUND_MS + 1)
    await redis_client.delete(f"{key_prefix}routes:{{msgsvc-dead}}:adopting")
    assert await recovery.run_once() == 0
    assert await dead.entries("msgsvc-dead", recorded_before_ms=None, limit=10) == []
    assert "msgsvc-dead" not in await live.orphaned()  # forgotten once empty
    assert gateway_inbox.empty()


async def test_a_live_instances_journal_is_left_alone(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    busy = RouteJournal(redis_client, key_prefix, "msgsvc-busy")
    await busy.beat()
    await busy.record(RouteRef("conv", 1))
    other = RouteJournal(redis_client, key_prefix, "msgsvc-other")
    await other.beat()
    assert await other.orphaned() == []
    assert await busy.orphaned() == []
