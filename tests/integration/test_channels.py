"""Broadcast channels against the real stores and Kafka: admins post, members are nudged."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.channels import gateway_channel
from chatmesh.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from chatmesh.kafka_io import KafkaSettings, LogConsumer, LogProducer, ensure_topic, topic_name
from chatmesh.pubsub import Subscription
from chatmesh.v1 import common_pb2, delivery_pb2
from msgsvc.fanout.membership import MembershipCache
from msgsvc.fanout.worker import FanoutWorker
from msgsvc.message_log import KafkaMessageLog
from msgsvc.storage.directory import ADMIN, CHANNEL, PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore
from sessionsvc.store import DeviceSession, RedisSessionStore
from tests.conftest import Stores, add_users, unique
from tests.integration.conftest import MakeInstance
from tests.integration.test_fanout import read
from tests.support.msgsvc_domain import (
    HandedPushes,
    Instance,
    ManualClock,
    full_sync,
    store_router,
)

START_MS = snowflake.EPOCH_MS + 760 * 24 * 3600 * 1000
NUDGE_WINDOW_S = 0.5


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
async def log(
    stores: Stores, key_prefix: str
) -> AsyncIterator[tuple[KafkaMessageLog, LogConsumer]]:
    settings = KafkaSettings(
        stores.kafka_bootstrap, topic_name(key_prefix, "log"), 1, 1, stores.kafka_security
    )
    await ensure_topic(settings)
    producer = LogProducer(settings, client_id="channels")
    consumer = LogConsumer(settings, secrets.token_hex(4), client_id="t")
    await consumer.start()
    yield KafkaMessageLog(producer, settings.topic), consumer
    await consumer.close()
    await producer.close()


@pytest.fixture
def node(
    make_instance: MakeInstance, clock: ManualClock, log: tuple[KafkaMessageLog, LogConsumer]
) -> Instance:
    # Groups stop at 3 members here: beyond that, a channel.
    return make_instance(71, clock, log=log[0], max_group_members=3)


async def test_a_channel_goes_beyond_a_groups_limit_and_only_admins_post(
    node: Instance, clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    users = [unique(f"u{i}") for i in range(6)]
    await add_users(pg_pool, *users)
    owner, *audience = users
    with pytest.raises(FailedPrecondition) as full:
        await node.groups.create(
            owner, "phone", client_group_id="g", title="Too many", member_ids=audience
        )
    assert full.value.reason == "GROUP_FULL"
    channel = await node.groups.create(
        owner, "phone", client_group_id="c", title="News", member_ids=audience, kind=CHANNEL
    )
    assert channel.group.kind == CHANNEL and len(channel.group.members) == 6
    channel_id = channel.group.conversation_id
    clock.advance(1)
    with pytest.raises(PermissionDenied) as not_admin:
        await node.send(audience[0], conversation=channel_id, client_msg_id="hi")
    assert not_admin.value.reason == "NOT_CHANNEL_ADMIN"
    post = await node.send(owner, conversation=channel_id, client_msg_id="news-1")
    await node.groups.set_role(owner, "phone", channel_id, audience[0], ADMIN)
    clock.advance(1)
    second = await node.send(audience[0], conversation=channel_id, client_msg_id="news-2")
    # Members read it when they open it: sync and history work as in a group.
    synced, _ = await full_sync(node, audience[1], "")
    assert post.message.message_id in synced and second.message.message_id in synced

    # No receipts: a member's own watermark moves (their unread count), nobody hears.
    marked = await node.receipts.mark(audience[1], channel_id, 2, second.message.message_id)
    assert marked.advanced and not marked.counted and marked.member_ids == (audience[1],)
    with pytest.raises(InvalidArgument) as no_receipts:
        await node.service.messaging.group_receipts.details(
            owner, channel_id, post.message.message_id
        )
    assert no_receipts.value.reason == "NOT_A_GROUP"


async def test_channel_posts_nudge_online_members_once_a_window_and_push_nobody(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
    log: tuple[KafkaMessageLog, LogConsumer],
) -> None:
    users = [unique(f"r{i}") for i in range(5)]
    await add_users(pg_pool, *users)
    owner, *audience = users
    pushes = HandedPushes()
    sessions = RedisSessionStore(redis_client, key_prefix)
    await sessions.register([DeviceSession(u, "phone", "gw", f"c-{u}") for u in audience[:3]])
    await sessions.heartbeat("gw", ttl_s=60)
    pubsub = Subscription(redis_client)
    await pubsub.subscribe(gateway_channel(key_prefix, "gw"))
    channel_id = (
        await node.groups.create(
            owner, "phone", client_group_id="n", title="N", member_ids=audience, kind=CHANNEL
        )
    ).group.conversation_id
    posts = []
    for i in range(5):
        clock.advance(1)
        posts.append(
            (await node.send(owner, conversation=channel_id, client_msg_id=f"p{i}")).message
        )
    worker = FanoutWorker(
        source=log[1],
        messages=message_store,
        members=MembershipCache(PostgresDirectory(pg_pool), clock),
        groups=GroupStore(pg_pool),
        router=store_router(redis_client, key_prefix, pushes),
        clock=clock,
        nudge_window_s=NUDGE_WINDOW_S,
    )
    try:
        await worker.route_batch(await read(log[1], 6))  # the creation and five posts
        published: list[delivery_pb2.GatewayDelivery] = []
        deadline = asyncio.get_running_loop().time() + NUDGE_WINDOW_S * 4
        while asyncio.get_running_loop().time() < deadline:
            received = await pubsub.next_message(timeout_s=0.1)
            if received is not None:
                delivery = delivery_pb2.GatewayDelivery()
                delivery.ParseFromString(received[1])
                published.append(delivery)
    finally:
        await worker.close()
        await pubsub.aclose()
    # One nudge for the whole window, naming the newest post, to the online
    # members; no message is delivered, no push job is queued.
    (nudge,) = published
    assert nudge.frame.WhichOneof("kind") == "channel_activity"
    (activity,) = nudge.frame.channel_activity.channels
    assert (activity.conversation_id, activity.last_message_id) == (
        channel_id,
        posts[-1].message_id,
    )
    assert {t.user_id for t in nudge.targets} == set(audience[:3])
    assert not pushes.of(channel_id)
    assert common_pb2.CONVERSATION_KIND_CHANNEL == CHANNEL
