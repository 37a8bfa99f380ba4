"""Group receipts against the real stores: counts from watermarks, pushed to senders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.v1 import common_pb2
from msgsvc.effects import Effects
from msgsvc.group_receipts import Counts
from sessionsvc.store import DeviceSession, RedisSessionStore
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.inboxes import Inbox, gateway_inboxes
from tests.support.msgsvc_domain import Instance, ManualClock

START_MS = snowflake.EPOCH_MS + 750 * 24 * 3600 * 1000
DELIVERED = common_pb2.RECEIPT_KIND_DELIVERED
READ = common_pb2.RECEIPT_KIND_READ


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def node(make_instance: MakeInstance, clock: ManualClock) -> Instance:
    return make_instance(61, clock)


@pytest.fixture
async def inbox(redis_client: redis.Redis, key_prefix: str) -> AsyncIterator[Inbox]:
    """What gateway "gw" receives; every device of these tests is connected there."""
    async with gateway_inboxes(redis_client, key_prefix, "gw") as inboxes:
        yield inboxes["gw"]


async def test_counts_follow_the_recipients_watermarks_and_reach_the_sender(
    node: Instance,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    inbox: Inbox,
) -> None:
    ann, ben, cat, dan, eve = (unique(n) for n in ("ann", "ben", "cat", "dan", "eve"))
    await add_users(pg_pool, ann, ben, cat, dan, eve)
    sessions = RedisSessionStore(redis_client, key_prefix)
    await sessions.register(
        [DeviceSession(u, d, "gw", f"{u}-{d}") for u in (ann, ben) for d in ("phone", "laptop")]
    )
    await sessions.heartbeat("gw", ttl_s=60)
    group = (
        await node.groups.create(
            ann, "phone", client_group_id="r", title="R", member_ids=[ben, cat, dan]
        )
    ).group.conversation_id
    clock.advance(1)
    first = (await node.send(ann, conversation=group, client_msg_id="1")).message
    clock.advance(1)
    second = (await node.send(ann, conversation=group, client_msg_id="2")).message
    clock.advance(1)
    await node.groups.add(ann, "phone", group, [eve])  # joins after both: not a recipient
    effects: Effects = node.service.messaging.effects
    receipts = node.service.messaging.group_receipts

    for user, kind, message in [
        (ben, READ, second),
        (cat, DELIVERED, first),
        (dan, DELIVERED, second),
    ]:
        moved = await node.receipts.mark(user, group, kind, message.message_id)
        assert moved.group and moved.advanced
        effects.receipt_moved(moved, "phone")
    assert await receipts.flush() == 1  # one frame: ann sent both messages

    # One publish per gateway and frame: ann's counts, ben's watermark (cat
    # and dan have no live device).
    counts_frames, watermark_frames = [], []
    while len(counts_frames) < 1 or len(watermark_frames) < 1:
        delivery = await asyncio.wait_for(inbox.get(), 5)
        kind = delivery.frame.WhichOneof("kind")
        (counts_frames if kind == "receipt_counts" else watermark_frames).append(delivery)
    # Counts go to every device of the sender, once per flush.
    (counts_frame,) = counts_frames
    assert {(t.user_id, t.device_id) for t in counts_frame.targets} == {
        (ann, "phone"),
        (ann, "laptop"),
    }
    counts = {c.message_id: c for c in counts_frame.frame.receipt_counts.counts}
    assert counts[first.message_id] == Counts(first.message_id, 3, 3, 1).to_proto()
    assert counts[second.message_id] == Counts(second.message_id, 3, 2, 1).to_proto()
    # A member's watermark event goes only to that member's other devices.
    (watermark_frame,) = watermark_frames
    assert [(t.user_id, t.device_id) for t in watermark_frame.targets] == [(ben, "laptop")]
    await asyncio.sleep(0.2)
    assert inbox.empty()

    totals, members = await receipts.details(cat, group, second.message_id)
    assert totals == Counts(second.message_id, 3, 2, 1)
    assert [(m.user_id, m.delivered, m.read) for m in members] == sorted(
        [(ben, True, True), (cat, False, False), (dan, True, False)]
    )
    [view] = (await node.conversations.page(ann, page_size=0, page_token="")).conversations
    assert view.last_receipts is None  # the last message is eve's addition
    clock.advance(1)
    third = (await node.send(ben, conversation=group, client_msg_id="3")).message
    [view] = (await node.conversations.page(ann, page_size=0, page_token="")).conversations
    assert view.last_receipts == (third.message_id, 4, 0, 0)  # ann, cat, dan, eve


async def test_receipt_details_are_for_members_and_group_messages(
    node: Instance, pg_pool: asyncpg.Pool
) -> None:
    ann, ben, eve = unique("ann"), unique("ben"), unique("eve")
    await add_users(pg_pool, ann, ben, eve)
    created = await node.groups.create(
        ann, "phone", client_group_id="d", title="D", member_ids=[ben]
    )
    group = created.group.conversation_id
    direct = await node.send(ann, to_user=ben, client_msg_id="x")
    for user, conversation, message_id, error, reason in [
        (eve, group, 1, NotFound, "CONVERSATION_NOT_FOUND"),
        (ann, group, 12345, NotFound, "MESSAGE_NOT_FOUND"),
        (
            ann,
            direct.message.conversation_id,
            direct.message.message_id,
            InvalidArgument,
            "NOT_A_GROUP",
        ),
    ]:
        with pytest.raises(error) as refused:
            await node.service.messaging.group_receipts.details(user, conversation, message_id)
        assert refused.value.reason == reason
