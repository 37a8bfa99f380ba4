"""The fan-out worker against real Kafka, Cassandra, PostgreSQL and Redis.

msgsvc instances append group messages to a topic of the test's own; a
worker reads it in a consumer group and routes through the real Router to
the real Redis stores of sessionsvc and notifysvc and the gateways' channels.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.clock import Clock
from chatmesh.kafka_io import (
    KafkaSettings,
    LogConsumer,
    LogProducer,
    LogRecord,
    ensure_topic,
    topic_name,
)
from chatmesh.v1 import common_pb2, delivery_pb2
from msgsvc.fanout.membership import MembershipCache
from msgsvc.fanout.worker import FanoutWorker
from msgsvc.group_events import Change, GroupEvent, encode
from msgsvc.message_log import KafkaMessageLog, LogEntry
from msgsvc.model import StoredMessage
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore
from msgsvc.visibility import COMMIT_BOUND_MS
from sessionsvc.store import DeviceSession, RedisSessionStore
from tests.conftest import Stores, add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.inboxes import Inbox, gateway_inboxes
from tests.support.msgsvc_domain import HandedPushes, Instance, ManualClock, store_router

START_MS = snowflake.EPOCH_MS + 740 * 24 * 3600 * 1000
SYSTEM = common_pb2.MESSAGE_KIND_SYSTEM


@pytest.fixture
async def topic(stores: Stores, key_prefix: str) -> AsyncIterator[KafkaSettings]:
    """A topic of this test's own: its worker reads nobody else's records."""
    settings = KafkaSettings(
        stores.kafka_bootstrap, topic_name(key_prefix, "log"), 2, 1, stores.kafka_security
    )
    await ensure_topic(settings)
    yield settings


@pytest.fixture
async def log(topic: KafkaSettings) -> AsyncIterator[KafkaMessageLog]:
    producer = LogProducer(topic, client_id="fanout-test")
    yield KafkaMessageLog(producer, topic.topic)
    await producer.close()


@pytest.fixture
async def consumer(topic: KafkaSettings) -> AsyncIterator[LogConsumer]:
    source = LogConsumer(topic, f"fanout-{secrets.token_hex(3)}", client_id="t")
    await source.start()
    yield source
    await source.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def node(make_instance: MakeInstance, clock: ManualClock, log: KafkaMessageLog) -> Instance:
    return make_instance(51, clock, log=log)


@pytest.fixture
def pushes() -> HandedPushes:
    return HandedPushes()


def worker(
    consumer: LogConsumer,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
    clock: Clock,
    pushes: HandedPushes | None = None,
) -> FanoutWorker:
    return FanoutWorker(
        source=consumer,
        messages=message_store,
        members=MembershipCache(PostgresDirectory(pg_pool), clock),
        groups=GroupStore(pg_pool),
        router=store_router(redis_client, key_prefix, pushes),
        clock=clock,
    )


@pytest.fixture
def make_worker(
    consumer: LogConsumer,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
    clock: ManualClock,
    pushes: HandedPushes,
) -> Callable[[], FanoutWorker]:
    return lambda: worker(consumer, pg_pool, redis_client, key_prefix, message_store, clock, pushes)


async def read(consumer: LogConsumer, count: int) -> list[LogRecord]:
    """The next ``count`` records of the topic."""
    records: list[LogRecord] = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(records) < count:
        assert asyncio.get_running_loop().time() < deadline, f"only {len(records)} records"
        records.extend(await consumer.batch(count - len(records), 0.5))
    return records


@pytest.fixture
async def inbox(
    redis_client: redis.Redis, key_prefix: str
) -> AsyncIterator[Callable[[str], Inbox]]:
    """What gateways "gw-a" and "gw-b" receive on their channels."""
    async with gateway_inboxes(redis_client, key_prefix, "gw-a", "gw-b") as inboxes:
        yield inboxes.__getitem__


async def online(redis_client: redis.Redis, key_prefix: str, *where: tuple[str, str]) -> None:
    """Registers a phone session for each (user, gateway)."""
    sessions = RedisSessionStore(redis_client, key_prefix)
    await sessions.register([DeviceSession(u, "phone", gw, f"c-{u}") for u, gw in where])
    for gateway in {gw for _, gw in where}:
        await sessions.heartbeat(gateway, ttl_s=60)


def targets(delivery: delivery_pb2.GatewayDelivery) -> set[str]:
    return {t.user_id for t in delivery.targets}


async def group_of(node: Instance, actor: str, members: list[str]) -> str:
    created = await node.groups.create(
        actor, "phone", client_group_id=unique("g"), title="G", member_ids=members
    )
    return created.group.conversation_id


async def test_one_publish_per_gateway_and_a_push_job_per_offline_member(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    consumer: LogConsumer,
    make_worker: Callable[[], FanoutWorker],
    inbox: Callable[[str], Inbox],
    pushes: HandedPushes,
) -> None:
    ann, ben, cat, dan, eve = (unique(n) for n in ("ann", "ben", "cat", "dan", "eve"))
    await add_users(pg_pool, ann, ben, cat, dan, eve)
    await online(
        redis_client, key_prefix, (ann, "gw-a"), (ben, "gw-a"), (cat, "gw-b"), (dan, "gw-b")
    )
    group = await group_of(node, ann, [ben, cat, dan, eve])
    clock.advance(1)
    sent = await node.send(ann, conversation=group, client_msg_id="hello")
    assert sent.via_log

    fanout = make_worker()
    await fanout.route_batch(await read(consumer, 2))  # the creation and the message
    by_gateway: dict[str, list[delivery_pb2.GatewayDelivery]] = {"gw-a": [], "gw-b": []}
    for gw in by_gateway:
        while len(by_gateway[gw]) < 2:
            by_gateway[gw].append(await asyncio.wait_for(inbox(gw).get(), 5))
    created, message = by_gateway["gw-a"]
    assert created.frame.deliver.message.kind == SYSTEM
    # One publish per gateway, carrying that gateway's recipients; the
    # sending device (ann's phone) has the ack and is skipped.
    assert targets(message) == {ben}
    assert targets(by_gateway["gw-b"][1]) == {cat, dan}
    assert message.frame.deliver.message.message_id == sent.message.message_id
    # One push job names every member but the sender with their live
    # devices; eve, the one with none, is pushed on every device she has.
    assert pushes.offline(sent.message.message_id) == [eve]
    (job,) = [j for j in pushes.jobs if j.message_id == sent.message.message_id]
    assert {r.user_id for r in job.recipients} == {ben, cat, dan, eve}
    assert job.sender_user_id == ann and job.conversation_id == group


async def test_a_removal_governs_exactly_the_messages_after_it(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    consumer: LogConsumer,
    make_worker: Callable[[], FanoutWorker],
    inbox: Callable[[str], Inbox],
) -> None:
    """A message that took its id before the removal but is logged after it
    still reaches the removed member; one after the removal does not, although
    the worker had her cached as a member."""
    ann, ben, cat = (unique(n) for n in ("ann", "ben", "cat"))
    await add_users(pg_pool, ann, ben, cat)
    await online(redis_client, key_prefix, (ben, "gw-a"), (cat, "gw-b"))
    group = await group_of(node, ann, [ben, cat])
    clock.advance(1)
    warm = await node.send(ann, conversation=group, client_msg_id="warm")
    fanout = make_worker()
    await fanout.route_batch(await read(consumer, 2))  # the membership is cached now
    for gw in ("gw-a", "gw-b"):
        for _ in range(2):
            await asyncio.wait_for(inbox(gw).get(), 5)

    clock.advance(1)
    early = node.ids.generate_now()
    clock.advance(1)
    removed = await node.groups.remove(ann, "phone", group, cat)
    node.ids.stage(early)
    late = await node.send(ann, conversation=group, client_msg_id="late")
    clock.advance(1)
    after = await node.send(ann, conversation=group, client_msg_id="after")
    assert removed.event is not None and late.message.message_id < removed.event.message_id
    await fanout.route_batch(await read(consumer, 3))

    to_cat = [await asyncio.wait_for(inbox("gw-b").get(), 5) for _ in range(2)]
    assert [d.frame.deliver.message.message_id for d in to_cat] == [
        removed.event.message_id,  # she is told
        late.message.message_id,  # it precedes her removal
    ]
    to_ben = [await asyncio.wait_for(inbox("gw-a").get(), 5) for _ in range(3)]
    assert {d.frame.deliver.message.message_id for d in to_ben} == {
        removed.event.message_id,
        late.message.message_id,
        after.message.message_id,
    }
    await asyncio.sleep(0.3)
    assert inbox("gw-b").empty(), "the message after her removal reached her"
    assert warm.via_log


async def test_a_record_waits_for_its_row_and_one_never_written_is_dropped(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    consumer: LogConsumer,
    log: KafkaMessageLog,
    message_store: CassandraMessageStore,
    make_worker: Callable[[], FanoutWorker],
    inbox: Callable[[str], Inbox],
) -> None:
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    await online(redis_client, key_prefix, (ben, "gw-a"))
    group = await group_of(node, ann, [ben])
    fanout = make_worker()
    await fanout.route_batch(await read(consumer, 1))
    await asyncio.wait_for(inbox("gw-a").get(), 5)

    clock.advance(1)
    lost_id = node.ids.generate_now()  # its write never happened, and now never can
    clock.advance(COMMIT_BOUND_MS + 1)
    slow_id = node.ids.generate_now()  # its write is still under way
    await log.append(LogEntry(group, lost_id, common_pb2.MESSAGE_KIND_TEXT))
    await log.append(LogEntry(group, slow_id, common_pb2.MESSAGE_KIND_TEXT))
    records = await read(consumer, 2)
    routing = asyncio.create_task(fanout.route_batch(records))
    await asyncio.sleep(0.3)
    assert not routing.done()  # the lost one is dropped; the slow one is waited for
    row = StoredMessage(
        slow_id, group, ann, "phone", "slow", 1, b"late", snowflake.timestamp_ms(slow_id)
    )
    await message_store.write(row)
    await asyncio.wait_for(routing, 5)
    delivered = await asyncio.wait_for(inbox("gw-a").get(), 5)
    assert delivered.frame.deliver.message.message_id == slow_id
    assert inbox("gw-a").empty()


async def test_a_change_logged_but_not_applied_is_applied_before_it_is_routed(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    consumer: LogConsumer,
    log: KafkaMessageLog,
    message_store: CassandraMessageStore,
    make_worker: Callable[[], FanoutWorker],
    inbox: Callable[[str], Inbox],
) -> None:
    ann, ben, cat = (unique(n) for n in ("ann", "ben", "cat"))
    await add_users(pg_pool, ann, ben, cat)
    await online(redis_client, key_prefix, (cat, "gw-b"))
    group = await group_of(node, ann, [ben])
    clock.advance(1)
    added_id = node.ids.generate_now()
    event = GroupEvent(ann, Change.ADDED, user_ids=(cat,))
    await message_store.write(
        StoredMessage(
            added_id,
            group,
            ann,
            "phone",
            "",
            SYSTEM,
            encode(event),
            snowflake.timestamp_ms(added_id),
        )
    )
    await log.append(LogEntry(group, added_id, SYSTEM))  # its transaction then failed
    await make_worker().route_batch(await read(consumer, 2))
    delivered = await asyncio.wait_for(inbox("gw-b").get(), 5)
    assert delivered.frame.deliver.message.system.members_added.user_ids == [cat]
    current = await PostgresDirectory(pg_pool).conversation(group)
    assert current is not None and cat in current.member_ids


async def test_records_not_committed_are_read_again_by_the_next_owner(
    topic: KafkaSettings, log: KafkaMessageLog
) -> None:
    group_id = f"owners-{secrets.token_hex(3)}"
    first = LogConsumer(topic, group_id, client_id="first")
    await first.start()
    await log.append(LogEntry("g-x", 1, 1))
    await log.append(LogEntry("g-x", 2, 1))
    taken = await read(first, 2)
    await first.commit(taken[:1])
    await first.close()  # dies having routed, but not committed, the second

    second = LogConsumer(topic, group_id, client_id="second")
    await second.start()
    try:
        again = await read(second, 1)
    finally:
        await second.close()
    assert [(r.partition, r.offset) for r in again] == [(taken[1].partition, taken[1].offset)]
