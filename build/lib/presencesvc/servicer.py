"""gRPC edge of the presence service."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.v1 import presence_service_pb2 as pb
from chatmesh.v1 import presence_service_pb2_grpc
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
                pb.Presence(
                    user_id=s.user_id,
                    status=pb.PRESENCE_STATUS_ONLINE if s.online else pb.PRESENCE_STATUS_OFFLINE,
                    last_seen_ms=s.last_seen_ms,
                )
                for s in states
            ]
        )
