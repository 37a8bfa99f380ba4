"""gRPC edge of the session service."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.v1 import session_service_pb2 as pb
from chatmesh.v1 import session_service_pb2_grpc
from sessionsvc.store import DeviceSession, RedisSessionStore

MAX_USERS_PER_LOOKUP = 1000
MAX_GATEWAY_TTL_S = 300


def _domain(sessions: object) -> list[DeviceSession]:
    return [
        DeviceSession(s.user_id, s.device_id, s.gateway_id, s.connection_id)
        for s in sessions  # type: ignore[attr-defined]
    ]


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store

    async def RegisterSessions(
        self, request: pb.RegisterSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterSessionsResponse:
        sessions = _domain(request.sessions)
        if any(
            not (s.user_id and s.device_id and s.gateway_id and s.connection_id) for s in sessions
        ):
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument("INCOMPLETE_SESSION", "every session field is required")
                )
            )
        replaced = await self._store.register(sessions)
        return pb.RegisterSessionsResponse(replaced=_protos(replaced))

    async def UnregisterSessions(
        self, request: pb.UnregisterSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnregisterSessionsResponse:
        return pb.UnregisterSessionsResponse(
            removed=await self._store.unregister(_domain(request.sessions))
        )

    async def LookupSessions(
        self, request: pb.LookupSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupSessionsResponse:
        if len(request.user_ids) > MAX_USERS_PER_LOOKUP:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument("TOO_MANY_USERS", f"at most {MAX_USERS_PER_LOOKUP} users")
                )
            )
        sessions = await self._store.lookup(list(request.user_ids))
        return pb.LookupSessionsResponse(sessions=_protos(sessions))

    async def GatewayHeartbeat(
        self, request: pb.GatewayHeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.GatewayHeartbeatResponse:
        if not request.gateway_id or not 0 < request.ttl_seconds <= MAX_GATEWAY_TTL_S:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument(
                        "INVALID_HEARTBEAT", f"gateway_id and ttl 1..{MAX_GATEWAY_TTL_S} s required"
                    )
                )
            )
        await self._store.heartbeat(request.gateway_id, request.ttl_seconds)
        return pb.GatewayHeartbeatResponse()


def _protos(sessions: list[DeviceSession]) -> list[pb.Session]:
    return [
        pb.Session(
            user_id=s.user_id,
            device_id=s.device_id,
            gateway_id=s.gateway_id,
            connection_id=s.connection_id,
        )
        for s in sessions
    ]
