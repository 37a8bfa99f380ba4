"""gRPC edge of the presence service."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument
from chatmesh.failures import abort_with
from chatmesh.v1 import presence_service_pb2 as pb
from chatmesh.v1 import presence_service_pb2_grpc
from presencesvc.presence import PresenceTracker

MAX_USERS_PER_REQUEST = 1000
MAX_USERS_PER_REPORT = 100_000  # a gateway's whole population, at most


class PresenceServicer(presence_service_pb2_grpc.PresenceServiceServicer):
    def __init__(self, tracker: PresenceTracker) -> None:
        self._tracker = tracker

    async def ReportPresence(
        self, request: pb.ReportPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportPresenceResponse:
        try:
            size = (
                len(request.connected_user_ids)
                + len(request.disconnected_user_ids)
                + len(request.online_user_ids)
            )
            if size > MAX_USERS_PER_REPORT:
                raise InvalidArgument("REPORT_TOO_LARGE", f"at most {MAX_USERS_PER_REPORT} users")
            send_full = await self._tracker.report(
                request.gateway_id,
                connected=list(request.connected_user_ids),
                disconnected=list(request.disconnected_user_ids),
                online=list(request.online_user_ids),
                full=request.full,
                lease_s=request.lease_seconds,
            )
        except Exception as exc:
            await abort_with(context, exc)
        return pb.ReportPresenceResponse(send_full=send_full)

    async def WatchPresence(
        self, request: pb.WatchPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.WatchPresenceResponse:
        try:
            if not request.watcher_user_id:
                raise InvalidArgument("INCOMPLETE_WATCH", "watcher_user_id is required")
            watch = await self._tracker.watch(request.watcher_user_id, list(request.user_ids))
        except Exception as exc:
            await abort_with(context, exc)
        return pb.WatchPresenceResponse(presences=watch.presences, refused_user_ids=watch.refused)

    async def SetPresenceVisibility(
        self, request: pb.SetPresenceVisibilityRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPresenceVisibilityResponse:
        try:
            visibility = await self._tracker.set_visibility(request.user_id, request.visibility)
        except Exception as exc:
            await abort_with(context, exc)
        return pb.SetPresenceVisibilityResponse(visibility=visibility)  # type: ignore[arg-type]

    async def GetPresence(
        self, request: pb.GetPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPresenceResponse:
        try:
            if len(request.user_ids) > MAX_USERS_PER_REQUEST:
                raise InvalidArgument("TOO_MANY_USERS", f"at most {MAX_USERS_PER_REQUEST} users")
            presences = await self._tracker.get(list(request.user_ids))
        except Exception as exc:
            await abort_with(context, exc)
        return pb.GetPresenceResponse(presences=presences)
