"""``python -m msgsvc.fanout``: a fan-out worker process.

Reads msgsvc's settings (the same stores, sessionsvc, the message log and
the push job topic) and serves gRPC health on ``CHATMESH_GRPC_LISTEN`` (default port
50055) for probes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import partial

import asyncpg
import uvloop

from chatmesh import cassandra_io, logs
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.kafka_io import LogConsumer, LogProducer, ensure_topic, topic_name
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell, until_terminated_or
from chatmesh.readiness import Readiness
from chatmesh.redis_client import connect as redis_client_for
from chatmesh.redis_client import ping as redis_ping
from chatmesh.retry import until_done
from chatmesh.store_observer import observed
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import Tracing
from msgsvc.fanout.lag import LAG_INTERVAL_S, LagReporter
from msgsvc.fanout.membership import MembershipCache
from msgsvc.fanout.worker import FanoutWorker
from msgsvc.routes import mesh_router
from msgsvc.settings import MsgsvcSettings
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import CassandraMessageStore

log = logging.getLogger("msgsvc.fanout")
DEFAULT_GRPC_PORT = 50055
SHUTDOWN_GRACE_S = 5.0


async def run(settings: MsgsvcSettings, tracing: Tracing) -> None:
    clock = SystemClock()
    tls = MeshTls(settings.common.mesh_tls_dir)
    redis_client = redis_client_for(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster
    )
    # min_size 0: creating the pool connects to nothing, so PostgreSQL may be down.
    pg_pool = await asyncpg.create_pool(settings.pg_dsn, min_size=0, max_size=8)
    cassandra = cassandra_io.LateSession(settings.cassandra)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc", tracing=tracing)
    kafka = settings.kafka
    producer = LogProducer(settings.push_kafka, client_id=settings.instance_id)
    consumer = LogConsumer(
        kafka, topic_name(settings.common.key_prefix, "fanout"), client_id=settings.instance_id
    )
    readiness = Readiness()
    readiness.add_check("redis", partial(redis_ping, redis_client))
    readiness.add_check("postgres", lambda: pg_pool.fetchval("SELECT 1"))
    readiness.add_check("cassandra", cassandra.ping)
    # The log is this worker's only source of work: without Kafka it is idle.
    readiness.add_check("kafka", consumer.ping)
    shell = ProcessShell(
        settings.common.ops_listen,
        readiness,
        GrpcServer(settings.common.grpc_listen, [], lambda _: None, tls=tls, tracing=tracing),
    )
    await shell.listen()
    tasks = TaskGroup("fanout")
    worker: FanoutWorker | None = None

    async def bring_up() -> FanoutWorker:
        session = await until_done("cassandra", cassandra.connect)
        # The topic must exist before a consumer subscribes to it.
        await until_done("message log topic", lambda: ensure_topic(kafka))
        await until_done("push job topic", lambda: ensure_topic(settings.push_kafka))
        await until_done("subscription", consumer.start)
        messages = await until_done(
            "cassandra statements",
            lambda: asyncio.to_thread(CassandraMessageStore, session, settings.cassandra.keyspace),
        )
        directory = PostgresDirectory(pg_pool)
        worker = FanoutWorker(
            source=consumer,
            messages=observed(messages, store="cassandra", component="messages", tracing=tracing),
            members=MembershipCache(
                observed(directory, store="postgresql", component="directory", tracing=tracing),
                clock,
            ),
            groups=observed(
                GroupStore(pg_pool), store="postgresql", component="groups", tracing=tracing
            ),
            router=mesh_router(
                sessionsvc=sessionsvc,
                redis_client=redis_client,
                key_prefix=settings.common.key_prefix,
                producer=producer,
                push_topic=settings.push_kafka.topic,
                tracing=tracing,
            ),
            clock=clock,
            nudge_window_s=settings.channel_nudge_window_s,
            tracing=tracing,
        )
        tasks.forever("fanout", worker.run())
        tasks.every("consumer-lag", LAG_INTERVAL_S, LagReporter(consumer.lag).report_once)
        return worker

    starting = asyncio.ensure_future(bring_up())
    try:
        if not await until_terminated_or(starting):
            worker = starting.result()
            await shell.started()
            await wait_for_termination_signal()
    finally:
        starting.cancel()
        await shell.drain()
        # Stops between batches or mid-batch; what is not committed is read
        # again by the partitions' next owner.
        await tasks.join_then_close(timeout_s=SHUTDOWN_GRACE_S)
        if worker is not None:
            await worker.close()
        await consumer.close()
        await producer.close()
        await shell.stop(SHUTDOWN_GRACE_S)
        await sessionsvc.close()
        await pg_pool.close()
        await redis_client.aclose()
        await cassandra.close()
        await asyncio.to_thread(tracing.shutdown)
        log.info("stopped", extra={"fields": {"routed": worker.routed if worker else 0}})


def main() -> None:
    env = dict(os.environ)
    # Its own default port; every other setting is msgsvc's.
    env.setdefault("CHATMESH_GRPC_LISTEN", f"127.0.0.1:{DEFAULT_GRPC_PORT}")
    settings = MsgsvcSettings.from_env(env)
    logs.configure("fanout", settings.common.log_level)
    tracing = Tracing.from_env(os.environ, service="fanout", instance=settings.instance_id)
    uvloop.run(run(settings, tracing))


if __name__ == "__main__":
    main()
