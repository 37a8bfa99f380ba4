"""``python -m msgsvc``: the message service process."""

from __future__ import annotations

import asyncio
import logging
import os

import asyncpg
import grpc
import uvloop

from chatmesh import cassandra_io, logs
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.kafka_io import KafkaSettings, LogProducer, ensure_topic
from chatmesh.mesh.credentials import MeshTls
from chatmesh.redis_client import connect as redis_client_for
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import (
    directory_service_pb2,
    directory_service_pb2_grpc,
    group_service_pb2,
    group_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    notification_service_pb2_grpc,
    session_service_pb2_grpc,
)
from msgsvc import wiring
from msgsvc.batching import BatchingSessionLookup
from msgsvc.directory_servicer import DirectoryServicer
from msgsvc.group_receipts import FLUSH_INTERVAL_S
from msgsvc.group_servicer import GroupServicer
from msgsvc.ids import RENEW_INTERVAL_S, LeasedIdSource, WorkerLease
from msgsvc.message_log import KafkaMessageLog
from msgsvc.recovery import RECOVERY_INTERVAL_S
from msgsvc.routing import GrpcPushQueue, GrpcSessionLookup, RedisDeliveryPublisher, Router
from msgsvc.servicer import MessageServicer
from msgsvc.settings import MsgsvcSettings
from msgsvc.storage.messages import CassandraMessageStore

log = logging.getLogger("msgsvc")
SHUTDOWN_GRACE_S = 10.0
TOPIC_RETRY_S = 2.0


async def run(settings: MsgsvcSettings) -> None:
    clock = SystemClock()
    redis_client = redis_client_for(settings.redis_url)
    pg_pool = await asyncpg.create_pool(
        settings.pg_dsn, min_size=2, max_size=16, reset=_keep_session_state
    )
    cluster, session = await asyncio.to_thread(cassandra_io.connect, settings.cassandra)
    tls = MeshTls(settings.common.mesh_tls_dir)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc")
    notifysvc = mesh_channel(tls, settings.notifysvc_addr, "notifysvc")
    tasks = TaskGroup("msgsvc")
    producer = LogProducer(settings.kafka.bootstrap, client_id=settings.instance_id)
    tasks.spawn("message-log-topic", _ensure_topic(settings.kafka))
    ids = await LeasedIdSource.start(WorkerLease(redis_client, settings.common.key_prefix), clock)
    tasks.every("worker-lease-renewal", RENEW_INTERVAL_S, ids.renew)

    router = Router(
        BatchingSessionLookup(
            GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(sessionsvc))
        ),
        RedisDeliveryPublisher(redis_client, settings.common.key_prefix),
        GrpcPushQueue(notification_service_pb2_grpc.NotificationServiceStub(notifysvc)),
    )
    service = wiring.build(
        pg_pool=pg_pool,
        redis_client=redis_client,
        key_prefix=settings.common.key_prefix,
        messages=CassandraMessageStore(session, settings.cassandra.keyspace),
        ids=ids,
        clock=clock,
        instance_id=settings.instance_id,
        router=router,
        tasks=tasks,
        log=KafkaMessageLog(producer, settings.kafka.topic),
        legacy_claims=settings.legacy_claims,
        max_group_members=settings.max_group_members,
        max_channel_members=settings.max_channel_members,
    )
    servicer = MessageServicer(service.messaging, service.frames)
    directory_servicer = DirectoryServicer(service.accounts)
    group_servicer = GroupServicer(service.messaging.groups, service.messaging.effects)

    def add_servicers(grpc_server: grpc.aio.Server) -> None:
        message_service_pb2_grpc.add_MessageServiceServicer_to_server(servicer, grpc_server)
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(
            directory_servicer, grpc_server
        )
        group_service_pb2_grpc.add_GroupServiceServicer_to_server(group_servicer, grpc_server)

    server = GrpcServer(
        settings.common.grpc_listen,
        [
            message_service_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
            directory_service_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
            group_service_pb2.DESCRIPTOR.services_by_name["GroupService"].full_name,
        ],
        add_servicers,
        tls=tls,
    )
    recovery = service.recovery
    await recovery.replay_previous_life()
    await server.start()
    tasks.every("route-recovery", RECOVERY_INTERVAL_S, recovery.run_once)
    tasks.every("group-receipts", FLUSH_INTERVAL_S, service.messaging.group_receipts.flush)
    try:
        await wait_for_termination_signal()
    finally:
        await server.drain()
        await server.stop(SHUTDOWN_GRACE_S)
        await tasks.join_then_close(timeout_s=SHUTDOWN_GRACE_S)
        await ids.release()
        await producer.close()
        await sessionsvc.close()
        await notifysvc.close()
        await pg_pool.close()
        await redis_client.aclose()
        await asyncio.to_thread(cluster.shutdown)
        log.info("stopped")


async def _ensure_topic(kafka: KafkaSettings) -> None:
    """Creates the message log topic, retrying while Kafka is unreachable:
    msgsvc serves 1:1 messages meanwhile, and group sends fail as retryable."""
    while True:
        try:
            await ensure_topic(kafka)
            return
        except Exception:
            log.warning("message log topic not ensured yet", exc_info=True)
            await asyncio.sleep(TOPIC_RETRY_S)


async def _keep_session_state(_: asyncpg.Connection) -> None:
    """Skips asyncpg's reset on release, a round trip per query: msgsvc never
    changes session state (no SET, LISTEN, advisory locks or open cursors)."""


def main() -> None:
    settings = MsgsvcSettings.from_env(os.environ)
    logs.configure("msgsvc", settings.common.log_level)
    uvloop.run(run(settings))


if __name__ == "__main__":
    main()
