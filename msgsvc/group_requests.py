"""Group requests from either edge (client frames, GroupService) to the domain."""

from __future__ import annotations

from chatmesh.errors import InvalidArgument
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.groups import GroupOutcome, Groups
from msgsvc.protos import group_info
from msgsvc.storage.directory import GROUP


async def create(
    groups: Groups,
    actor: str,
    device_id: str,
    request: client_pb2.CreateGroupFrame,
    *,
    on_behalf_of: str = "",
) -> GroupOutcome:
    return await groups.create(
        actor,
        device_id,
        client_group_id=request.client_group_id,
        title=request.title,
        member_ids=list(request.member_user_ids),
        kind=request.kind or GROUP,
        on_behalf_of=on_behalf_of,
    )


async def change(
    groups: Groups,
    actor: str,
    device_id: str,
    request: client_pb2.ChangeGroupFrame,
    *,
    on_behalf_of: str = "",
) -> GroupOutcome:
    """``on_behalf_of``: the internal client acting for ``actor``, if any."""
    conversation_id = request.conversation_id
    if not conversation_id:
        raise InvalidArgument("MISSING_CONVERSATION_ID", "conversation_id is required")
    which = request.WhichOneof("change")
    if which == "add_members":
        return await groups.add(
            actor,
            device_id,
            conversation_id,
            list(request.add_members.user_ids),
            on_behalf_of=on_behalf_of,
        )
    if which == "remove_member":
        return await groups.remove(
            actor,
            device_id,
            conversation_id,
            request.remove_member.user_id,
            on_behalf_of=on_behalf_of,
        )
    if which == "leave":
        return await groups.leave(actor, device_id, conversation_id, on_behalf_of=on_behalf_of)
    if which == "rename":
        return await groups.rename(
            actor, device_id, conversation_id, request.rename.title, on_behalf_of=on_behalf_of
        )
    if which == "set_role":
        return await groups.set_role(
            actor,
            device_id,
            conversation_id,
            request.set_role.user_id,
            request.set_role.role,
            on_behalf_of=on_behalf_of,
        )
    raise InvalidArgument("MISSING_CHANGE", "say what to change")


def group_frame(request_id: str, outcome: GroupOutcome) -> client_pb2.ServerFrame:
    frame = client_pb2.GroupFrame(request_id=request_id, group=group_info(outcome.group))
    if outcome.event is not None:
        frame.event.CopyFrom(outcome.event.to_proto())
    return client_pb2.ServerFrame(group=frame)


def event_proto(outcome: GroupOutcome) -> common_pb2.Message | None:
    return outcome.event.to_proto() if outcome.event is not None else None
