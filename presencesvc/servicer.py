"""gRPC edge of the presence service."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.v1 import common_pb2, presence_service_pb2_grpc
from chatmesh.v1 import presence_service_pb2 as pb
from presencesvc.store import RedisPresenceStore

MAX_USERS_PER_REQUEST = 1000


class PresenceServicer(presence_service_pb2_grpc.PresenceServiceServicer):
    def __init__(self, store: RedisPresenceStore) -> None:
        self._store = store

    async def ReportHeartbeats(
        self, request: pb.ReportHeartbeatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportHeartbeatsResponse:
        await self._store.heartbeat(list(request.user_ids))
        return pb.ReportHeartbeatsResponse()

    async def ReportPresence(
        self, request: pb.ReportPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportPresenceResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served yet")
        raise AssertionError("abort returned")

    async def WatchPresence(
        self, request: pb.WatchPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.WatchPresenceResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served yet")
        raise AssertionError("abort returned")

    async def SetPresenceVisibility(
        self, request: pb.SetPresenceVisibilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPresenceVisibilityResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served yet")
        raise AssertionError("abort returned")

    async def GetPresence(
        self, request: pb.GetPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPresenceResponse:
        if len(request.user_ids) > MAX_USERS_PER_REQUEST:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument("TOO_MANY_USERS", f"at most {MAX_USERS_PER_REQUEST} users")
                )
            )
        states = await self._store.get(list(request.user_ids))
        return pb.GetPresenceResponse(
            presences=[
                common_pb2.Presence(
                    user_id=s.user_id,
                    status=common_pb2.PRESENCE_STATUS_ONLINE
                    if s.online
                    else common_pb2.PRESENCE_STATUS_OFFLINE,
                    last_seen_ms=s.last_seen_ms,
                )
                for s in states
            ]
        )
