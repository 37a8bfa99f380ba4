"""gRPC edge of the notification service: taking push jobs in."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.v1 import notification_service_pb2 as pb
from chatmesh.v1 import notification_service_pb2_grpc
from notifysvc.devices import PushDevice
from notifysvc.jobs import PushJob

MAX_RECIPIENTS_PER_REQUEST = 1000


class PushDevices(Protocol):
    async def push_devices(self, user_ids: Collection[str]) -> dict[str, list[PushDevice]]: ...


class JobLog(Protocol):
    async def append(self, jobs: list[PushJob]) -> None: ...


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    def __init__(self, devices: PushDevices, jobs: JobLog) -> None:
        self._devices = devices
        self._jobs = jobs

    async def EnqueuePush(
        self, request: pb.EnqueuePushRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnqueuePushResponse:
        if not request.conversation_id or not request.message_id:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument(
                        "INCOMPLETE_PUSH", "conversation_id and message_id are required"
                    )
                )
            )
        if len(request.recipients) > MAX_RECIPIENTS_PER_REQUEST:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument(
                        "TOO_MANY_RECIPIENTS", f"at most {MAX_RECIPIENTS_PER_REQUEST} recipients"
                    )
                )
            )
        if any(not r.user_id for r in request.recipients):
            await context.abort_with_status(
                grpc_status(InvalidArgument("INCOMPLETE_PUSH", "every recipient names its user"))
            )
        live = {r.user_id: frozenset(r.live_device_ids) for r in request.recipients}
        # Only recipients with a device to push become jobs: most messages
        # reach every device of every recipient live, and cost no record.
        devices = await self._devices.push_devices(live)
        jobs = [
            PushJob(
                user,
                request.conversation_id,
                request.message_id,
                request.sender_user_id,
                live_devices,
            )
            for user, live_devices in live.items()
            if any(d.device_id not in live_devices for d in devices.get(user, ()))
        ]
        if jobs:
            await self._jobs.append(jobs)
        return pb.EnqueuePushResponse(enqueued=len(jobs))
