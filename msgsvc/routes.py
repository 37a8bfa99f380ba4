"""The router of a msgsvc or fan-out process: sessions from sessionsvc,
deliveries over Redis channels, pushes to notifysvc."""

from __future__ import annotations

import grpc
import redis.asyncio as redis

from chatmesh.store_observer import observed
from chatmesh.tracing import Tracing
from chatmesh.v1 import notification_service_pb2_grpc, session_service_pb2_grpc
from msgsvc.batching import BatchingSessionLookup
from msgsvc.routing import GrpcPushQueue, GrpcSessionLookup, RedisDeliveryPublisher, Router


def mesh_router(
    *,
    sessionsvc: grpc.aio.Channel,
    notifysvc: grpc.aio.Channel,
    redis_client: redis.Redis,
    key_prefix: str,
    tracing: Tracing,
) -> Router:
    return Router(
        BatchingSessionLookup(
            GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(sessionsvc))
        ),
        observed(
            RedisDeliveryPublisher(redis_client, key_prefix),
            store="redis",
            component="deliveries",
            tracing=tracing,
        ),
        GrpcPushQueue(notification_service_pb2_grpc.NotificationServiceStub(notifysvc)),
    )
