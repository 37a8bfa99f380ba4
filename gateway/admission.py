"""Who may open a connection now: a cap per gateway, a bound on handshakes in
progress, and handshake rates per source address and per user, shared by
every gateway through Redis.

A handshake costs a token verification, a session registration and, on
reconnect, a catch-up sync; a client that opens sockets in a loop (or many
clients behind one address) must be slowed down before any of that.

The source address is the TCP peer, unless the peer is a trusted proxy (the
edge Envoy), whose ``X-Forwarded-For`` last entry is then the client's:
Envoy appends the address it saw, so earlier entries may be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from chatmesh.ratelimit import Limit, RateLimiter
from gateway.handshake_gate import HandshakeGate

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_connections: int = 50_000
    # Handshakes worked on at once (from the upgrade request to the hello),
    # and how many more may wait for a turn, for how long
    # (``gateway.handshake_gate``).
    max_handshakes_in_flight: int = 64
    max_handshakes_waiting: int = 2048
    max_handshake_wait_s: float = 2.0
    per_address: Limit = field(default_factory=lambda: Limit("handshake-address", 20.0, 100))
    per_user: Limit = field(default_factory=lambda: Limit("handshake-user", 2.0, 20))


def parse_networks(spec: str) -> list[IpNetwork]:
    return [ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip()]


class Admission:
    def __init__(
        self,
        limiter: RateLimiter,
        limits: AdmissionLimits,
        trusted_proxies: Sequence[IpNetwork],
        open_connections: Callable[[], int],
    ) -> None:
        self._limiter = limiter
        self._limits = limits
        self._trusted = list(trusted_proxies)
        self._open_connections = open_connections
        self._gate = HandshakeGate(
            in_progress=limits.max_handshakes_in_flight,
            waiting=limits.max_handshakes_waiting,
            max_wait_s=limits.max_handshake_wait_s,
        )

    async def enter_handshake(self, websocket: ServerConnection) -> Response | None:
        """Waits for ``websocket``'s turn to be worked on, or refuses it."""
        if await self._gate.enter(websocket):
            return None
        return _refuse(websocket, HTTPStatus.SERVICE_UNAVAILABLE, "gateway busy", 1.0)

    def handshake_done(self, websocket: ServerConnection) -> None:
        self._gate.done(websocket)

    @property
    def handshakes(self) -> HandshakeGate:
        return self._gate

    def client_address(self, peer: str | None, headers: Headers) -> str:
        if peer is None:
            return "unknown"
        forwarded = headers.get("X-Forwarded-For")
        if forwarded and self._is_trusted(peer):
            return forwarded.rsplit(",", 1)[-1].strip()
        return peer

    async def before_token(self, websocket: ServerConnection, address: str) -> Response | None:
        """The cap and the address's rate; checked before the token costs anything."""
        if self._open_connections() >= self._limits.max_connections:
            return _refuse(websocket, HTTPStatus.SERVICE_UNAVAILABLE, "gateway full", 1.0)
        retry_after_s = await self._limiter.allow(self._limits.per_address, address)
        if retry_after_s:
            return _refuse(
                websocket, HTTPStatus.TOO_MANY_REQUESTS, "too many handshakes", retry_after_s
            )
        return None

    async def after_token(self, websocket: ServerConnection, user_id: str) -> Response | None:
        retry_after_s = await self._limiter.allow(self._limits.per_user, user_id)
        if retry_after_s:
            return _refuse(
                websocket, HTTPStatus.TOO_MANY_REQUESTS, "too many handshakes", retry_after_s
            )
        return None

    def _is_trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)


def _refuse(
    websocket: ServerConnection, status: HTTPStatus, why: str, retry_after_s: float
) -> Response:
    response = websocket.respond(status, f"{why}; retry later\n")
    response.headers["Retry-After"] = str(max(1, round(retry_after_s + 0.5)))
    return response
