"""The router of a msgsvc or fan-out process: sessions from sessionsvc,
deliveries over Redis channels, push jobs to their Kafka topic."""

from __future__ import annotations

import grpc

from chatmesh.kafka_io import LogProducer
from chatmesh.push_jobs import KafkaPushJobs
from chatmesh.redis_client import RedisClient
from chatmesh.store_observer import observed
from chatmesh.tracing import Tracing
from chatmesh.v1 import session_service_pb2_grpc
from msgsvc.batching import BatchingSessionLookup
from msgsvc.routing import GrpcSessionLookup, RedisDeliveryPublisher, Router


def mesh_router(
    *,
    sessionsvc: grpc.aio.Channel,
    redis_client: RedisClient,
    key_prefix: str,
    producer: LogProducer,
    push_topic: str,
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
        observed(
            KafkaPushJobs(producer, push_topic), store="kafka", component="push", tracing=tracing
        ),
    )
