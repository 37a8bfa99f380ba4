"""Telling sessionsvc about this gateway's connections.

Session registration is awaited before a connection is greeted, so a message
sent to a device that has seen its hello is routed to it. Registrations of
handshakes that finish together go in one call (when a gateway dies, its
clients all come back to the others at once). (Presence is reported in
batches by ``gateway.presence.PresenceReporter``.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from chatmesh.coalescer import Coalescer
from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc
from gateway.connection import ClientConnection

log = logging.getLogger(__name__)

GATEWAY_HEARTBEAT_S = 10.0
GATEWAY_TTL_S = 30  # three missed beats before this gateway's sessions stop counting
RPC_TIMEOUT_S = 2.0
MAX_REGISTRATIONS_PER_CALL = 256


class Registrar:
    def __init__(
        self,
        gateway_id: str,
        sessions: session_service_pb2_grpc.SessionServiceStub,
    ) -> None:
        self._gateway_id = gateway_id
        self._sessions = sessions
        self._registrations: Coalescer[ClientConnection, list[session_service_pb2.Session]] = (
            Coalescer(
                self._register_many,
                max_batch=MAX_REGISTRATIONS_PER_CALL,
                name="session-registrations",
            )
        )

    def _session(self, conn: ClientConnection) -> session_service_pb2.Session:
        return session_service_pb2.Session(
            user_id=conn.identity.user_id,
            device_id=conn.identity.device_id,
            gateway_id=self._gateway_id,
            connection_id=conn.connection_id,
        )

    async def register(self, conn: ClientConnection) -> list[session_service_pb2.Session]:
        """Records the connection's session; returns the older connections of
        the same device it replaced (here or on other gateways)."""
        return await self._registrations.submit(conn)

    async def _register_many(
        self, conns: Sequence[ClientConnection]
    ) -> list[list[session_service_pb2.Session]]:
        response = await self._sessions.RegisterSessions(
            session_service_pb2.RegisterSessionsRequest(sessions=[self._session(c) for c in conns]),
            timeout=RPC_TIMEOUT_S,
            # Ride out a sessionsvc restart within the timeout instead of
            # bouncing the client at the first failed connection attempt.
            wait_for_ready=True,
        )
        # A session replaces the device's one before it, which may be one of
        # this batch: each connection closes every other of its device.
        return [
            [
                old
                for old in response.replaced
                if (old.user_id, old.device_id) == (c.identity.user_id, c.identity.device_id)
                and old.connection_id != c.connection_id
            ]
            for c in conns
        ]

    async def unregister(self, conns: list[ClientConnection]) -> None:
        if conns:
            await self._sessions.UnregisterSessions(
                session_service_pb2.UnregisterSessionsRequest(
                    sessions=[self._session(c) for c in conns]
                ),
                timeout=RPC_TIMEOUT_S,
            )

    async def gateway_heartbeat(self) -> None:
        await self._sessions.GatewayHeartbeat(
            session_service_pb2.GatewayHeartbeatRequest(
                gateway_id=self._gateway_id, ttl_seconds=GATEWAY_TTL_S
            ),
            timeout=RPC_TIMEOUT_S,
        )


class GatewayHeartbeats:
    """Keeps this gateway's sessions alive in sessionsvc: a beat every
    ``GATEWAY_HEARTBEAT_S`` while it answers, retried sooner (with jitter)
    while it does not. ``fresh`` says whether the last beat is recent enough
    that this gateway's sessions still count."""

    def __init__(self, registrar: Registrar, rng: random.Random | None = None) -> None:
        self._registrar = registrar
        self._rng = rng or random.Random()
        self._last_ok: float | None = None

    def fresh(self) -> bool:
        return self._last_ok is not None and time.monotonic() - self._last_ok < GATEWAY_TTL_S

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._registrar.gateway_heartbeat()
            except Exception as exc:
                failures += 1
                if failures <= 3 or failures % 10 == 0:
                    log.warning(
                        "gateway heartbeat failed",
                        extra={"fields": {"failures": failures, "error": repr(exc)}},
                    )
                await asyncio.sleep(
                    self._rng.uniform(0, min(GATEWAY_HEARTBEAT_S, 0.25 * 2 ** min(failures, 10)))
                )
                continue
            failures = 0
            self._last_ok = time.monotonic()
            await asyncio.sleep(GATEWAY_HEARTBEAT_S)
