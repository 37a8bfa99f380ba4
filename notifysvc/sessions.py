"""Which devices are connected now, from sessionsvc."""

from __future__ import annotations

from collections.abc import Collection

from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc

MAX_USERS_PER_LOOKUP = 1000  # sessionsvc's bound per request


class SessionsvcLiveDevices:
    def __init__(self, stub: session_service_pb2_grpc.SessionServiceStub) -> None:
        self._stub = stub

    async def live(self, user_ids: Collection[str]) -> set[tuple[str, str]]:
        users = sorted(user_ids)
        live: set[tuple[str, str]] = set()
        for start in range(0, len(users), MAX_USERS_PER_LOOKUP):
            response = await self._stub.LookupSessions(
                session_service_pb2.LookupSessionsRequest(
                    user_ids=users[start : start + MAX_USERS_PER_LOOKUP]
                ),
                timeout=2.0,
            )
            live.update((s.user_id, s.device_id) for s in response.sessions)
        return live
