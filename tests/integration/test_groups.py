"""Groups against the real stores: membership, roles, windows, and their system messages."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from chatmesh import snowflake
from chatmesh.errors import (
    AlreadyExists,
    ChatmeshError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from chatmesh.v1 import common_pb2
from msgsvc.group_events import Change, GroupEvent, decode, encode
from msgsvc.groups import GroupOutcome
from msgsvc.model import SendOutcome, StoredMessage
from msgsvc.storage.directory import ADMIN, MEMBER, PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore
from msgsvc.storage.route_journal import RouteRef
from tests.conftest import add_users, unique
from tests.integration.conftest import MakeInstance
from tests.support.msgsvc_domain import Instance, ManualClock, full_sync

START_MS = snowflake.EPOCH_MS + 730 * 24 * 3600 * 1000
SYSTEM = common_pb2.MESSAGE_KIND_SYSTEM


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
def node(make_instance: MakeInstance, clock: ManualClock) -> Instance:
    return make_instance(41, clock)


@pytest.fixture
async def people(pg_pool: asyncpg.Pool) -> list[str]:
    users = [unique(name) for name in ("ann", "ben", "cat", "dan", "eve")]
    await add_users(pg_pool, *users)
    return users


async def create(node: Instance, actor: str, members: list[str], **options: str) -> GroupOutcome:
    return await node.groups.create(
        actor,
        "phone",
        client_group_id=options.get("client_group_id", unique("g")),
        title=options.get("title", "Hikers"),
        member_ids=members,
    )


async def readers(pg_pool: asyncpg.Pool, outcome: SendOutcome) -> set[str]:
    """Whom the fan-out routes a group message to: the members whose window holds it."""
    group = await PostgresDirectory(pg_pool).conversation(outcome.message.conversation_id)
    assert group is not None
    return set(group.recipients(outcome.message.message_id))


async def history(node: Instance, user: str, conversation_id: str) -> list[StoredMessage]:
    page = await node.history.page(user, conversation_id, page_token="", page_size=200)
    return list(page.messages)


def roles(outcome: GroupOutcome) -> dict[str, int]:
    return {m.user_id: m.role for m in outcome.group.members}


async def test_a_created_group_starts_with_its_system_message(
    node: Instance, people: list[str], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    ann, ben, cat, *_ = people
    created = await create(node, ann, [ben, cat, ben])
    group_id = created.group.conversation_id
    assert group_id.startswith("g")
    assert roles(created) == {ann: ADMIN, ben: MEMBER, cat: MEMBER}
    assert created.event is not None and created.event.kind == SYSTEM
    assert decode(created.event.body) == GroupEvent(
        ann, Change.CREATED, "Hikers", tuple(sorted((ann, ben, cat)))
    )
    assert set(created.recipients) == {ann, ben, cat}
    assert created.event.to_proto().system.group_created.title == "Hikers"

    clock.advance(1)
    hello = await node.send(ben, conversation=group_id, client_msg_id="m1")
    assert hello.via_log and hello.recipients == ()  # the fan-out routes it
    assert await readers(pg_pool, hello) == {ann, ben, cat}
    for user in (ann, ben, cat):
        assert [m.message_id for m in await history(node, user, group_id)] == [
            hello.message.message_id,
            created.event.message_id,
        ]
    [summary] = (await node.sync.summary(cat, "")).conversations
    assert (summary.title, summary.unread_count, summary.left) == ("Hikers", 2, False)
    assert [(m.user_id, m.role) for m in summary.members] == sorted(roles(created).items())


async def test_creating_again_with_the_same_key_returns_the_same_group(
    node: Instance, people: list[str]
) -> None:
    ann, ben, cat, *_ = people
    first = await create(node, ann, [ben], client_group_id="trip")
    again = await create(node, ann, [ben], client_group_id="trip")
    assert again.group == first.group and again.event == first.event
    with pytest.raises(InvalidArgument) as refused:
        await create(node, ann, [ben, cat], client_group_id="trip")
    assert refused.value.reason == "CLIENT_MSG_ID_REUSED"
    # Another device's key of the same name is another group.
    other = await node.groups.create(
        ann, "laptop", client_group_id="trip", title="Hikers", member_ids=[ben]
    )
    assert other.group.conversation_id != first.group.conversation_id


@pytest.mark.parametrize(
    ("title", "members", "error", "reason"),
    [
        ("", [], InvalidArgument, "MISSING_TITLE"),
        ("x" * 101, [], InvalidArgument, "TITLE_TOO_LONG"),
        ("ok", ["not valid"], InvalidArgument, "INVALID_USER_ID"),
        ("ok", ["ghost"], NotFound, "USER_NOT_FOUND"),
    ],
)
async def test_bad_creations_are_refused_and_create_nothing(
    node: Instance,
    people: list[str],
    pg_pool: asyncpg.Pool,
    title: str,
    members: list[str],
    error: type[ChatmeshError],
    reason: str,
) -> None:
    ann = people[0]
    with pytest.raises(error) as refused:
        await create(node, ann, [*members, people[1]], title=title)
    assert refused.value.reason == reason
    assert await pg_pool.fetchval("SELECT count(*) FROM members WHERE user_id = $1", ann) == 0


async def test_a_group_holds_at_most_its_limit(
    make_instance: MakeInstance, clock: ManualClock, people: list[str], pg_pool: asyncpg.Pool
) -> None:
    small = make_instance(42, clock, max_group_members=3)
    ann, ben, cat, dan, eve = people
    with pytest.raises(FailedPrecondition) as full:
        await create(small, ann, [ben, cat, dan])
    assert full.value.reason == "GROUP_FULL"
    group = (await create(small, ann, [ben])).group.conversation_id
    clock.advance(1)
    # Adds racing for the last seat: the group's lock lets exactly one in.
    extra = [unique("late") for _ in range(5)]
    await add_users(pg_pool, *extra)
    outcomes = await asyncio.gather(
        *(small.groups.add(ann, "phone", group, [user]) for user in [dan, eve, *extra]),
        return_exceptions=True,
    )
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["FailedPrecondition"] * 6 + ["GroupOutcome"], outcomes
    assert len((await small.groups.get(ann, group)).members) == 3


async def test_a_new_member_reads_from_the_message_that_added_them(
    node: Instance, people: list[str], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    ann, ben, cat, dan, _ = people
    group = (await create(node, ann, [ben])).group.conversation_id
    clock.advance(1)
    before = await node.send(ben, conversation=group, client_msg_id="before")
    clock.advance(1)
    added = await node.groups.add(ann, "phone", group, [cat, dan])
    assert added.event is not None
    assert set(added.recipients) == {ann, ben, cat, dan}
    assert {m.user_id: m.joined_id for m in added.group.members}[cat] == added.event.message_id
    clock.advance(1)
    after = await node.send(ben, conversation=group, client_msg_id="after")
    assert await readers(pg_pool, after) == {ann, ben, cat, dan}

    seen = [m.message_id for m in await history(node, cat, group)]
    assert seen == [after.message.message_id, added.event.message_id]
    assert before.message.message_id not in seen
    synced, _ = await full_sync(node, cat, "")
    assert synced == [added.event.message_id, after.message.message_id]
    [view] = (await node.sync.summary(cat, "")).conversations
    assert view.unread_count == 2  # the add and ben's message; nothing from before

    with pytest.raises(AlreadyExists) as twice:
        await node.groups.add(ann, "phone", group, [cat])
    assert twice.value.reason == "ALREADY_MEMBER"
    with pytest.raises(PermissionDenied) as not_admin:
        await node.groups.add(ben, "phone", group, [people[4]])
    assert not_admin.value.reason == "NOT_GROUP_ADMIN"


async def test_a_removed_member_gets_nothing_after_and_reads_nothing_more(
    node: Instance, people: list[str], clock: ManualClock, pg_pool: asyncpg.Pool
) -> None:
    ann, ben, cat, *_ = people
    group = (await create(node, ann, [ben, cat])).group.conversation_id
    clock.advance(1)
    early_id = node.ids.generate_now()  # a send that took its id before the removal
    clock.advance(1)
    removed = await node.groups.remove(ann, "phone", group, cat)
    assert removed.event is not None
    assert cat in removed.recipients  # she is told of her removal
    assert cat not in {m.user_id for m in removed.group.members}

    node.ids.stage(early_id)
    late = await node.send(ben, conversation=group, client_msg_id="in flight")
    assert late.message.message_id == early_id < removed.event.message_id
    assert cat in await readers(pg_pool, late)  # it precedes her removal in the order
    clock.advance(1)
    after = await node.send(ben, conversation=group, client_msg_id="after")
    assert cat not in await readers(pg_pool, after)

    for attempt in (
        node.send(cat, conversation=group, client_msg_id="still here?"),
        node.history.page(cat, group, page_token="", page_size=0),
        node.sync.page(cat, group, cursor="", page_token="", page_size=0),
        node.groups.get(cat, group),
        node.groups.leave(cat, "phone", group),
    ):
        with pytest.raises(NotFound) as gone:
            await attempt
        assert gone.value.reason == "CONVERSATION_NOT_FOUND"
    # Her sync lists the group once more, as left, ending at her removal.
    [view] = (await node.sync.summary(cat, "")).conversations
    assert view.left and view.unread_count == 0
    assert view.last_message is not None
    assert view.last_message.message_id == removed.event.message_id


async def test_membership_errors_are_typed_and_change_nothing(
    node: Instance, people: list[str], pg_pool: asyncpg.Pool
) -> None:
    ann, ben, cat, dan, _ = people
    group = (await create(node, ann, [ben, cat])).group.conversation_id
    before = await pg_pool.fetch(
        "SELECT * FROM members WHERE conversation_id = $1 ORDER BY user_id", group
    )
    cases = [
        (node.groups.remove(ben, "phone", group, cat), PermissionDenied, "NOT_GROUP_ADMIN"),
        (node.groups.rename(ben, "phone", group, "Mine"), PermissionDenied, "NOT_GROUP_ADMIN"),
        (node.groups.remove(ann, "phone", group, ann), InvalidArgument, "REMOVE_SELF"),
        (node.groups.remove(ann, "phone", group, dan), NotFound, "NOT_A_MEMBER"),
        (node.groups.add(ann, "phone", group, ["ghost-x"]), NotFound, "USER_NOT_FOUND"),
        (node.groups.add(ann, "phone", group, []), InvalidArgument, "MISSING_USER_IDS"),
        (node.groups.rename(ann, "phone", group, "t" * 101), InvalidArgument, "TITLE_TOO_LONG"),
        (node.groups.set_role(ann, "phone", group, ann, MEMBER), FailedPrecondition, "LAST_ADMIN"),
        (node.groups.set_role(ann, "phone", group, ben, 7), InvalidArgument, "INVALID_ROLE"),
        (node.groups.add(dan, "phone", group, [dan]), NotFound, "CONVERSATION_NOT_FOUND"),
        (node.groups.get(ann, "gnope"), NotFound, "CONVERSATION_NOT_FOUND"),
        (
            node.groups.add(ann, "unregistered", group, [dan]),
            PermissionDenied,
            "DEVICE_NOT_REGISTERED",
        ),
    ]
    for attempt, error, reason in cases:
        with pytest.raises(error) as refused:
            await attempt
        assert refused.value.reason == reason
    after = await pg_pool.fetch(
        "SELECT * FROM members WHERE conversation_id = $1 ORDER BY user_id", group
    )
    assert after == before
    assert len(await history(node, ann, group)) == 1  # the creation alone


async def test_roles_renames_and_the_last_admin_leaving(
    node: Instance, people: list[str], clock: ManualClock
) -> None:
    ann, ben, cat, *_ = people
    created = await create(node, ann, [ben, cat])
    group = created.group.conversation_id
    clock.advance(1)
    renamed = await node.groups.rename(ann, "phone", group, "  Summit  ")
    assert renamed.group.title == "Summit" and renamed.event is not None
    unchanged = await node.groups.rename(ann, "phone", group, "Summit")
    assert unchanged.event is None  # nothing changed: no system message
    clock.advance(1)
    promoted = await node.groups.set_role(ann, "phone", group, cat, ADMIN)
    assert roles(promoted)[cat] == ADMIN
    clock.advance(1)
    demoted = await node.groups.set_role(cat, "phone", group, ann, MEMBER)
    assert roles(demoted) == {ann: MEMBER, ben: MEMBER, cat: ADMIN}

    # The last admin leaves: the longest-standing member (ann and ben joined
    # together; ann sorts first) is promoted in the same message.
    clock.advance(1)
    left = await node.groups.leave(cat, "phone", group)
    assert left.event is not None
    assert decode(left.event.body) == GroupEvent(cat, Change.LEFT, user_ids=(ann,))
    assert roles(left) == {ann: ADMIN, ben: MEMBER}
    kinds = [
        decode(m.body).change for m in reversed(await history(node, ann, group)) if m.kind == SYSTEM
    ]
    assert kinds == [Change.CREATED, Change.RENAMED, Change.ROLE, Change.ROLE, Change.LEFT]


async def test_a_change_recorded_but_not_applied_is_applied_by_recovery(
    node: Instance,
    people: list[str],
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    """The process wrote the system message and journaled it, then died
    before its transaction committed; and an older change arrives after a
    newer one. Recovery applies what is missing and undoes nothing."""
    ann, ben, cat, dan, _ = people
    group = (await create(node, ann, [ben])).group.conversation_id
    clock.advance(1)
    stale_id = node.ids.generate_now()
    clock.advance(1)
    added = await node.groups.add(ann, "phone", group, [cat])
    assert added.event is not None
    clock.advance(1)
    orphan_id = node.ids.generate_now()
    event = GroupEvent(ann, Change.ADDED, user_ids=(dan,))
    await message_store.write(
        StoredMessage(
            orphan_id,
            group,
            ann,
            "phone",
            "",
            SYSTEM,
            encode(event),
            snowflake.timestamp_ms(orphan_id),
        )
    )
    await node.service.journal.record(RouteRef(group, orphan_id))
    # An old removal of cat, older than her addition: it must not undo it.
    await GroupStore(pg_pool).apply(group, stale_id, GroupEvent(ann, Change.REMOVED, (cat,)))

    assert await node.service.recovery.replay_previous_life() >= 1
    members = await PostgresDirectory(pg_pool).conversation(group)
    assert members is not None
    assert set(members.member_ids) == {ann, ben, cat, dan}
    joined = {m.user_id: m.joined_id for m in members.members}
    assert joined[dan] == orphan_id and joined[cat] == added.event.message_id


class OffsetClock:
    """Real time, shifted: instances whose clocks disagree."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms


