"""Property: whatever the interleaving, an ack names the row of exactly its send.

Several devices of several users (and the service scope) send and resend
with deliberately colliding client_msg_ids, through both msgsvc instances,
in rounds whose attempts race each other (claims of one round share Redis
pipelines). Afterwards Cassandra must hold one row per (user, device,
client_msg_id) that was acked, with the acked content, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmesh import snowflake
from chatmesh.conversation import direct_conversation_id
from chatmesh.errors import ChatmeshError
from msgsvc.model import SendOutcome
from msgsvc.storage.messages import CassandraMessageStore, bucket_at
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock

USERS = 3  # senders are the first two; targets any other
DEVICES = ("phone", "laptop", "")  # "": a service sending on the user's behalf
CLIENT_MSG_IDS = ("m1", "m2")
BODIES = (b"a", b"b")


@dataclass(frozen=True)
class Send:
    """One attempt: which instance, who, which id, what content."""

    instance: int
    sender: int
    device: str
    client_msg_id: str
    target: int  # offset from the sender to the recipient, 1 or 2
    body: bytes


@dataclass(frozen=True)
class Resend:
    """The same attempt as an earlier one (by index, wrapped), on some instance."""

    earlier: int
    instance: int


attempts = st.one_of(
    st.builds(
        Send,
        instance=st.sampled_from([0, 1]),
        sender=st.sampled_from([0, 1]),
        device=st.sampled_from(DEVICES),
        client_msg_id=st.sampled_from(CLIENT_MSG_IDS),
        target=st.sampled_from([1, 2]),
        body=st.sampled_from(BODIES),
    ),
    st.builds(Resend, earlier=st.integers(0, 50), instance=st.sampled_from([0, 1])),
)
# Attempts within a round run concurrently; rounds run one after another.
rounds = st.lists(st.lists(attempts, min_size=1, max_size=6), min_size=1, max_size=5)


START_MS = snowflake.EPOCH_MS + 720 * 24 * 3600 * 1000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def nodes(make_instance: MakeInstance, clock: ManualClock) -> tuple[Instance, Instance]:
    return make_instance(31, clock), make_instance(32, clock)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=rounds)
async def test_every_ack_names_the_one_row_of_its_own_send(
    nodes: tuple[Instance, Instance],
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
    plan: list[list[Send | Resend]],
) -> None:
    users = [unique(f"u{i}") for i in range(USERS)]
    await add_users(pg_pool, *users)
    sends: list[Send] = []
    results: list[tuple[Send, SendOutcome | ChatmeshError]] = []
    for round_ in plan:
        batch = [_resolve(a, sends) for a in round_]
        sends.extend(batch)
        outcomes = await asyncio.gather(
            *(_attempt(nodes[s.instance], users, s) for s in batch), return_exceptions=True
        )
        for send, outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, SendOutcome | ChatmeshError):
                raise outcome
            results.append((send, outcome))
        clock.advance(1)

    # The content each key was first bound to: every ack of the key carries it.
    acked: dict[tuple[int, str, str], set[tuple[int, str, bytes]]] = defaultdict(set)
    firsts: dict[tuple[int, str, str], int] = defaultdict(int)
    refused: list[tuple[Send, ChatmeshError]] = []
    for send, outcome in results:
        key = (send.sender, send.device, send.client_msg_id)
        if isinstance(outcome, ChatmeshError):
            refused.append((send, outcome))
            continue
        message = outcome.message
        assert (message.sender_user_id, message.sender_device_id, message.client_msg_id) == (
            users[send.sender],
            send.device,
            send.client_msg_id,
        )
        assert message.conversation_id == _conversation(users, send)
        assert message.body == send.body
        acked[key].add((message.message_id, message.conversation_id, message.body))
        firsts[key] += not outcome.duplicate

    # No two sends share an id; every key has one id and one first (non-duplicate) ack.
    for key, bindings in acked.items():
        assert len(bindings) == 1, f"{key} acked as {bindings}"
        assert firsts[key] == 1, f"{key} acked as new {firsts[key]} times"
    ids = [next(iter(b))[0] for b in acked.values()]
    assert len(ids) == len(set(ids))

    # The only refusal is a reuse with other content than the key's binding.
    for send, error in refused:
        assert error.reason == "CLIENT_MSG_ID_REUSED", error
        key = (send.sender, send.device, send.client_msg_id)
        if key in acked:
            ((_, conversation_id, body),) = acked[key]
            assert (conversation_id, body) != (_conversation(users, send), send.body)

    # Cassandra holds exactly the acked rows, one per send, with its content.
    stored: dict[tuple[int, str, str], list[tuple[int, str, bytes]]] = defaultdict(list)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        conversation_id = direct_conversation_id(users[a], users[b])
        for row in await message_store.page(
            conversation_id,
            before_id=snowflake.lowest_id_at(clock.now + 1),
            limit=500,
            oldest_bucket=bucket_at(START_MS),
        ):
            key = (users.index(row.sender_user_id), row.sender_device_id, row.client_msg_id)
            stored[key].append((row.message_id, conversation_id, row.body))
    assert {key: set(rows) for key, rows in stored.items()} == acked
    assert all(len(rows) == 1 for rows in stored.values()), "a send stored twice"


def _resolve(attempt: Send | Resend, earlier: list[Send]) -> Send:
    if isinstance(attempt, Send):
        return attempt
    if not earlier:
        # Nothing to resend yet: a first send from the earliest device instead.
        return Send(attempt.instance, 0, DEVICES[0], CLIENT_MSG_IDS[0], 1, BODIES[0])
    original = earlier[attempt.earlier % len(earlier)]
    return Send(
        attempt.instance,
        original.sender,
        original.device,
        original.client_msg_id,
        original.target,
        original.body,
    )


def _conversation(users: list[str], send: Send) -> str:
    return direct_conversation_id(users[send.sender], users[(send.sender + send.target) % USERS])


async def _attempt(node: Instance, users: list[str], send: Send) -> SendOutcome:
    return await node.send(
        users[send.sender],
        to_user=users[(send.sender + send.target) % USERS],
        client_msg_id=send.client_msg_id,
        body=send.body,
        device=send.device,
    )
