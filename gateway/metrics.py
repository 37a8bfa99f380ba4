"""The gateway's metrics: connections, handshakes, frames each way, errors
told to clients, deliveries pushed.

Frame kinds are the oneof fields of ``ClientFrame`` and ``ServerFrame``
(``none`` for a frame that sets none, ``invalid`` for one that does not
decode); error reasons come from the error vocabulary. Both are small fixed
sets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

from prometheus_client import Counter, Gauge
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from chatmesh.metrics import children, oneof_names
from chatmesh.v1 import client_pb2

OPEN_CONNECTIONS = Gauge(
    "chatmesh_gateway_open_connections",
    "WebSocket connections this gateway holds.",
)
HANDSHAKES = Counter(
    "chatmesh_gateway_handshakes_total",
    "WebSocket upgrade requests, by outcome (accepted, unauthorized, unavailable).",
    ["outcome"],
)
HANDSHAKES_SHED = Counter(
    "chatmesh_gateway_handshakes_shed_total",
    "Upgrade requests refused (503) because the handshakes in progress and their line were full,"
    " or a turn did not come in time.",
)
HANDSHAKES_ABANDONED = Counter(
    "chatmesh_gateway_handshakes_abandoned_total",
    "Handshakes whose client had gone by the time their turn came (turn) or by their hello"
    " (registration): their work was skipped.",
    ["stage"],
)
HANDSHAKES_IN_PROGRESS = Gauge(
    "chatmesh_gateway_handshakes_in_progress",
    "Handshakes worked on now (upgrade request to hello), and those waiting for a turn.",
    ["state"],
)
FRAMES_RECEIVED = Counter(
    "chatmesh_gateway_frames_received_total",
    "Frames received from clients, by kind.",
    ["kind"],
)
FRAMES_SENT = Counter(
    "chatmesh_gateway_frames_sent_total",
    "Frames written to clients, by kind.",
    ["kind"],
)
ERRORS_SENT = Counter(
    "chatmesh_gateway_errors_sent_total",
    "Error frames written to clients, by reason.",
    ["reason"],
)
DELIVERIES_PUSHED = Counter(
    "chatmesh_gateway_deliveries_pushed_total",
    "Delivered frames queued to a connection of this gateway.",
)

_RECEIVED = children(FRAMES_RECEIVED, [*oneof_names(client_pb2.ClientFrame, "kind"), "invalid"])
_SENT = children(FRAMES_SENT, oneof_names(client_pb2.ServerFrame, "kind"))
_HANDSHAKES = children(
    HANDSHAKES, ["accepted", "unauthorized", "forbidden", "rate_limited", "unavailable"]
)
_HEALTH_PATH = "/healthz"

ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None]]


def frame_received(kind: str | None) -> None:
    """A client frame of ``kind`` (a ``ClientFrame`` oneof field, ``invalid``, or None)."""
    _RECEIVED[kind].inc()


def frame_sent(frame: client_pb2.ServerFrame) -> None:
    kind = frame.WhichOneof("kind")
    _SENT[kind].inc()
    if kind == "error":
        ERRORS_SENT.labels(frame.error.reason).inc()


PRESENCE_SUBSCRIPTIONS = Gauge(
    "chatmesh_gateway_presence_subscriptions",
    "Users whose presence this gateway follows: one subscription each, however"
    " many of its connections watch them.",
)
PRESENCE_CHANGES = Counter(
    "chatmesh_gateway_presence_changes_total",
    "Presence changes received from presencesvc (each handed to every connection watching).",
)


def watch_presence_subscriptions(count: Callable[[], int]) -> None:
    PRESENCE_SUBSCRIPTIONS.set_function(count)


def watch_handshakes(in_progress: Callable[[], int], waiting: Callable[[], int]) -> None:
    HANDSHAKES_IN_PROGRESS.labels("in_progress").set_function(in_progress)
    HANDSHAKES_IN_PROGRESS.labels("waiting").set_function(waiting)


def watch_connections(count: Callable[[], int]) -> None:
    """The open connections gauge reads ``count`` at each scrape: nothing on the hot path."""
    OPEN_CONNECTIONS.set_function(count)


def counting_handshakes(process_request: ProcessRequest) -> ProcessRequest:
    """``process_request`` that counts each upgrade request by its outcome;
    health checks, which share the port, are not upgrades and not counted."""

    async def counted(websocket: ServerConnection, request: Request) -> Response | None:
        response = await process_request(websocket, request)
        if request.path.split("?", 1)[0] != _HEALTH_PATH:
            _HANDSHAKES[_outcome(response)].inc()
        return response

    return counted


def _outcome(response: Response | None) -> str:
    if response is None:
        return "accepted"  # the upgrade goes ahead
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        return "unauthorized"
    if response.status_code == HTTPStatus.FORBIDDEN:
        return "forbidden"  # a removed device's token
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        return "rate_limited"
    return "unavailable"
