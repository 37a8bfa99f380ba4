"""Serving gRPC: every service gets mutual TLS, per-RPC authorization,
metrics and tracing of every call, health checking and server reflection.

``GrpcServer`` owns one ``grpc.aio`` server and its ``grpc.health.v1``
servicer. It only listens with mesh credentials: every caller presents a
certificate from the mesh CA, and ``chatmesh.mesh.policy`` decides what it
may call. The lifecycle is explicit: ``start`` binds with every service
NOT_SERVING; ``set_serving`` follows the process's readiness (its
dependencies answer); ``drain`` flips health to NOT_SERVING for good so load
balancers stop sending new calls; ``stop`` lets in-flight calls finish within
a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from chatmesh.failures import StoreFailureInterceptor
from chatmesh.mesh.authz import AuthorizationInterceptor
from chatmesh.mesh.credentials import MeshTls
from chatmesh.mesh.policy import Rule, build_policy
from chatmesh.rpc_observability import ObservingInterceptor, client_interceptors
from chatmesh.tracing import NO_TRACING, Tracing

log = logging.getLogger(__name__)

# Keepalive suited to long-lived gateway streams through L4 balancers that drop
# idle flows: ping every 20 s, give up after 10 s without an answer.
SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
)
CLIENT_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)
HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def mesh_channel(
    tls: MeshTls, target: str, service: str, *, tracing: Tracing = NO_TRACING
) -> grpc.aio.Channel:
    """A channel to one of our services, which must prove it is ``service``;
    with tracing on, its unary calls carry the caller's trace."""
    return tls.channel(target, service, CLIENT_OPTIONS, interceptors=client_interceptors(tracing))


class GrpcServer:
    def __init__(
        self,
        listen: str,
        service_names: Sequence[str],
        add_servicers: Callable[[grpc.aio.Server], None],
        *,
        tls: MeshTls,
        policy: Mapping[str, Rule] | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._listen = listen
        self._service_names = list(service_names)
        self._tls = tls
        self._server = grpc.aio.server(
            options=SERVER_OPTIONS,
            interceptors=[
                # Outermost, so that refused and failed calls are counted too.
                ObservingInterceptor(tracing),
                AuthorizationInterceptor(build_policy() if policy is None else policy),
                StoreFailureInterceptor(),
            ],
        )
        self._health = HealthServicer()
        add_servicers(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self._service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self.port = 0
        self._draining = False

    async def start(self) -> int:
        self.port = self._server.add_secure_port(self._listen, self._tls.server_credentials())
        if self.port == 0:
            raise OSError(f"cannot bind gRPC listener {self._listen}")
        await self._server.start()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info("grpc serving", extra={"fields": {"listen": self._listen, "port": self.port}})
        return self.port

    async def set_serving(self, serving: bool) -> None:
        if self._draining:
            return
        await self._set_health(
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def drain(self) -> None:
        self._draining = True
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for name in ["", *self._service_names]:
            await self._health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace_s)


async def wait_for_termination_signal() -> None:
    """Returns on the first SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("termination signal received")
