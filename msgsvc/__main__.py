"""``python -m msgsvc``: the message service process.

It listens at once and reports NOT_SERVING until PostgreSQL, Redis and
Cassandra answer and its worker-id lease is held; calls meanwhile get
UNAVAILABLE/NOT_READY. Kafka is not required: 1:1 messages are served while
it is down, group sends fail as retryable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import asyncpg
import grpc
import uvloop

from chatmesh import cassandra_io, logs, revocations
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.kafka_io import KafkaSettings, LogProducer, ensure_topic
from chatmesh.late_servicer import LateServicer
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell, until_terminated_or
from chatmesh.pubsub import ChannelSubscriber
from chatmesh.readiness import Readiness
from chatmesh.redis_client import connect as redis_client_for
from chatmesh.redis_client import ping as redis_ping
from chatmesh.retry import until_done
from chatmesh.store_observer import observed
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import Tracing
from chatmesh.v1 import (
    directory_service_pb2,
    directory_service_pb2_grpc,
    group_service_pb2,
    group_service_pb2_grpc,
    media_service_pb2,
    media_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
)
from msgsvc import wiring
from msgsvc.directory_servicer import DirectoryServicer
from msgsvc.frame_observer import FrameObserver
from msgsvc.group_receipts import FLUSH_INTERVAL_S
from msgsvc.group_servicer import GroupServicer
from msgsvc.ids import RENEW_INTERVAL_S, LeasedIdSource, WorkerLease
from msgsvc.media.objects import s3_object_store
from msgsvc.media_servicer import MediaServicer
from msgsvc.message_log import KafkaMessageLog
from msgsvc.recovery import RECOVERY_INTERVAL_S
from msgsvc.routes import mesh_router
from msgsvc.servicer import MessageServicer
from msgsvc.settings import MsgsvcSettings
from msgsvc.storage.messages import CassandraMessageStore

log = logging.getLogger("msgsvc")
SHUTDOWN_GRACE_S = 10.0
TOPIC_RETRY_S = 2.0

_MESSAGE = message_service_pb2.DESCRIPTOR.services_by_name["MessageService"]
_DIRECTORY = directory_service_pb2.DESCRIPTOR.services_by_name["DirectoryService"]
_GROUPS = group_service_pb2.DESCRIPTOR.services_by_name["GroupService"]
_MEDIA = media_service_pb2.DESCRIPTOR.services_by_name["MediaService"]


async def run(settings: MsgsvcSettings, tracing: Tracing) -> None:
    clock = SystemClock()
    tls = MeshTls(settings.common.mesh_tls_dir)
    redis_client = redis_client_for(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster
    )
    # Its subscription on a client that never reconnects by itself
    # (chatmesh.pubsub): a lost subscription must be noticed.
    subscriptions_client = redis_client_for(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster, retries=0
    )
    # min_size 0: creating the pool connects to nothing, so PostgreSQL may be down.
    pg_pool = await asyncpg.create_pool(
        settings.pg_dsn, min_size=0, max_size=16, reset=_keep_session_state
    )
    cassandra = cassandra_io.LateSession(settings.cassandra)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc", tracing=tracing)
    resources = AsyncExitStack()
    # Media only: while the object store is down, media requests fail as
    # retryable and everything else is served.
    objects = await resources.enter_async_context(s3_object_store(settings.object_store))
    # Any: each stands in, duck-typed, for its generated servicer class.
    late: dict[str, Any] = {
        d.full_name: LateServicer(d) for d in (_MESSAGE, _DIRECTORY, _GROUPS, _MEDIA)
    }

    def add_servicers(grpc_server: grpc.aio.Server) -> None:
        message_service_pb2_grpc.add_MessageServiceServicer_to_server(
            late[_MESSAGE.full_name], grpc_server
        )
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(
            late[_DIRECTORY.full_name], grpc_server
        )
        group_service_pb2_grpc.add_GroupServiceServicer_to_server(
            late[_GROUPS.full_name], grpc_server
        )
        media_service_pb2_grpc.add_MediaServiceServicer_to_server(
            late[_MEDIA.full_name], grpc_server
        )

    server = GrpcServer(
        settings.common.grpc_listen, list(late), add_servicers, tls=tls, tracing=tracing
    )
    readiness = Readiness()
    readiness.add_check("redis", partial(redis_ping, redis_client))
    readiness.add_check("postgres", lambda: pg_pool.fetchval("SELECT 1"))
    readiness.add_check("cassandra", cassandra.ping)
    shell = ProcessShell(settings.common.ops_listen, readiness, server)
    await shell.listen()
    tasks = TaskGroup("msgsvc")
    producer = LogProducer(settings.kafka, client_id=settings.instance_id)
    tasks.spawn("message-log-topic", _ensure_topic(settings.kafka))
    tasks.spawn("push-job-topic", _ensure_topic(settings.push_kafka))
    ids: LeasedIdSource | None = None

    lease = WorkerLease(redis_client, settings.common.key_prefix)

    async def bring_up() -> LeasedIdSource:
        session = await until_done("cassandra", cassandra.connect)
        ids = await until_done(
            "worker-id lease",
            lambda: LeasedIdSource.start(lease, clock),
        )
        router = mesh_router(
            sessionsvc=sessionsvc,
            redis_client=redis_client,
            key_prefix=settings.common.key_prefix,
            producer=producer,
            push_topic=settings.push_kafka.topic,
            tracing=tracing,
        )
        messages = await until_done(
            "cassandra statements",
            lambda: asyncio.to_thread(CassandraMessageStore, session, settings.cassandra.keyspace),
        )
        service = wiring.build(
            pg_pool=pg_pool,
            redis_client=redis_client,
            key_prefix=settings.common.key_prefix,
            messages=messages,
            ids=ids,
            clock=clock,
            instance_id=settings.instance_id,
            router=router,
            tasks=tasks,
            log=observed(
                KafkaMessageLog(producer, settings.kafka.topic, tracing),
                store="kafka",
                component="log",
                tracing=tracing,
            ),
            objects=objects,
            media_settings=settings.media,
            legacy_claims=settings.legacy_claims,
            max_group_members=settings.max_group_members,
            max_channel_members=settings.max_channel_members,
            tracing=tracing,
        )
        # Before serving: sends of the previous life are routed first.
        await until_done("route journal replay", service.recovery.replay_previous_life)
        late[_MESSAGE.full_name].bind(
            MessageServicer(service.messaging, FrameObserver(service.frames, tracing))
        )
        late[_DIRECTORY.full_name].bind(
            DirectoryServicer(service.accounts, service.messaging.push_settings)
        )
        late[_GROUPS.full_name].bind(
            GroupServicer(service.messaging.groups, service.messaging.effects)
        )
        late[_MEDIA.full_name].bind(MediaServicer(service.messaging.media))
        devices = service.devices

        def on_revocation(payload: bytes) -> None:
            if (revocation := revocations.decode(payload)) is not None:
                devices.forget(revocation.user_id, revocation.device_id)

        # Missed announcements are made up for by forgetting every device.
        subscriber = ChannelSubscriber(
            subscriptions_client,
            {revocations.revocations_channel(settings.common.key_prefix): on_revocation},
            devices.forget_all,
        )
        tasks.forever("revocations", subscriber.run())
        tasks.every("worker-lease-renewal", RENEW_INTERVAL_S, ids.renew)
        tasks.every("route-recovery", RECOVERY_INTERVAL_S, service.recovery.run_once)
        tasks.every("group-receipts", FLUSH_INTERVAL_S, service.messaging.group_receipts.flush)
        tasks.every(
            "media-sweep", settings.media.sweep_interval_s, service.media_sweeper.sweep_once
        )
        return ids

    starting = asyncio.ensure_future(bring_up())
    try:
        if not await until_terminated_or(starting):
            ids = starting.result()
            await shell.started()
            await wait_for_termination_signal()
    finally:
        starting.cancel()
        await shell.drain()
        await shell.stop(SHUTDOWN_GRACE_S)
        await tasks.join_then_close(timeout_s=SHUTDOWN_GRACE_S)
        if ids is not None:
            await ids.release()
        await producer.close()
        await sessionsvc.close()
        await pg_pool.close()
        await redis_client.aclose()
        await subscriptions_client.aclose()
        await cassandra.close()
        await resources.aclose()
        await asyncio.to_thread(tracing.shutdown)
        log.info("stopped")


async def _ensure_topic(kafka: KafkaSettings) -> None:
    """Creates a topic (the message log, the push jobs), retrying while Kafka
    is unreachable: msgsvc serves 1:1 messages meanwhile (their routing,
    which appends push jobs, is retried by the route journal), and group
    sends fail as retryable."""
    while True:
        try:
            await ensure_topic(kafka)
            return
        except Exception:
            log.warning(
                "topic not ensured yet", extra={"fields": {"topic": kafka.topic}}, exc_info=True
            )
            await asyncio.sleep(TOPIC_RETRY_S)


async def _keep_session_state(_: asyncpg.Connection) -> None:
    """Skips asyncpg's reset on release, a round trip per query: msgsvc never
    changes session state (no SET, LISTEN, advisory locks or open cursors)."""


def main() -> None:
    settings = MsgsvcSettings.from_env(os.environ)
    logs.configure("msgsvc", settings.common.log_level)
    tracing = Tracing.from_env(os.environ, service="msgsvc", instance=settings.instance_id)
    uvloop.run(run(settings, tracing))


if __name__ == "__main__":
    main()
