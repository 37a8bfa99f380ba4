"""gRPC edge of the notification service."""

from __future__ import annotations

import grpc

from chatmesh.errors import InvalidArgument, grpc_status
from chatmesh.v1 import notification_service_pb2 as pb
from chatmesh.v1 import notification_service_pb2_grpc
from notifysvc.queue import PushJob, RedisPushQueue

MAX_USERS_PER_REQUEST = 1000


class NotificationServicer(notification_service_pb2_grpc.NotificationServiceServicer):
    def __init__(self, queue: RedisPushQueue) -> None:
        self._queue = queue

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
        if len(request.user_ids) > MAX_USERS_PER_REQUEST:
            await context.abort_with_status(
                grpc_status(
                    InvalidArgument("TOO_MANY_USERS", f"at most {MAX_USERS_PER_REQUEST} users")
                )
            )
        jobs = [
            PushJob(user, request.conversation_id, request.message_id, request.sender_user_id)
            for user in request.user_ids
        ]
        return pb.EnqueuePushResponse(enqueued=await self._queue.enqueue(jobs))
