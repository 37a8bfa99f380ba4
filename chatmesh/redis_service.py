"""The process shell shared by the services whose only store is Redis.

They listen at once and are ready while Redis answers; calls made while it
is down get UNAVAILABLE/STORE_UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from functools import partial

import grpc
import uvloop

from chatmesh import logs, redis_client
from chatmesh.grpc_server import GrpcServer, wait_for_termination_signal
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell
from chatmesh.readiness import Readiness
from chatmesh.settings import RedisServiceSettings
from chatmesh.tracing import Tracing

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 5.0

# Given the Redis client and the settings, registers the servicer on a server.
Wiring = Callable[
    [redis_client.RedisClient, RedisServiceSettings], Callable[[grpc.aio.Server], None]
]


def run_redis_service(
    *, name: str, service_full_name: str, default_grpc_port: int, wire: Wiring
) -> None:
    """``main`` of such a service: settings from the environment, serve until SIGTERM."""
    settings = RedisServiceSettings.from_env(os.environ, default_grpc_port=default_grpc_port)
    logs.configure(name, settings.common.log_level)
    tracing = Tracing.from_env(os.environ, service=name)

    async def run() -> None:
        client = redis_client.connect(
            settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster
        )
        server = GrpcServer(
            settings.common.grpc_listen,
            [service_full_name],
            wire(client, settings),
            tls=MeshTls(settings.common.mesh_tls_dir),
            tracing=tracing,
        )
        readiness = Readiness()
        readiness.add_check("redis", partial(redis_client.ping, client))
        shell = ProcessShell(settings.common.ops_listen, readiness, server)
        try:
            await shell.listen()
            await shell.started()
            await wait_for_termination_signal()
        finally:
            await shell.drain()
            await shell.stop(SHUTDOWN_GRACE_S)
            await client.aclose()
            await asyncio.to_thread(tracing.shutdown)
            log.info("stopped")

    uvloop.run(run())
