"""``python -m presencesvc``: the presence service process.

Serves PresenceService (ready while Redis and PostgreSQL answer) and sweeps:
gateways whose lease ran out, and offlines that came due.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import asyncpg
import grpc
import uvloop

from chatmesh import logs, redis_client
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, wait_for_termination_signal
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell
from chatmesh.readiness import Readiness
from chatmesh.settings import (
    DEFAULT_PG_DSN,
    DEFAULT_REDIS_URL,
    CommonSettings,
    TlsFiles,
    env_bool,
    env_int,
    env_str,
)
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import Tracing
from chatmesh.v1 import presence_service_pb2, presence_service_pb2_grpc
from presencesvc.directory import PostgresPresenceDirectory
from presencesvc.presence import OFFLINE_GRACE_MS, PresenceTracker
from presencesvc.servicer import PresenceServicer
from presencesvc.store import RedisPresenceStore

log = logging.getLogger("presencesvc")
DEFAULT_GRPC_PORT = 50053
SHUTDOWN_GRACE_S = 5.0
# Offlines are carried out within this of coming due.
SWEEP_INTERVAL_S = 0.5
_SERVICE = presence_service_pb2.DESCRIPTOR.services_by_name["PresenceService"]


@dataclass(frozen=True, slots=True)
class PresenceSettings:
    common: CommonSettings
    redis_url: str
    redis_tls: TlsFiles
    redis_cluster: bool  # the URL names one node of a Redis Cluster
    pg_dsn: str
    grace_ms: int  # a reconnect within this makes no offline/online pair

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PresenceSettings:
        return cls(
            common=CommonSettings.from_env(env, default_grpc_port=DEFAULT_GRPC_PORT),
            redis_url=env_str(env, "REDIS_URL", DEFAULT_REDIS_URL),
            redis_tls=TlsFiles.from_env(env, "REDIS"),
            redis_cluster=env_bool(env, "REDIS_CLUSTER", False),
            pg_dsn=env_str(env, "PG_DSN", DEFAULT_PG_DSN),
            grace_ms=env_int(env, "PRESENCE_GRACE_MS", OFFLINE_GRACE_MS),
        )


async def run(settings: PresenceSettings, tracing: Tracing) -> None:
    client = redis_client.connect(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster
    )
    # min_size 0: creating the pool connects to nothing, so PostgreSQL may be down.
    pg_pool = await asyncpg.create_pool(settings.pg_dsn, min_size=0, max_size=8)
    tracker = PresenceTracker(
        store=RedisPresenceStore(client, settings.common.key_prefix, SystemClock()),
        directory=PostgresPresenceDirectory(pg_pool),
        events=client,
        key_prefix=settings.common.key_prefix,
        grace_ms=settings.grace_ms,
    )

    def add_servicer(server: grpc.aio.Server) -> None:
        presence_service_pb2_grpc.add_PresenceServiceServicer_to_server(
            PresenceServicer(tracker), server
        )

    readiness = Readiness()
    readiness.add_check("redis", partial(redis_client.ping, client))
    readiness.add_check("postgres", lambda: pg_pool.fetchval("SELECT 1"))
    shell = ProcessShell(
        settings.common.ops_listen,
        readiness,
        GrpcServer(
            settings.common.grpc_listen,
            [_SERVICE.full_name],
            add_servicer,
            tls=MeshTls(settings.common.mesh_tls_dir),
            tracing=tracing,
        ),
    )
    tasks = TaskGroup("presencesvc")
    try:
        await shell.listen()
        # Every instance sweeps: each transition is atomic, so it happens once.
        tasks.every("sweep", SWEEP_INTERVAL_S, tracker.sweep)
        await shell.started()
        await wait_for_termination_signal()
    finally:
        await shell.drain()
        await shell.stop(SHUTDOWN_GRACE_S)
        await tasks.close()
        await pg_pool.close()
        await client.aclose()
        await asyncio.to_thread(tracing.shutdown)
        log.info("stopped")


def main() -> None:
    settings = PresenceSettings.from_env(os.environ)
    logs.configure("presencesvc", settings.common.log_level)
    tracing = Tracing.from_env(os.environ, service="presencesvc")
    uvloop.run(run(settings, tracing))


if __name__ == "__main__":
    main()
