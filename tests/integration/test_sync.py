"""Catch-up from a cursor against the real stores, two msgsvc instances, a hand-set clock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from chatmesh import snowflake
from chatmesh.errors import InvalidArgument, NotFound, Unavailable
from msgsvc.storage.messages import BUCKET_SPAN_MS, CassandraMessageStore
from msgsvc.tokens import sync_cursor
from msgsvc.visibility import RECLAIM_AFTER_MS, WRITE_START_DEADLINE_MS
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock, full_sync

START_MS = snowflake.EPOCH_MS + 700 * 24 * 3600 * 1000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def two_instances(make_instance: MakeInstance, clock: ManualClock) -> tuple[Instance, Instance]:
    return make_instance(1, clock), make_instance(2, clock)


async def test_a_message_committed_after_a_newer_one_is_not_skipped(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    """The race: id A is generated on one instance, id B > A on another; B is
    written and synced first, A is written afterwards. The next sync from the
    cursor the first one issued must still deliver A."""
    one, two = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    await one.send(alice, to_user=bob, client_msg_id="first")
    _, cursor = await full_sync(one, bob, "")

    clock.advance(60_000)
    early = one.ids.generate_now()  # A's id, generated now; its write stalls
    clock.advance(3_000)
    newer = await two.send(alice, to_user=bob, client_msg_id="newer")
    assert newer.message.message_id > early
    seen, cursor = await full_sync(one, bob, cursor)
    assert newer.message.message_id in seen and early not in seen

    one.ids.stage(early)
    late = await one.send(alice, to_user=bob, client_msg_id="late")  # 3 s after its id
    assert late.message.message_id == early
    seen, _ = await full_sync(two, bob, cursor)
    assert early in seen  # re-read from the window; the device drops `newer` by id
    assert seen == sorted(seen)


async def test_a_stalled_write_is_refused_then_reclaimed_under_a_fresh_id(
    two_instances: tuple[Instance, Instance],
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    await one.send(alice, to_user=bob, client_msg_id="opening")

    stale = one.ids.generate_now()
    clock.advance(WRITE_START_DEADLINE_MS + 1)
    one.ids.stage(stale)
    with pytest.raises(Unavailable) as refused:
        await one.send(alice, to_user=bob, client_msg_id="stalled")
    assert refused.value.reason == "SEND_IN_DOUBT"

    # The claim still names the stale id, which might yet land: retrying in
    # that window is refused too, on either instance.
    clock.advance(RECLAIM_AFTER_MS - WRITE_START_DEADLINE_MS - 2)
    with pytest.raises(Unavailable):
        await two.send(alice, to_user=bob, client_msg_id="stalled")

    clock.advance(2)
    stored = await two.send(alice, to_user=bob, client_msg_id="stalled")
    assert stored.message.message_id != stale and not stored.duplicate
    again = await one.send(alice, to_user=bob, client_msg_id="stalled")
    assert again.duplicate and again.message.message_id == stored.message.message_id

    rows = await message_store.page(
        stored.message.conversation_id, before_id=2**62, limit=100, oldest_bucket=0
    )
    assert [r.client_msg_id for r in rows].count("stalled") == 1
    assert await message_store.get(stored.message.conversation_id, stale) is None


async def test_concurrent_retries_on_two_instances_store_one_row(
    two_instances: tuple[Instance, Instance],
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    one, two = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    outcomes = await asyncio.gather(
        *(
            node.send(alice, to_user=bob, client_msg_id=f"twice-{i}")
            for i in range(20)
            for node in (one, two)
        )
    )
    by_key: dict[str, set[int]] = {}
    for outcome in outcomes:
        by_key.setdefault(outcome.message.client_msg_id, set()).add(outcome.message.message_id)
    assert all(len(ids) == 1 for ids in by_key.values())
    assert sum(not o.duplicate for o in outcomes) == 20
    rows = await message_store.page(
        outcomes[0].message.conversation_id, before_id=2**62, limit=100, oldest_bucket=0
    )
    assert sorted(r.client_msg_id for r in rows) == sorted(by_key)


async def test_sync_lists_newest_activity_first_and_pages_each_conversation(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    one, _ = two_instances
    me, quiet, chatty = unique("me"), unique("quiet"), unique("chatty")
    await add_users(pg_pool, me, quiet, chatty)
    await one.send(quiet, to_user=me, client_msg_id="q1")
    sent = []
    for i in range(120):
        clock.advance(1)
        sent.append((await one.send(chatty, to_user=me, client_msg_id=f"c{i}")).message.message_id)
    summary = await one.sync.summary(me, "")
    assert [v.member_ids for v in summary.conversations] == [
        tuple(sorted((me, chatty))),
        tuple(sorted((me, quiet))),
    ]
    assert summary.conversations[0].unread_count == 120
    chatty_id = summary.conversations[0].conversation_id
    pages, token = [], ""
    while True:
        page = await one.sync.page(me, chatty_id, cursor="", page_token=token, page_size=0)
        pages.append([m.message_id for m in page.messages])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [i for p in pages for i in p] == sent


async def test_sync_reads_across_bucket_boundaries(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    one, _ = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    sent = []
    for i in range(4):
        outcome = await one.send(alice, to_user=bob, client_msg_id=f"b{i}")
        sent.append(outcome.message.message_id)
        clock.advance(BUCKET_SPAN_MS + 1)  # every message in a bucket of its own
    conversation = outcome.message.conversation_id
    received, _ = await full_sync(one, bob, "")
    assert received == sent
    history = await one.history.page(bob, conversation, page_token="", page_size=3)
    assert [m.message_id for m in history.messages] == sent[::-1][:3]
    older = await one.history.page(
        bob, conversation, page_token=history.next_page_token, page_size=3
    )
    assert [m.message_id for m in older.messages] == sent[:1]
    assert older.next_page_token == ""


async def test_bad_cursors_and_page_requests_get_typed_errors(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    one, _ = two_instances
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    sent = await one.send(alice, to_user=bob, client_msg_id="m")
    conversation = sent.message.conversation_id
    future = sync_cursor(snowflake.lowest_id_at(clock.now + 3_600_000))
    for cursor in ("garbage", "s1.", "s1.zz", "p1.10", "s1.0010", future):
        with pytest.raises(InvalidArgument) as bad:
            await one.sync.summary(bob, cursor)
        assert bad.value.reason == "INVALID_CURSOR", cursor
    _, cursor = await full_sync(one, bob, "")
    with pytest.raises(InvalidArgument) as bad:
        await one.sync.page(bob, conversation, cursor=cursor, page_token="p1.1", page_size=0)
    assert bad.value.reason == "INVALID_PAGE_TOKEN"
    for size in (-1, 51, 2**31):
        with pytest.raises(InvalidArgument) as bad:
            await one.sync.page(bob, conversation, cursor="", page_token="", page_size=size)
        assert bad.value.reason == "INVALID_PAGE_SIZE"
    for who, where in ((eve, conversation), (bob, "no-such-conversation"), (bob, "x" * 500)):
        with pytest.raises(NotFound) as missing:
            await one.sync.page(who, where, cursor="", page_token="", page_size=0)
        assert missing.value.reason == "CONVERSATION_NOT_FOUND"
    assert (await one.sync.summary(eve, "")).conversations == ()


async def test_more_changed_conversations_than_a_summary_holds_is_reported_as_a_gap(
    two_instances: tuple[Instance, Instance],
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    make_instance: MakeInstance,
) -> None:
    one, _ = two_instances
    small = make_instance(3, clock, max_sync_conversations=3)
    me = unique("me")
    friends = [unique(f"friend{i}") for i in range(4)]
    await add_users(pg_pool, me, *friends)
    for friend in friends:
        clock.advance(1)
        await one.send(friend, to_user=me, client_msg_id="hi")
    summary = await small.sync.summary(me, "")
    assert summary.gap
    # The newest three are listed; the device must rebuild to find the rest.
    senders = [v.last_message.sender_user_id for v in summary.conversations if v.last_message]
    assert senders == friends[:0:-1]
    assert not (await one.sync.summary(me, "")).gap
