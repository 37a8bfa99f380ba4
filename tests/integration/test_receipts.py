"""Receipt watermarks against the real stores: forward only, typed refusals, unread counts."""

from __future__ import annotations

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmesh import snowflake
from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.v1 import common_pb2
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock

DELIVERED = common_pb2.RECEIPT_KIND_DELIVERED
READ = common_pb2.RECEIPT_KIND_READ


@pytest.fixture
def node(make_instance: MakeInstance) -> Instance:
    return make_instance(3, ManualClock(snowflake.EPOCH_MS + 800 * 24 * 3600 * 1000))


async def _chat(node: Instance, pg_pool: asyncpg.Pool, count: int) -> tuple[str, str, list[int]]:
    """Alice sends Bob ``count`` messages; returns (alice, bob, ids)."""
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    ids = []
    for i in range(count):
        node.sender._clock.advance(1)  # type: ignore[attr-defined]
        ids.append((await node.send(alice, to_user=bob, client_msg_id=f"m{i}")).message.message_id)
    return alice, bob, ids


async def test_read_implies_delivered_and_old_reports_change_nothing(
    node: Instance, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, ids = await _chat(node, pg_pool, 3)
    conversation = (await node.sync.summary(bob, "")).conversations[0].conversation_id
    first = await node.receipts.mark(bob, conversation, DELIVERED, ids[0])
    assert first.advanced and first.state.delivered_message_id == ids[0]
    assert first.state.read_message_id == 0
    read = await node.receipts.mark(bob, conversation, READ, ids[1])
    assert read.advanced
    assert (read.state.delivered_message_id, read.state.read_message_id) == (ids[1], ids[1])
    for kind, message_id in ((DELIVERED, ids[0]), (READ, ids[0]), (READ, ids[1])):
        stale = await node.receipts.mark(bob, conversation, kind, message_id)
        assert not stale.advanced and stale.state == read.state
    assert set(read.member_ids) == {alice, bob}


async def test_unread_count_follows_the_read_watermark_and_own_sends(
    node: Instance, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, ids = await _chat(node, pg_pool, 5)
    [view] = (await node.conversations.page(bob, page_size=0, page_token="")).conversations
    assert view.unread_count == 5 and view.last_message is not None
    assert view.last_message.message_id == ids[-1]
    await node.receipts.mark(bob, view.conversation_id, READ, ids[2])
    [view] = (await node.conversations.page(bob, page_size=0, page_token="")).conversations
    assert view.unread_count == 2
    # The author has read their own messages; replying marks what came before read.
    [alice_view] = (await node.conversations.page(alice, page_size=0, page_token="")).conversations
    assert alice_view.unread_count == 0
    await node.send(bob, to_user=alice, client_msg_id="reply")
    [view] = (await node.conversations.page(bob, page_size=0, page_token="")).conversations
    assert view.unread_count == 0
    states = {w.user_id: w for w in view.member_watermarks}
    assert states[bob].read_message_id == view.last_message.message_id  # type: ignore[union-attr]
    assert states[alice].read_message_id == ids[-1]


async def test_bad_receipts_get_typed_errors_and_change_nothing(
    node: Instance, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, ids = await _chat(node, pg_pool, 2)
    eve = unique("eve")
    await add_users(pg_pool, eve)
    conversation = (await node.sync.summary(bob, "")).conversations[0].conversation_id
    other = await node.send(eve, to_user=alice, client_msg_id="elsewhere")
    cases: list[tuple[str, str, int, int, type[Exception], str]] = [
        (bob, conversation, 0, ids[0], InvalidArgument, "UNKNOWN_RECEIPT_KIND"),
        (bob, conversation, 99, ids[0], InvalidArgument, "UNKNOWN_RECEIPT_KIND"),
        (bob, conversation, READ, 0, InvalidArgument, "INVALID_MESSAGE_ID"),
        (bob, conversation, READ, 2**64 - 1, InvalidArgument, "INVALID_MESSAGE_ID"),
        (bob, conversation, READ, ids[-1] + 1, NotFound, "MESSAGE_NOT_FOUND"),
        (bob, conversation, READ, other.message.message_id, NotFound, "MESSAGE_NOT_FOUND"),
        (eve, conversation, READ, ids[0], NotFound, "CONVERSATION_NOT_FOUND"),
        (bob, "nope", READ, ids[0], NotFound, "CONVERSATION_NOT_FOUND"),
        (bob, "", READ, ids[0], InvalidArgument, "MISSING_CONVERSATION_ID"),
    ]
    for user, where, kind, message_id, error, reason in cases:
        with pytest.raises(error) as refused:
            await node.receipts.mark(user, where, kind, message_id)
        assert refused.value.reason == reason  # type: ignore[attr-defined]
    [view] = (await node.conversations.page(bob, page_size=0, page_token="")).conversations
    states = {w.user_id: w for w in view.member_watermarks}
    assert (states[bob].delivered_message_id, states[bob].read_message_id) == (0, 0)


# The watermark state machine: any sequence of reports, in any order, by
# either member, ends in the state a simple model predicts after every step.
reports = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.sampled_from([DELIVERED, READ]), st.integers(0, 5)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reports=reports)
async def test_watermarks_only_move_forward_whatever_the_report_order(
    node: Instance, pg_pool: asyncpg.Pool, reports: list[tuple[int, int, int]]
) -> None:
    alice, bob, ids = await _chat(node, pg_pool, 6)
    conversation = (await node.sync.summary(bob, "")).conversations[0].conversation_id
    members = (alice, bob)
    # Alice wrote them all, so she starts having read them all.
    model = {alice: (ids[-1], ids[-1]), bob: (0, 0)}
    for who, kind, index in reports:
        user = members[who]
        outcome = await node.receipts.mark(user, conversation, kind, ids[index])
        delivered, read = model[user]
        after = (
            max(delivered, ids[index]),
            max(read, ids[index]) if kind == READ else read,
        )
        assert outcome.advanced == (after != model[user])
        model[user] = after
        state = outcome.state
        assert (state.delivered_message_id, state.read_message_id) == after
        assert state.delivered_message_id >= state.read_message_id