async def test_a_change_takes_an_id_above_every_message_marked_before_it(
    make_instance: MakeInstance, people: list[str]
) -> None:
    """A send on an instance whose clock leads by 300 ms marks the group with
    an id from the future; a change made right after on a lagging instance
    still gets a larger id, so every later message is routed by the new
    membership."""
    ann, ben, cat, *_ = people
    behind = make_instance(43, OffsetClock(0))  # type: ignore[arg-type]
    ahead = make_instance(44, OffsetClock(300))  # type: ignore[arg-type]
    group = (await create(behind, ann, [ben])).group.conversation_id
    leading = await ahead.send(ben, conversation=group, client_msg_id="from the future")
    added = await behind.groups.add(ann, "phone", group, [cat])
    assert added.event is not None
    assert added.event.message_id > leading.message.message_id

    far_ahead = make_instance(45, OffsetClock(10_000))  # type: ignore[arg-type]
    await far_ahead.send(ben, conversation=group, client_msg_id="from far ahead")
    with pytest.raises(Unavailable) as behind_too_far:
        await behind.groups.rename(ann, "phone", group, "Later")
    assert behind_too_far.value.reason == "CLOCK_BEHIND"


async def test_a_send_reads_only_the_senders_row_of_a_group(
    node: Instance, people: list[str], pg_pool: asyncpg.Pool
) -> None:
    """Authorising a group send costs the same for 3 members or 500."""
    ann, ben, cat, dan, _ = people
    group = (await create(node, ann, [ben, cat, dan])).group.conversation_id
    seen = await PostgresDirectory(pg_pool).conversation_for(group, ben)
    assert seen is not None
    assert [m.user_id for m in seen.members] == [ben] and seen.member_ids == (ben,)
    stranger = await PostgresDirectory(pg_pool).conversation_for(group, "nobody")
    assert stranger is not None and stranger.members == () and stranger.member_ids == ()
