"""Group changes as values, and what each does to the membership.

A change is recorded as a system message (``MESSAGE_KIND_SYSTEM``) whose body
is the ``chatmesh.v1.SystemEvent`` it encodes; the message id orders it among
the conversation's messages. ``effects`` says what the change does to the
member rows, given that id: applying the same change twice, or an old one
after a newer, changes nothing (decision 0011).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatmesh.v1 import common_pb2
from msgsvc.storage.directory import ADMIN, GROUP, MEMBER


class Change(enum.Enum):
    CREATED = "group_created"
    ADDED = "members_added"
    REMOVED = "member_removed"
    LEFT = "member_left"
    RENAMED = "title_changed"
    ROLE = "role_changed"


@dataclass(frozen=True, slots=True)
class GroupEvent:
    actor: str
    change: Change
    title: str = ""  # CREATED, RENAMED
    # CREATED: every member, the actor included; ADDED: who joined;
    # REMOVED and ROLE: the one member; LEFT: who was promoted to admin.
    user_ids: tuple[str, ...] = ()
    role: int = 0  # ROLE
    kind: int = GROUP  # CREATED: a group or a channel


@dataclass(frozen=True, slots=True)
class MemberEffect:
    """What one change does to one member row."""

    user_id: str
    join_as: int | None = None  # a role: the member (re)joins with it at this message
    leave: bool = False  # the member reads nothing after this message
    role: int | None = None  # the member's role becomes this


@dataclass(frozen=True, slots=True)
class Effects:
    members: tuple[MemberEffect, ...]
    title: str | None = None  # the group's title becomes this


def effects(event: GroupEvent) -> Effects:
    match event.change:
        case Change.CREATED:
            return Effects(
                tuple(
                    MemberEffect(u, join_as=ADMIN if u == event.actor else MEMBER)
                    for u in event.user_ids
                ),
                title=event.title,
            )
        case Change.ADDED:
            return Effects(tuple(MemberEffect(u, join_as=MEMBER) for u in event.user_ids))
        case Change.REMOVED:
            return Effects(tuple(MemberEffect(u, leave=True) for u in event.user_ids))
        case Change.LEFT:
            return Effects(
                (
                    MemberEffect(event.actor, leave=True),
                    *(MemberEffect(u, role=ADMIN) for u in event.user_ids),
                )
            )
        case Change.RENAMED:
            return Effects((), title=event.title)
        case Change.ROLE:
            return Effects(tuple(MemberEffect(u, role=event.role) for u in event.user_ids))


def encode(event: GroupEvent) -> bytes:
    return to_proto(event).SerializeToString()


def decode(body: bytes) -> GroupEvent:
    proto = common_pb2.SystemEvent()
    proto.ParseFromString(body)
    return from_proto(proto)


def to_proto(event: GroupEvent) -> common_pb2.SystemEvent:
    proto = common_pb2.SystemEvent(actor_user_id=event.actor)
    match event.change:
        case Change.CREATED:
            proto.group_created.title = event.title
            proto.group_created.member_user_ids.extend(event.user_ids)
            proto.group_created.kind = event.kind  # type: ignore[assignment]
        case Change.ADDED:
            proto.members_added.user_ids.extend(event.user_ids)
        case Change.REMOVED:
            proto.member_removed.user_id = event.user_ids[0]
        case Change.LEFT:
            proto.member_left.promoted_user_ids.extend(event.user_ids)
        case Change.RENAMED:
            proto.title_changed.title = event.title
        case Change.ROLE:
            proto.role_changed.user_id = event.user_ids[0]
            proto.role_changed.role = event.role  # type: ignore[assignment]
    return proto


def from_proto(proto: common_pb2.SystemEvent) -> GroupEvent:
    kind = proto.WhichOneof("event")
    actor = proto.actor_user_id
    if kind == "group_created":
        created = proto.group_created
        return GroupEvent(
            actor,
            Change.CREATED,
            created.title,
            tuple(created.member_user_ids),
            kind=created.kind or GROUP,
        )
    if kind == "members_added":
        return GroupEvent(actor, Change.ADDED, user_ids=tuple(proto.members_added.user_ids))
    if kind == "member_removed":
        return GroupEvent(actor, Change.REMOVED, user_ids=(proto.member_removed.user_id,))
    if kind == "member_left":
        return GroupEvent(actor, Change.LEFT, user_ids=tuple(proto.member_left.promoted_user_ids))
    if kind == "title_changed":
        return GroupEvent(actor, Change.RENAMED, title=proto.title_changed.title)
    if kind == "role_changed":
        changed = proto.role_changed
        return GroupEvent(actor, Change.ROLE, user_ids=(changed.user_id,), role=changed.role)
    raise ValueError(f"unknown system event {kind!r}")
