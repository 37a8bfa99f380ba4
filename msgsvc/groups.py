"""Groups: creating them and changing their membership, title and roles.

Every change is validated and recorded under the conversation's lock
(``msgsvc.storage.groups``): its system message gets an id above every
message marked before it, is written to Cassandra and journaled for routing
like any message, and the change is applied to the member rows in the same
transaction. The system message is the record of the change: if the
transaction fails after the write, routing and recovery apply it from the
message (decision 0011).

The same holds for broadcast channels, whose limit is their own
(``max_channel_members``) and where only admins post (msgsvc.sending).

Rules: admins add, remove, rename and set roles; any member may leave; a
group has at most ``max_members`` current members and, while it has members,
at least one admin (the last admin leaving promotes the longest-standing
member; demoting the last admin is refused). Only current members may read
or change a group; to anyone else it does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatmesh import snowflake
from chatmesh.clock import Clock
from chatmesh.conversation import group_conversation_id, is_valid_user_id
from chatmesh.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from chatmesh.v1 import common_pb2
from msgsvc.devices import DeviceCheck
from msgsvc.group_events import Change, GroupEvent, encode
from msgsvc.message_log import LogEntry, MessageLog
from msgsvc.model import MAX_CLIENT_MSG_ID_CHARS, StoredMessage
from msgsvc.sending import IdSource
from msgsvc.storage.directory import (
    ADMIN,
    CHANNEL,
    GROUP,
    MEMBER,
    MULTI_MEMBER,
    Conversation,
    Directory,
    Member,
)
from msgsvc.storage.groups import GroupStore, GroupTransaction
from msgsvc.storage.messages import MessageStore
from msgsvc.storage.route_journal import RouteJournal, RouteRef
from msgsvc.visibility import may_start_write

MAX_GROUP_MEMBERS = 500  # the product's limit for groups; beyond it, a broadcast channel
MAX_CHANNEL_MEMBERS = 100_000  # each member costs a row and a session lookup per nudge
MAX_TITLE_CHARS = 100
# A change's id must exceed the newest message id marked in the group. Ids of
# other instances may lead this one's clock by their clock difference; wait
# that out, up to this long, rather than fail the change.
MAX_ID_WAIT_MS = 2_000


@dataclass(frozen=True, slots=True)
class GroupView:
    conversation_id: str
    title: str
    created_by: str
    members: tuple[Member, ...]  # current members, by user id
    max_members: int
    kind: int = GROUP


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    group: GroupView
    event: StoredMessage | None  # the system message; None when nothing changed
    recipients: tuple[str, ...] = ()  # who may read the event
    journal_entry: str = ""  # the route journal entry to clear once committed


Decide = Callable[[Conversation], GroupEvent | None]


class Groups:
    def __init__(
        self,
        *,
        store: GroupStore,
        directory: Directory,
        messages: MessageStore,
        ids: IdSource,
        clock: Clock,
        devices: DeviceCheck,
        journal: RouteJournal,
        log: MessageLog,
        max_members: int = MAX_GROUP_MEMBERS,
        max_channel_members: int = MAX_CHANNEL_MEMBERS,
    ) -> None:
        self._log = log
        self.max_channel_members = max_channel_members
        self._store = store
        self._directory = directory
        self._messages = messages
        self._ids = ids
        self._clock = clock
        self._devices = devices
        self._journal = journal
        self.max_members = max_members

    # -- creating ------------------------------------------------------------------

    async def create(
        self,
        actor: str,
        device_id: str,
        *,
        client_group_id: str,
        title: str,
        member_ids: Sequence[str],
        kind: int = GROUP,
        on_behalf_of: str = "",
    ) -> GroupOutcome:
        if kind not in MULTI_MEMBER:
            raise InvalidArgument("INVALID_KIND", "kind must be GROUP or CHANNEL")
        if not client_group_id:
            raise InvalidArgument("MISSING_CLIENT_GROUP_ID", "client_group_id is required")
        if len(client_group_id) > MAX_CLIENT_MSG_ID_CHARS:
            raise InvalidArgument(
                "CLIENT_GROUP_ID_TOO_LONG",
                f"client_group_id exceeds {MAX_CLIENT_MSG_ID_CHARS} characters",
            )
        title = _valid_title(title)
        members = tuple(sorted({*_valid_user_ids(member_ids), actor}))
        if len(members) > self._limit(kind):
            raise _group_full(self._limit(kind))
        await self._require_device(actor, device_id, on_behalf_of)
        known = await self._directory.existing_users(members)
        if actor not in known:
            raise NotFound("SENDER_NOT_FOUND", "the creating user is not registered")
        _require_known(members, known)
        conversation_id = group_conversation_id(actor, device_id, client_group_id)
        event = GroupEvent(actor, Change.CREATED, title, members, kind=kind)
        async with self._store.creating(conversation_id) as txn:
            if txn.conversation is not None:
                return await self._created_before(txn.conversation, event)
            return await self._record(txn, conversation_id, event, device_id, above=0)

    async def _created_before(self, group: Conversation, event: GroupEvent) -> GroupOutcome:
        """A retried creation: the same group, if it asked for the same one."""
        created = await self._messages.get(group.conversation_id, group.created_event_id)
        if created is None or created.body != encode(event):
            raise InvalidArgument(
                "CLIENT_MSG_ID_REUSED",
                "this device already created a different group with this client_group_id",
            )
        return GroupOutcome(self._view(group), created, group.recipients(created.message_id))

    # -- changing --------------------------------------------------------------------

    async def add(
        self,
        actor: str,
        device_id: str,
        conversation_id: str,
        user_ids: Sequence[str],
        *,
        on_behalf_of: str = "",
    ) -> GroupOutcome:
        added = tuple(sorted(set(_valid_user_ids(user_ids))))
        if not added:
            raise InvalidArgument("MISSING_USER_IDS", "name at least one user to add")
        known = await self._directory.existing_users(added)
        _require_known(added, known)

        def decide(group: Conversation) -> GroupEvent:
            _require_admin(group, actor)
            for user in added:
                if group.member(user) is not None:
                    raise AlreadyExists("ALREADY_MEMBER", f"{user!r} is already a member")
            if len(group.member_ids) + len(added) > self._limit(group.kind):
                raise _group_full(self._limit(group.kind))
            return GroupEvent(actor, Change.ADDED, user_ids=added)

        return await self._change(actor, device_id, conversation_id, decide, on_behalf_of)

    async def remove(
        self,
        actor: str,
        device_id: str,
        conversation_id: str,
        user_id: str,
        *,
        on_behalf_of: str = "",
    ) -> GroupOutcome:
        def decide(group: Conversation) -> GroupEvent:
            _require_admin(group, actor)
            if user_id == actor:
                raise InvalidArgument("REMOVE_SELF", "to remove yourself, leave the group")
            if group.member(user_id) is None:
                raise NotFound("NOT_A_MEMBER", f"{user_id!r} is not a member")
            return GroupEvent(actor, Change.REMOVED, user_ids=(user_id,))

        return await self._change(actor, device_id, conversation_id, decide, on_behalf_of)

    async def leave(
        self, actor: str, device_id: str, conversation_id: str, *, on_behalf_of: str = ""
    ) -> GroupOutcome:
        def decide(group: Conversation) -> GroupEvent:
            me = group.member(actor)
            assert me is not None  # _change checked membership
            others = [m for m in group.members if m.current and m.user_id != actor]
            promoted: tuple[str, ...] = ()
            if me.role == ADMIN and others and all(m.role != ADMIN for m in others):
                # The group keeps an admin: the longest-standing member.
                longest = min(others, key=lambda m: (m.joined_id, m.user_id))
                promoted = (longest.user_id,)
            return GroupEvent(actor, Change.LEFT, user_ids=promoted)

        return await self._change(actor, device_id, conversation_id, decide, on_behalf_of)

    async def rename(
        self,
        actor: str,
        device_id: str,
        conversation_id: str,
        title: str,
        *,
        on_behalf_of: str = "",
    ) -> GroupOutcome:
        title = _valid_title(title)

        def decide(group: Conversation) -> GroupEvent | None:
            _require_admin(group, actor)
            if group.title == title:
                return None
            return GroupEvent(actor, Change.RENAMED, title=title)

        return await self._change(actor, device_id, conversation_id, decide, on_behalf_of)

    async def set_role(
        self,
        actor: str,
        device_id: str,
        conversation_id: str,
        user_id: str,
        role: int,
        *,
        on_behalf_of: str = "",
    ) -> GroupOutcome:
        if role not in (MEMBER, ADMIN):
            raise InvalidArgument("INVALID_ROLE", "role must be MEMBER or ADMIN")

        def decide(group: Conversation) -> GroupEvent | None:
            _require_admin(group, actor)
            target = group.member(user_id)
            if target is None:
                raise NotFound("NOT_A_MEMBER", f"{user_id!r} is not a member")
            if target.role == role:
                return None
            admins = [m for m in group.members if m.current and m.role == ADMIN]
            if role == MEMBER and admins == [target]:
                raise FailedPrecondition(
                    "LAST_ADMIN", "a group keeps at least one admin: promote another first"
                )
            return GroupEvent(actor, Change.ROLE, user_ids=(user_id,), role=role)

        return await self._change(actor, device_id, conversation_id, decide, on_behalf_of)

    async def get(self, requester: str, conversation_id: str) -> GroupView:
        group = await self._directory.conversation(conversation_id)
        if group is None or group.kind not in MULTI_MEMBER or group.member(requester) is None:
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        return self._view(group)

    async def _change(
        self,
        actor: str,
        device_id: str,
        conversation_id: str,
        decide: Decide,
        on_behalf_of: str,
    ) -> GroupOutcome:
        await self._require_device(actor, device_id, on_behalf_of)
        async with self._store.locked(conversation_id) as txn:
            group = txn.conversation
            # Non-members get the same answer as for a missing group.
            if group is None or group.kind not in MULTI_MEMBER or group.member(actor) is None:
                raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
            event = decide(group)
            if event is None:
                return GroupOutcome(self._view(group), None)
            return await self._record(
                txn, conversation_id, event, device_id, above=group.last_message_id
            )

    # -- recording -------------------------------------------------------------------

    async def _record(
        self,
        txn: GroupTransaction,
        conversation_id: str,
        event: GroupEvent,
        device_id: str,
        *,
        above: int,
    ) -> GroupOutcome:
        message_id = await self._id_above(above)
        message = StoredMessage(
            message_id=message_id,
            conversation_id=conversation_id,
            sender_user_id=event.actor,
            sender_device_id=device_id,
            client_msg_id="",
            kind=common_pb2.MESSAGE_KIND_SYSTEM,
            body=encode(event),
            created_at_ms=snowflake.timestamp_ms(message_id),
        )
        if not may_start_write(message_id, self._clock.now_ms()):
            raise Unavailable("SEND_IN_DOUBT", "the change took too long to record; retry")
        # Journaled alongside the write: if the transaction fails from here
        # on, route recovery applies the change from the message and appends
        # it to the log.
        _, entry = await asyncio.gather(
            self._messages.write(
                message, may_start=lambda: may_start_write(message_id, self._clock.now_ms())
            ),
            self._journal.record(RouteRef(conversation_id, message_id)),
        )
        # Appended while the lock is held: every message that is marked after
        # this change follows it in its partition, so fan-out workers see the
        # change before any message it governs (msgsvc.fanout).
        await self._log.append(LogEntry(conversation_id, message_id, message.kind))
        await txn.apply(message_id, event, conversation_id)
        after = await txn.reload(conversation_id)
        return GroupOutcome(self._view(after), message, after.recipients(message_id), entry)

    async def _id_above(self, floor: int) -> int:
        """A fresh id above ``floor``, the group's newest marked message id."""
        waited = 0
        while True:
            candidate = self._ids.next_id()
            if candidate > floor:
                return candidate
            lead_ms = snowflake.timestamp_ms(floor) - self._clock.now_ms() + 1
            if waited + lead_ms > MAX_ID_WAIT_MS:
                raise Unavailable("CLOCK_BEHIND", "this instance's clock is behind; retry")
            waited += max(lead_ms, 1)
            await asyncio.sleep(max(lead_ms, 1) / 1000)

    async def _require_device(self, user_id: str, device_id: str, on_behalf_of: str) -> None:
        if device_id or not on_behalf_of:
            # An empty device passes only for an authenticated, audited
            # internal client (``on_behalf_of``); from a device, it is refused.
            await self._devices.require(user_id, device_id)

    def _limit(self, kind: int) -> int:
        return self.max_channel_members if kind == CHANNEL else self.max_members

    def _view(self, group: Conversation) -> GroupView:
        return GroupView(
            conversation_id=group.conversation_id,
            title=group.title,
            created_by=group.created_by,
            members=tuple(m for m in group.members if m.current),
            max_members=self._limit(group.kind),
            kind=group.kind,
        )


def _require_admin(group: Conversation, actor: str) -> None:
    me = group.member(actor)
    if me is None or me.role != ADMIN:
        raise PermissionDenied("NOT_GROUP_ADMIN", "only the group's admins may do this")


def _require_known(user_ids: Sequence[str], known: set[str]) -> None:
    missing = [u for u in user_ids if u not in known]
    if missing:
        raise NotFound("USER_NOT_FOUND", f"no user {missing[0]!r}")


def _valid_user_ids(user_ids: Sequence[str]) -> list[str]:
    for user in user_ids:
        if not is_valid_user_id(user):
            raise InvalidArgument("INVALID_USER_ID", f"{user!r} is not a valid user id")
    return list(user_ids)


def _valid_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise InvalidArgument("MISSING_TITLE", "a group needs a title")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidArgument("TITLE_TOO_LONG", f"title exceeds {MAX_TITLE_CHARS} characters")
    return title


def _group_full(limit: int) -> FailedPrecondition:
    return FailedPrecondition("GROUP_FULL", f"a group holds at most {limit} members")
