"""``python -m msgsvc.fanout``: a fan-out worker process.

Reads msgsvc's settings (the same stores, sessionsvc and notifysvc, the
message log) and serves gRPC health on ``CHATMESH_GRPC_LISTEN`` (default port
50055) for probes.
"""

from __future__ import annotations

import asyncio
import logging
import os

import asyncpg
import uvloop

from chatmesh import cassandra_io, logs
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.kafka_io import LogConsumer, ensure_topic, topic_name
from chatmesh.mesh.credentials import MeshTls
from chatmesh.redis_client import connect as redis_client_for
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import notification_service_pb2_grpc, session_service_pb2_grpc
from msgsvc.batching import BatchingSessionLookup
from msgsvc.fanout.membership import MembershipCache
from msgsvc.fanout.worker import FanoutWorker
from msgsvc.routing import GrpcPushQueue, GrpcSessionLookup, RedisDeliveryPublisher, Router
from msgsvc.settings import MsgsvcSettings
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore

log = logging.getLogger("msgsvc.fanout")
DEFAULT_GRPC_PORT = 50055
SHUTDOWN_GRACE_S = 5.0
TOPIC_RETRY_S = 2.0


async def run(settings: MsgsvcSettings) -> None:
    clock = SystemClock()
    redis_client = redis_client_for(settings.redis_url)
    pg_pool = await asyncpg.create_pool(settings.pg_dsn, min_size=1, max_size=8)
    cluster, session = await asyncio.to_thread(cassandra_io.connect, settings.cassandra)
    tls = MeshTls(settings.common.mesh_tls_dir)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc")
    notifysvc = mesh_channel(tls, settings.notifysvc_addr, "notifysvc")
    kafka = settings.kafka
    while True:  # the topic must exist before a consumer subscribes to it
        try:
            await ensure_topic(kafka)
            break
        except Exception:
            log.warning("message log topic not ensured yet", exc_info=True)
            await asyncio.sleep(TOPIC_RETRY_S)
    consumer = LogConsumer(
        kafka.bootstrap,
        kafka.topic,
        topic_name(settings.common.key_prefix, "fanout"),
        client_id=settings.instance_id,
    )
    await consumer.start()
    directory = PostgresDirectory(pg_pool)
    worker = FanoutWorker(
        source=consumer,
        messages=CassandraMessageStore(session, settings.cassandra.keyspace),
        members=MembershipCache(directory, clock),
        groups=GroupStore(pg_pool),
        router=Router(
            BatchingSessionLookup(
                GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(sessionsvc))
            ),
            RedisDeliveryPublisher(redis_client, settings.common.key_prefix),
            GrpcPushQueue(notification_service_pb2_grpc.NotificationServiceStub(notifysvc)),
        ),
        clock=clock,
        nudge_window_s=settings.channel_nudge_window_s,
    )
    tasks = TaskGroup("fanout")
    tasks.forever("fanout", worker.run())
    server = GrpcServer(settings.common.grpc_listen, [], lambda _: None, tls=tls)
    await server.start()
    try:
        await wait_for_termination_signal()
    finally:
        await server.drain()
        # Stops between batches or mid-batch; what is not committed is read
        # again by the partitions' next owner.
        await tasks.join_then_close(timeout_s=SHUTDOWN_GRACE_S)
        await worker.close()
        await consumer.close()
        await server.stop(SHUTDOWN_GRACE_S)
        await sessionsvc.close()
        await notifysvc.close()
        await pg_pool.close()
        await redis_client.aclose()
        await asyncio.to_thread(cluster.shutdown)
        log.info("stopped", extra={"fields": {"routed": worker.routed}})


def main() -> None:
    env = dict(os.environ)
    # Its own default port; every other setting is msgsvc's.
    env.setdefault("CHATMESH_GRPC_LISTEN", f"127.0.0.1:{DEFAULT_GRPC_PORT}")
    settings = MsgsvcSettings.from_env(env)
    logs.configure("fanout", settings.common.log_level)
    uvloop.run(run(settings))


if __name__ == "__main__":
    main()
