"""gRPC edge of groups: the same requests and rules as the client frames."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument
from chatmesh.failures import abort_with
from chatmesh.mesh.authz import acting_client
from chatmesh.v1 import group_service_pb2, group_service_pb2_grpc
from msgsvc import group_requests
from msgsvc.effects import Effects
from msgsvc.groups import Groups
from msgsvc.protos import group_info


class GroupServicer(group_service_pb2_grpc.GroupServiceServicer):
    def __init__(self, groups: Groups, effects: Effects) -> None:
        self._groups = groups
        self._effects = effects

    async def CreateGroup(
        self, request: group_service_pb2.CreateGroupRequest, context: grpc.aio.ServicerContext
    ) -> group_service_pb2.CreateGroupResponse:
        try:
            _require_actor(request.actor_user_id)
            outcome = await group_requests.create(
                self._groups,
                request.actor_user_id,
                request.actor_device_id,
                request.group,
                on_behalf_of=acting_client(context),
            )
        except Exception as exc:
            await abort_with(context, exc)
        self._effects.group_changed(outcome)
        return group_service_pb2.CreateGroupResponse(
            group=group_info(outcome.group), event=group_requests.event_proto(outcome)
        )

    async def ChangeGroup(
        self, request: group_service_pb2.ChangeGroupRequest, context: grpc.aio.ServicerContext
    ) -> group_service_pb2.ChangeGroupResponse:
        try:
            _require_actor(request.actor_user_id)
            outcome = await group_requests.change(
                self._groups,
                request.actor_user_id,
                request.actor_device_id,
                request.change,
                on_behalf_of=acting_client(context),
            )
        except Exception as exc:
            await abort_with(context, exc)
        self._effects.group_changed(outcome)
        return group_service_pb2.ChangeGroupResponse(
            group=group_info(outcome.group), event=group_requests.event_proto(outcome)
        )

    async def GetGroup(
        self, request: group_service_pb2.GetGroupRequest, context: grpc.aio.ServicerContext
    ) -> group_service_pb2.GetGroupResponse:
        try:
            group = await self._groups.get(request.requester_user_id, request.conversation_id)
        except Exception as exc:
            await abort_with(context, exc)
        return group_service_pb2.GetGroupResponse(group=group_info(group))


def _require_actor(actor_user_id: str) -> None:
    if not actor_user_id:
        raise InvalidArgument("MISSING_ACTOR", "actor_user_id is required")
