"""Property: chained sync cursors never skip a message, whatever the interleaving.

Messages get their ids on two msgsvc instances and are written after any
delay the send path allows; devices sync at arbitrary moments in between,
each sync starting from the cursor the previous one issued. Everything runs
against the real stores, with a hand-set clock that starts just before a
bucket boundary so that ids and reads straddle partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmesh import snowflake
from msgsvc.storage.messages import BUCKET_SPAN_MS
from msgsvc.visibility import WRITE_START_DEADLINE_MS
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock, full_sync

BOUNDARY_MS = snowflake.EPOCH_MS + 90 * BUCKET_SPAN_MS


@dataclass(frozen=True)
class Planned:
    instance: int
    generated_at: int  # ms after the start
    write_delay: int  # ms between taking the id and writing the row


messages = st.lists(
    st.builds(
        Planned,
        instance=st.sampled_from([0, 1]),
        generated_at=st.integers(0, 60_000),
        write_delay=st.integers(0, WRITE_START_DEADLINE_MS),
    ),
    min_size=1,
    max_size=8,
)
sync_times = st.lists(st.integers(0, 70_000), min_size=1, max_size=4)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(BOUNDARY_MS - 30_000)


@pytest.fixture
def nodes(make_instance: MakeInstance, clock: ManualClock) -> tuple[Instance, Instance]:
    return make_instance(11, clock), make_instance(12, clock)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(planned=messages, syncs=sync_times)
async def test_chained_cursors_deliver_every_committed_message(
    nodes: tuple[Instance, Instance],
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    planned: list[Planned],
    syncs: list[int],
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    start = clock.now
    # (time, order, action): generating before writing before syncing at a tie.
    events: list[tuple[int, int, int, str]] = []
    for index, plan in enumerate(planned):
        events.append((plan.generated_at, 0, index, "generate"))
        events.append((plan.generated_at + plan.write_delay, 1, index, "write"))
    events.extend((at, 2, j, "sync") for j, at in enumerate(syncs))
    ids: dict[int, int] = {}
    written: set[int] = set()
    received: set[int] = set()
    cursor = ""
    for at, _, index, action in sorted(events):
        clock.now = max(clock.now, start + at)
        if action == "generate":
            ids[index] = nodes[planned[index].instance].ids.generate_now()
        elif action == "write":
            node = nodes[planned[index].instance]
            node.ids.stage(ids[index])
            outcome = await node.send(alice, to_user=bob, client_msg_id=f"m{index}")
            assert outcome.message.message_id == ids[index]
            written.add(ids[index])
        else:
            seen, cursor = await full_sync(nodes[index % 2], bob, cursor)
            received.update(seen)
    clock.advance(1)
    seen, _ = await full_sync(nodes[0], bob, cursor)
    received.update(seen)
    assert received == written
