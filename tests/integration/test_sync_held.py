"""Sync pages that leave out what the device names as held, against the real
stores, two msgsvc instances and a hand-set clock. Decision 0008's guarantee
must hold unchanged: only the named ids are left out."""

from __future__ import annotations

import asyncpg
import pytest

from chatmesh import snowflake
from chatmesh.errors import InvalidArgument
from msgsvc.sync import MAX_HELD_IDS
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock, full_sync

START_MS = snowflake.EPOCH_MS + 701 * 24 * 3600 * 1000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def two_instances(make_instance: MakeInstance, clock: ManualClock) -> tuple[Instance, Instance]:
    return make_instance(1, clock), make_instance(2, clock)


async def _read_all(
    node: Instance, user: str, conversation: str, cursor: str, held: list[int]
) -> list[list[int]]:
    pages, token = [], ""
    while True:
        page = await node.sync.page(
            user, conversation, cursor=cursor, page_token=token, page_size=0, held_ids=held
        )
        pages.append([m.message_id for m in page.messages])
        token = page.next_page_token
        if not token:
            return pages


async def test_held_ids_are_left_out_and_pages_stay_full_and_in_order(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    one, _ = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    sent = []
    for i in range(130):
        clock.advance(1)
        sent.append((await one.send(alice, to_user=bob, client_msg_id=f"m{i}")).message.message_id)
    conversation = (await one.sync.summary(bob, "")).conversations[0].conversation_id
    held = sent[:40] + sent[41:100:2]  # a run of held ids, then every other one
    pages = await _read_all(one, bob, conversation, "", held)
    missing = [i for i in sent if i not in set(held)]
    assert [i for p in pages for i in p] == missing
    assert [len(p) for p in pages] == [50, len(missing) - 50]
    # Everything held: one empty page that ends the conversation.
    assert await _read_all(one, bob, conversation, "", sent[:MAX_HELD_IDS]) == [[]]
    # The device's own view, through the client library: nothing it named comes back.
    received, _ = await full_sync(one, bob, "", held=set(held))
    assert received == missing


async def test_a_late_commit_below_a_held_id_is_still_delivered(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    """The race of decision 0008 with a device that names what it holds: it
    got `newer` live (so holds an id above the late one) and says so. The late
    message, committed afterwards with a smaller id, must still come; `newer`
    must not come again."""
    one, two = two_instances
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    first = await one.send(alice, to_user=bob, client_msg_id="first")
    device_holds = {first.message.message_id}
    _, cursor = await full_sync(one, bob, "", held=device_holds)

    clock.advance(60_000)
    early = one.ids.generate_now()  # the late message's id; its write stalls
    clock.advance(3_000)
    newer = await two.send(alice, to_user=bob, client_msg_id="newer")
    device_holds.add(newer.message.message_id)  # delivered live
    assert newer.message.message_id > early
    seen, cursor = await full_sync(one, bob, cursor, held=device_holds)
    assert seen == []  # the device already has everything committed so far

    one.ids.stage(early)
    late = await one.send(alice, to_user=bob, client_msg_id="late")  # missed live
    assert late.message.message_id == early
    seen, _ = await full_sync(two, bob, cursor, held=device_holds)
    assert seen == [early]


async def test_too_many_foreign_or_odd_held_ids_are_refused_or_ignored(
    two_instances: tuple[Instance, Instance], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    one, _ = two_instances
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    await add_users(pg_pool, alice, bob, carol)
    ours = [(await one.send(alice, to_user=bob, client_msg_id=f"o{i}")).message for i in range(3)]
    theirs = [(await one.send(carol, to_user=bob, client_msg_id=f"t{i}")).message for i in range(3)]
    conversation = ours[0].conversation_id
    expected = [m.message_id for m in ours]

    too_many = list(range(1, MAX_HELD_IDS + 2))
    with pytest.raises(InvalidArgument) as refused:
        await one.sync.page(
            bob, conversation, cursor="", page_token="", page_size=0, held_ids=too_many
        )
    assert refused.value.reason == "TOO_MANY_HELD_IDS"
    # Repeats count once: the cap is on distinct ids.
    at_cap = list(range(1, MAX_HELD_IDS + 1)) * 2
    assert await _read_all(one, bob, conversation, "", at_cap) == [expected]
    # Another conversation's ids, zero and the largest uint64 match nothing here.
    odd = [m.message_id for m in theirs] + [0, 2**64 - 1, 2**63]
    assert await _read_all(one, bob, conversation, "", odd) == [expected]
    # Ids below where the page starts are ignored: they take no part in the
    # page, which holds exactly what it would without them.
    clock.advance(120_000)
    _, cursor = await full_sync(one, bob, "")  # its floor is above `expected`
    fresh = (await one.send(alice, to_user=bob, client_msg_id="fresh")).message.message_id
    assert await _read_all(one, bob, conversation, cursor, []) == [[fresh]]
    assert await _read_all(one, bob, conversation, cursor, expected) == [[fresh]]
