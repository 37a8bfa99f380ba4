"""``python -m notifysvc``: the notification service process.

Runs the push pipeline: reads the push job topic in its own consumer group
and sends through the configured providers; ready while PostgreSQL and
Kafka answer. Serves gRPC health on ``CHATMESH_GRPC_LISTEN`` for probes.
Cassandra is read only for previews: while it is down, pushes go out
without text.
"""

from __future__ import annotations

import asyncio
import logging
import os

import asyncpg
import uvloop

from chatmesh import cassandra_io, logs
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.kafka_io import LogConsumer, ensure_topic, topic_name
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell, until_terminated_or
from chatmesh.readiness import Readiness
from chatmesh.retry import until_done
from chatmesh.store_observer import observed
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import Tracing
from chatmesh.v1 import session_service_pb2_grpc
from msgsvc.model import StoredMessage
from msgsvc.storage.messages import CassandraMessageStore
from notifysvc.directory import PostgresPushDirectory
from notifysvc.pipeline import PushPipeline
from notifysvc.providers.registry import providers_from
from notifysvc.sessions import SessionsvcLiveDevices
from notifysvc.settings import NotifySettings

log = logging.getLogger("notifysvc")
SHUTDOWN_GRACE_S = 5.0


class LatePreviews:
    """Message rows for previews once Cassandra has been reached; until then
    every read fails, and pushes go out without text."""

    def __init__(self) -> None:
        self.store: CassandraMessageStore | None = None

    async def get(self, conversation_id: str, message_id: int) -> StoredMessage | None:
        if self.store is None:
            raise ConnectionError("Cassandra not connected yet")
        return await self.store.get(conversation_id, message_id)


MAX_PUSH_JOB_GATHER_MS = 400


async def run(settings: NotifySettings, tracing: Tracing) -> None:
    tls = MeshTls(settings.common.mesh_tls_dir)
    # min_size 0: creating the pool connects to nothing, so PostgreSQL may be down.
    pg_pool = await asyncpg.create_pool(settings.pg_dsn, min_size=0, max_size=8)
    cassandra = cassandra_io.LateSession(settings.cassandra)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc", tracing=tracing)
    kafka = settings.kafka
    # Its own group, named under the deployment's prefix like the topic. A
    # static member: a crashed instance restarted under its name resumes its
    # partitions at once, its pushes late by a restart, not a session timeout.
    # A push waits in its device's window anyway (2 s by default): jobs are
    # fetched in bunches, at most a fifth of the window late.
    consumer = LogConsumer(
        kafka,
        topic_name(settings.common.key_prefix, "notifysvc"),
        client_id=settings.instance_id,
        static_member=True,
        gather_ms=min(MAX_PUSH_JOB_GATHER_MS, int(settings.window_s * 1000) // 5),
    )
    providers = providers_from(settings.providers)
    directory = observed(
        PostgresPushDirectory(pg_pool), store="postgresql", component="push", tracing=tracing
    )
    readiness = Readiness()
    readiness.add_check("postgres", lambda: pg_pool.fetchval("SELECT 1"))
    # The job topic is its only source of work: without Kafka it is idle.
    readiness.add_check("kafka", consumer.ping)
    shell = ProcessShell(
        settings.common.ops_listen,
        readiness,
        GrpcServer(settings.common.grpc_listen, [], lambda _: None, tls=tls, tracing=tracing),
    )
    await shell.listen()
    tasks = TaskGroup("notifysvc")
    previews = LatePreviews()

    async def connect_previews() -> None:
        session = await until_done("cassandra", cassandra.connect)
        previews.store = await until_done(
            "cassandra statements",
            lambda: asyncio.to_thread(CassandraMessageStore, session, settings.cassandra.keyspace),
        )

    pipeline = PushPipeline(
        source=consumer,
        directory=directory,
        live=SessionsvcLiveDevices(session_service_pb2_grpc.SessionServiceStub(sessionsvc)),
        messages=previews,
        sender=providers,
        window_s=settings.window_s,
    )

    async def bring_up() -> None:
        # The topic must exist before a consumer subscribes to it.
        await until_done("push job topic", lambda: ensure_topic(kafka))
        await until_done("subscription", consumer.start)
        tasks.forever("pipeline", pipeline.run())

    tasks.spawn("previews", connect_previews())
    starting = asyncio.ensure_future(bring_up())
    try:
        if not await until_terminated_or(starting):
            starting.result()
            await shell.started()
            await wait_for_termination_signal()
    finally:
        starting.cancel()
        await shell.drain()
        await shell.stop(SHUTDOWN_GRACE_S)
        # What is not sent is not committed: the group's next owner sends it.
        await tasks.join_then_close(timeout_s=SHUTDOWN_GRACE_S)
        await consumer.close()
        await providers.aclose()
        await sessionsvc.close()
        await pg_pool.close()
        await cassandra.close()
        await asyncio.to_thread(tracing.shutdown)
        log.info(
            "stopped",
            extra={"fields": {"jobs_read": pipeline.jobs_read, "pushes": pipeline.pushes_sent}},
        )


def main() -> None:
    settings = NotifySettings.from_env(os.environ)
    logs.configure("notifysvc", settings.common.log_level)
    tracing = Tracing.from_env(os.environ, service="notifysvc", instance=settings.instance_id)
    uvloop.run(run(settings, tracing))


if __name__ == "__main__":
    main()
