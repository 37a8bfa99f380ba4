"""``python -m gateway``: a WebSocket edge instance.

It listens at once and refuses WebSocket handshakes (HTTP 503, ``/healthz``
503) until it is ready: subscribed to its delivery channel in Redis, with a
stream to msgsvc and its heartbeat accepted by sessionsvc, whatever order
they come up in.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import uvloop
from websockets.asyncio.server import serve

from chatmesh import logs, revocations
from chatmesh.auth import TokenVerifier
from chatmesh.channels import gateway_channel
from chatmesh.clock import SystemClock
from chatmesh.grpc_server import GrpcServer, mesh_channel, wait_for_termination_signal
from chatmesh.mesh.credentials import MeshTls
from chatmesh.process import ProcessShell
from chatmesh.pubsub import ChannelSubscriber
from chatmesh.ratelimit import RateLimiter
from chatmesh.readiness import Check, Readiness
from chatmesh.redis_client import connect as redis_client_for
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import Tracing
from chatmesh.v1 import presence_service_pb2_grpc, session_service_pb2_grpc
from gateway import metrics
from gateway.admission import Admission
from gateway.connection import ConnectionRegistry
from gateway.deliveries import DisconnectPublisher, parse_delivery
from gateway.edge import HARD_MAX_FRAME_BYTES, Edge
from gateway.heartbeat import Heartbeats
from gateway.presence import REPORT_INTERVAL_S, PresenceReporter, PresenceWatches
from gateway.registrar import (
    GatewayHeartbeats,
    Registrar,
)
from gateway.settings import GatewaySettings, split_host_port
from gateway.upstream import MsgsvcLink

log = logging.getLogger("gateway")
# Connections not yet accepted that the kernel queues. asyncio's default of
# 100 drops the SYNs of a reconnect storm (thousands of clients whose
# gateway died, arriving within a second), and each dropped one costs its
# client a connect timeout and a retry; the kernel caps it at somaxconn.
LISTEN_BACKLOG = 4096


def _holds(condition: Callable[[], bool], what: str) -> Check:
    async def check() -> None:
        if not condition():
            raise ConnectionError(what)

    return check


async def run(settings: GatewaySettings, verifier: TokenVerifier, tracing: Tracing) -> None:
    tls = MeshTls(settings.common.mesh_tls_dir)
    redis_client = redis_client_for(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster
    )
    # Subscriptions on a client of their own that never reconnects by
    # itself (chatmesh.pubsub): a lost subscription must be noticed.
    subscriptions_client = redis_client_for(
        settings.redis_url, tls=settings.redis_tls, cluster=settings.redis_cluster, retries=0
    )
    msgsvc = mesh_channel(tls, settings.msgsvc_addr, "msgsvc", tracing=tracing)
    sessionsvc = mesh_channel(tls, settings.sessionsvc_addr, "sessionsvc", tracing=tracing)
    presencesvc = mesh_channel(tls, settings.presencesvc_addr, "presencesvc", tracing=tracing)
    registry = ConnectionRegistry()
    metrics.watch_connections(lambda: len(registry))
    registrar = Registrar(
        settings.gateway_id, session_service_pb2_grpc.SessionServiceStub(sessionsvc)
    )
    presence_stub = presence_service_pb2_grpc.PresenceServiceStub(presencesvc)
    reporter = PresenceReporter(
        settings.gateway_id, presence_stub, registry, lease_s=settings.presence_lease_s
    )
    watches = PresenceWatches(subscriptions_client, settings.common.key_prefix, presence_stub)
    metrics.watch_presence_subscriptions(watches.subscriptions)
    heartbeats = GatewayHeartbeats(registrar)
    keepalive = Heartbeats()
    edge: Edge
    link = MsgsvcLink(
        msgsvc,
        settings.gateway_id,
        lambda c, f: edge.reply(c, f),
        streams=settings.msgsvc_streams,
        tracing=tracing,
    )
    admission = Admission(
        RateLimiter(redis_client, settings.common.key_prefix),
        settings.admission,
        settings.trusted_proxies,
        lambda: len(registry),
    )
    metrics.watch_handshakes(
        lambda: admission.handshakes.in_progress, lambda: admission.handshakes.waiting
    )
    edge = Edge(
        gateway_id=settings.gateway_id,
        verifier=verifier,
        registry=registry,
        registrar=registrar,
        link=link,
        disconnects=DisconnectPublisher(redis_client, settings.common.key_prefix),
        revocations=revocations.Revocations(redis_client, settings.common.key_prefix),
        admission=admission,
        clock=SystemClock(),
        presence=watches,
        heartbeats=keepalive,
        nudge_window_s=settings.nudge_window_s,
    )

    def on_delivery(payload: bytes) -> None:
        if (delivery := parse_delivery(payload)) is not None:
            edge.deliver(delivery)

    def on_revocation(payload: bytes) -> None:
        if (revocation := revocations.decode(payload)) is not None:
            edge.revoke(revocation)

    subscriber = ChannelSubscriber(
        subscriptions_client,
        {
            gateway_channel(settings.common.key_prefix, settings.gateway_id): on_delivery,
            revocations.revocations_channel(settings.common.key_prefix): on_revocation,
        },
        edge.delivery_interrupted,
    )
    readiness = Readiness()
    # Gates: once open, a gateway rides out these outages itself (frames wait
    # for msgsvc, clients are told to sync after a lost subscription, a
    # failed session registration asks the client to retry), and refusing
    # every new connection meanwhile would only add a reconnect storm.
    readiness.add_gate("redis-subscription", _holds(subscriber.subscribed.is_set, "not subscribed"))
    readiness.add_gate("msgsvc", _holds(link.connected, "no msgsvc stream"))
    readiness.add_gate("sessionsvc", _holds(heartbeats.fresh, "no gateway heartbeat yet"))
    readiness.on_change(edge.set_ready)
    shell = ProcessShell(
        settings.common.ops_listen,
        readiness,
        GrpcServer(settings.common.grpc_listen, [], lambda s: None, tls=tls, tracing=tracing),
    )
    await shell.listen()
    tasks = TaskGroup("gateway")
    tasks.forever("delivery-subscriber", subscriber.run())
    link.open()
    tasks.forever("gateway-heartbeat", heartbeats.run())
    tasks.every("presence-report", REPORT_INTERVAL_S, reporter.report_once)
    tasks.forever("presence-subscription", watches.run())
    tasks.forever("keepalive", keepalive.run())
    await shell.started()

    host, port = split_host_port(settings.ws_listen)
    async with serve(
        edge.handle,
        host,
        port,
        process_request=metrics.counting_handshakes(edge.process_request),
        max_size=HARD_MAX_FRAME_BYTES,
        # Liveness is one sweep over every connection (gateway.heartbeat),
        # not websockets' keepalive task per connection.
        ping_interval=None,
        compression=None,
        backlog=LISTEN_BACKLOG,
    ) as server:
        log.info(
            "websocket serving",
            extra={"fields": {"listen": settings.ws_listen, "gateway_id": settings.gateway_id}},
        )
        await wait_for_termination_signal()
        await shell.drain()
        drained = await edge.drain(settings.drain_s)
        server.close(close_connections=False)
        try:
            await registrar.unregister(drained)
        except Exception:
            log.warning("session unregister at drain failed")
        try:
            await reporter.report_once()  # its users are gone: no need to wait for the lease
        except Exception:
            log.warning("presence report at drain failed")
    await tasks.join_then_close(timeout_s=1.0)
    await link.close()
    await shell.stop(1.0)
    for channel in (msgsvc, sessionsvc, presencesvc):
        await channel.close()
    await redis_client.aclose()
    await subscriptions_client.aclose()
    await asyncio.to_thread(tracing.shutdown)
    log.info("stopped")


def main() -> None:
    settings = GatewaySettings.from_env(os.environ)
    logs.configure("gateway", settings.common.log_level)
    verifier = TokenVerifier(Path(settings.jwt_public_key_file).read_bytes())
    tracing = Tracing.from_env(os.environ, service="gateway", instance=settings.gateway_id)
    uvloop.run(run(settings, verifier, tracing))


if __name__ == "__main__":
    main()
