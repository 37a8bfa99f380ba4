"""The WebSocket edge: authenticate, translate frames, hand them upstream.

Handshake: the token comes in ``Authorization: Bearer <jwt>`` or, for
browsers that cannot set headers, the ``access_token`` query parameter. A
missing or invalid token is refused with HTTP 401 before the upgrade; no
WebSocket is opened. ``GET /healthz`` answers 200 while the gateway accepts
connections and 503 while it drains.

Frames: text frames are protobuf JSON, binary frames protobuf bytes; replies
use the encoding of the client's latest frame (initially the ``encoding``
query parameter, default JSON). A frame over ``MAX_FRAME_BYTES`` gets a
FRAME_TOO_LARGE error frame and is dropped; one over ``HARD_MAX_FRAME_BYTES``
closes the connection with 1009 before it is even buffered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from http import HTTPStatus
from urllib.parse import SplitResult, parse_qs, urlsplit

import grpc
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chatmesh.auth import TokenVerifier, VerifiedToken
from chatmesh.clock import Clock
from chatmesh.errors import ChatmeshError, InvalidArgument, ResourceExhausted, error_frame
from chatmesh.frames import (
    CLOSE_DEVICE_REVOKED,
    CLOSE_SERVICE_RESTART,
    CLOSE_SUPERSEDED,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TRY_AGAIN_LATER,
    Encoding,
    decode_client_frame,
    encoding_of,
)
from chatmesh.revocations import Revocations
from chatmesh.v1 import client_pb2, delivery_pb2, session_service_pb2
from chatmesh.ws_close import close_within
from gateway import metrics
from gateway.admission import Admission
from gateway.connection import (
    NUDGE_WINDOW_S,
    ClientConnection,
    ConnectionRegistry,
    TokenBucket,
)
from gateway.deliveries import DisconnectPublisher
from gateway.heartbeat import Heartbeats
from gateway.presence import PresenceWatches
from gateway.registrar import Registrar
from gateway.upstream import MsgsvcLink

log = logging.getLogger(__name__)

DEVICE_NOT_REGISTERED = "DEVICE_NOT_REGISTERED"

MAX_FRAME_BYTES = 64 * 1024  # documented client limit: bodies are text; media goes by URL
MAX_REQUEST_ID_CHARS = 128
HARD_MAX_FRAME_BYTES = 1024 * 1024  # beyond this the frame is not even read
# Per connection. Sends are the costly, abusable frames; the rest (sync,
# receipts, history) come in bursts when a device reconnects, and a sync of
# many conversations must not trip the limit meant for spam.
SEND_RATE_PER_S = 20.0
SEND_BURST = 60
REQUEST_RATE_PER_S = 100.0
REQUEST_BURST = 300
# Answered by msgsvc; everything else but ping is refused here.
_UPSTREAM_KINDS = frozenset(
    {
        "send",
        "sync",
        "sync_conversation",
        "mark",
        "history",
        "list_conversations",
        "create_group",
        "change_group",
        "get_group",
        "get_receipts",
        "register_push",
        "mute_conversation",
        "typing",
        "create_upload",
        "complete_upload",
        "get_download_url",
    }
)
# Answered here, with presencesvc: watches live on this gateway.
_PRESENCE_KINDS = frozenset({"watch_presence", "unwatch_presence", "set_presence_visibility"})
# Frames that write a message (a group change writes its system message):
# limited like sends.
_WRITE_KINDS = frozenset({"send", "create_group", "change_group"})
# What every connection keeps of its handshake once it is judged.
_JUDGED_REQUEST = Request("/", Headers())


def _client_gone(websocket: ServerConnection) -> bool:
    transport = websocket.transport
    return transport is None or transport.is_closing()


def _empty(request: Request) -> None:
    """Drops a judged request's path and headers. Replacing the connection's
    reference is not enough: websockets' frame parser runs on in the
    generator that parsed the handshake, whose frame holds the request for
    the life of the connection (about 5 KiB of header strings each)."""
    request.path = "/"
    request.headers.clear()


class Edge:
    def __init__(
        self,
        *,
        gateway_id: str,
        verifier: TokenVerifier,
        registry: ConnectionRegistry,
        registrar: Registrar,
        link: MsgsvcLink,
        disconnects: DisconnectPublisher,
        revocations: Revocations,
        admission: Admission,
        clock: Clock,
        presence: PresenceWatches,
        heartbeats: Heartbeats,
        nudge_window_s: float = NUDGE_WINDOW_S,
    ) -> None:
        self._presence = presence
        self._heartbeats = heartbeats
        # Presence requests in flight, held so they are not collected early.
        self._requests: set[asyncio.Task[None]] = set()
        self._revocations = revocations
        self._admission = admission
        self._nudge_window_s = nudge_window_s
        self._disconnects = disconnects
        self._gateway_id = gateway_id
        self._clock = clock
        self._verifier = verifier
        self._registry = registry
        self._registrar = registrar
        self._link = link
        # Handshake result, held until the handler runs; weak so a handshake
        # that fails after authentication leaves nothing behind.
        self._identities: weakref.WeakKeyDictionary[
            ServerConnection, tuple[VerifiedToken, Encoding]
        ] = weakref.WeakKeyDictionary()
        self.draining = False
        # Until the gateway's dependencies answer, handshakes are refused:
        # a connection now could neither register nor send.
        self.ready = False

    async def set_ready(self, ready: bool) -> None:
        self.ready = ready

    # -- handshake ---------------------------------------------------------

    async def process_request(
        self, websocket: ServerConnection, request: Request
    ) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            if self.draining:
                return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
            if not self.ready:
                return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
            return websocket.respond(HTTPStatus.OK, "ok\n")
        if self.draining:
            return websocket.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "draining; reconnect elsewhere\n"
            )
        if not self.ready:
            return websocket.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "not ready; reconnect elsewhere or later\n"
            )
        if (busy := await self._admission.enter_handshake(websocket)) is not None:
            metrics.HANDSHAKES_SHED.inc()
            return busy
        if _client_gone(websocket):
            # Gave up while waiting in line (its open timeout, or Envoy's):
            # checking its token and registering it would be work for nobody.
            metrics.HANDSHAKES_ABANDONED.labels("turn").inc()
            self._admission.handshake_done(websocket)
            return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "client gone\n")
        try:
            response = await self._judge(websocket, request, url)
        except BaseException:
            self._admission.handshake_done(websocket)
            raise
        if response is not None:
            self._admission.handshake_done(websocket)
        return response

    async def _judge(
        self, websocket: ServerConnection, request: Request, url: SplitResult
    ) -> Response | None:
        address = self._admission.client_address(_peer_host(websocket), request.headers)
        try:
            refused = await self._admission.before_token(websocket, address)
        except Exception:
            log.warning("handshake admission check failed")
            return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
        if refused is not None:
            log.info("handshake refused", extra={"fields": {"address": address}})
            return refused
        query = parse_qs(url.query)
        bearer = _bearer(request.headers)
        token = bearer or (query.get("access_token") or [""])[0]
        if not token:
            return _unauthorized(websocket, "missing token")
        try:
            verified = self._verifier.verify_token(token)
        except ChatmeshError as exc:
            return _unauthorized(websocket, exc.message)
        identity = verified.identity
        try:
            refused = await self._admission.after_token(websocket, identity.user_id)
            if refused is not None:
                log.info("handshake refused", extra={"fields": {"user_id": identity.user_id}})
                return refused
            revoked_at_ms = await self._revocations.revoked_at_ms(
                identity.user_id, identity.device_id
            )
        except Exception:
            log.warning("revocation check failed", extra={"fields": {"user_id": identity.user_id}})
            return websocket.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
        if revoked_at_ms is not None and verified.issued_at_s * 1000 <= revoked_at_ms:
            return websocket.respond(HTTPStatus.FORBIDDEN, "device removed\n")
        encoding = (
            Encoding.BINARY if (query.get("encoding") or [""])[0] == "binary" else Encoding.JSON
        )
        self._identities[websocket] = (verified, encoding)
        log.debug(
            "handshake authenticated",
            extra={
                "fields": {
                    "user_id": identity.user_id,
                    "device_id": identity.device_id,
                    # Where the token came from, never the token.
                    "token_in": "header" if bearer else "query",
                    "encoding": encoding.value,
                }
            },
        )
        return None

    # -- connection ----------------------------------------------------------

    async def handle(self, websocket: ServerConnection) -> None:
        verified, encoding = self._identities.pop(websocket)
        # The handshake is judged: its headers (the token among them) would
        # only hold a few KiB per connection for as long as it lives. The
        # request is replaced, not cleared: websockets reads a missing one as
        # a handshake still to come, and would refuse the next frame.
        judged = websocket.request
        websocket.request = _JUDGED_REQUEST
        websocket.response = None
        if judged is not None:
            _empty(judged)
        if _client_gone(websocket):
            # Gone since its upgrade was judged: registering it would only
            # make sessionsvc route to nobody until it was unregistered.
            metrics.HANDSHAKES_ABANDONED.labels("registration").inc()
            self._admission.handshake_done(websocket)
            return
        identity = verified.identity
        conn = ClientConnection(
            websocket,
            identity,
            encoding,
            nudge_window_s=self._nudge_window_s,
            token_issued_at_s=verified.issued_at_s,
        )
        self._registry.add(conn)
        # The token is checked at the handshake only; the connection must not
        # outlive it.
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, verified.expires_at_s - self._clock.now_ms() / 1000),
            conn.close_soon,
            CLOSE_TOKEN_EXPIRED,
            "token expired; reconnect with a fresh token",
        )
        fields = {
            "connection_id": conn.connection_id,
            "user_id": identity.user_id,
            "device_id": identity.device_id,
        }
        try:
            try:
                replaced = await self._registrar.register(conn)
            except grpc.aio.AioRpcError as exc:
                # Unregistered, the device could not be reached: refuse rather
                # than accept a connection that silently receives nothing.
                log.warning(
                    "session registration failed",
                    extra={"fields": {**fields, "code": exc.code().name}},
                )
                await close_within(websocket, CLOSE_TRY_AGAIN_LATER, "sessions unavailable; retry")
                return
            await conn.greet(
                client_pb2.ServerFrame(
                    hello=client_pb2.HelloFrame(
                        user_id=identity.user_id,
                        device_id=identity.device_id,
                        connection_id=conn.connection_id,
                        gateway_id=self._gateway_id,
                        max_frame_bytes=MAX_FRAME_BYTES,
                    )
                )
            )
            self._admission.handshake_done(websocket)
            log.info("connected", extra={"fields": fields})
            self._heartbeats.add(conn)
            await self._supersede(replaced)
            limits = _Limits()
            async for data in websocket:
                self._on_frame(conn, data, limits)
        except ConnectionClosed:
            pass
        finally:
            self._admission.handshake_done(websocket)
            expiry.cancel()
            self._heartbeats.discard(conn)
            self._registry.remove(conn)
            await conn.stop()
            try:
                await self._presence.forget(conn)
            except Exception:
                log.warning("presence unwatch failed", extra={"fields": fields})
            if not self.draining:
                try:
                    await self._registrar.unregister([conn])
                except Exception:
                    log.warning("session unregister failed", extra={"fields": fields})
            log.info("disconnected", extra={"fields": fields})

    def _on_frame(self, conn: ClientConnection, data: str | bytes, limits: _Limits) -> None:
        conn.encoding = encoding_of(data)
        try:
            if _size(data) > MAX_FRAME_BYTES:
                raise InvalidArgument(
                    "FRAME_TOO_LARGE", f"frames are limited to {MAX_FRAME_BYTES} bytes"
                )
            frame = decode_client_frame(data)
            if len(frame.request_id) > MAX_REQUEST_ID_CHARS:
                # Echoed in the reply and kept while in flight: bounded.
                raise InvalidArgument(
                    "REQUEST_ID_TOO_LONG", f"request_id exceeds {MAX_REQUEST_ID_CHARS} characters"
                )
        except ChatmeshError as exc:
            metrics.frame_received("invalid")
            conn.send(error_frame(exc))
            return
        kind = frame.WhichOneof("kind")
        metrics.frame_received(kind)
        limit, rate = (
            (limits.sends, SEND_RATE_PER_S)
            if kind in _WRITE_KINDS
            else (limits.requests, REQUEST_RATE_PER_S)
        )
        if not limit.take():
            conn.send(
                error_frame(
                    ResourceExhausted("RATE_LIMITED", f"at most {rate:g} such frames per second"),
                    request_id=frame.request_id,
                    client_msg_id=frame.send.client_msg_id if kind == "send" else "",
                )
            )
            return
        if kind == "ping":
            conn.send(
                client_pb2.ServerFrame(
                    pong=client_pb2.PongFrame(
                        client_time_ms=frame.ping.client_time_ms,
                        server_time_ms=self._clock.now_ms(),
                    )
                )
            )
        elif kind in _PRESENCE_KINDS:
            handler = {
                "watch_presence": self._presence.watch,
                "unwatch_presence": self._presence.unwatch,
                "set_presence_visibility": self._presence.set_visibility,
            }[kind]
            task = asyncio.get_running_loop().create_task(handler(conn, frame))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)
        elif kind in _UPSTREAM_KINDS:
            self._link.submit(
                conn.connection_id, conn.identity.user_id, conn.identity.device_id, frame
            )
        else:  # a frame kind newer than this gateway
            conn.send(
                error_frame(
                    InvalidArgument("UNSUPPORTED_FRAME", f"frame kind {kind!r} is not supported"),
                    request_id=frame.request_id,
                )
            )

    async def _supersede(self, replaced: list[session_service_pb2.Session]) -> None:
        """Closes the older connections of a device that just connected again."""
        elsewhere: dict[str, list[delivery_pb2.DeliveryTarget]] = {}
        for old in replaced:
            if old.gateway_id == self._gateway_id:
                self._close_superseded(old.user_id, old.device_id, old.connection_id)
            else:
                elsewhere.setdefault(old.gateway_id, []).append(
                    delivery_pb2.DeliveryTarget(
                        user_id=old.user_id,
                        device_id=old.device_id,
                        connection_id=old.connection_id,
                    )
                )
        for gateway_id, targets in elsewhere.items():
            try:
                await self._disconnects.publish(gateway_id, targets)
            except Exception:
                log.warning(
                    "superseded connection not closed", extra={"fields": {"gateway_id": gateway_id}}
                )

    def _close_superseded(self, user_id: str, device_id: str, connection_id: str) -> None:
        conn = self._registry.by_id(connection_id)
        if conn is not None and (conn.identity.user_id, conn.identity.device_id) == (
            user_id,
            device_id,
        ):
            conn.close_soon(CLOSE_SUPERSEDED, "replaced by a newer connection of this device")

    # -- from upstream -------------------------------------------------------

    def reply(self, connection_id: str, frame: client_pb2.ServerFrame) -> None:
        if frame.WhichOneof("kind") is None:  # an acknowledgement only: nothing to write
            return
        conn = self._registry.by_id(connection_id)
        if conn is not None:
            conn.send(frame)
            # msgsvc checks the device on every request: if it is gone, the
            # connection goes too, even if its revocation was never heard.
            if frame.WhichOneof("kind") == "error" and frame.error.reason == DEVICE_NOT_REGISTERED:
                conn.close_soon(CLOSE_DEVICE_REVOKED, "device removed")

    def revoke(self, revocation: delivery_pb2.DeviceRevocation) -> None:
        """Closes the removed device's connections that authenticated with a
        token from before the removal."""
        for conn in self._registry.all():
            if (
                conn.identity.user_id == revocation.user_id
                and conn.identity.device_id == revocation.device_id
                and conn.token_issued_at_s * 1000 <= revocation.revoked_at_ms
            ):
                conn.close_soon(CLOSE_DEVICE_REVOKED, "device removed")

    def deliver(self, delivery: delivery_pb2.GatewayDelivery) -> None:
        for target in delivery.disconnect:
            self._close_superseded(target.user_id, target.device_id, target.connection_id)
        for target in delivery.targets:
            # The device's current connection, even if it reconnected here
            # after msgsvc looked the session up.
            conn = self._registry.by_device(target.user_id, target.device_id)
            if conn is None:
                continue
            metrics.DELIVERIES_PUSHED.inc()
            if delivery.frame.WhichOneof("kind") == "channel_activity":
                conn.nudge(delivery.frame.channel_activity)
            else:
                conn.send(delivery.frame)

    def delivery_interrupted(self) -> None:
        """Live deliveries published while the subscription was down are
        lost; every client is told to sync."""
        frame = client_pb2.ServerFrame(
            sync_required=client_pb2.SyncRequiredFrame(reason="DELIVERY_INTERRUPTED")
        )
        for conn in self._registry.all():
            conn.send(frame)

    # -- drain ---------------------------------------------------------------

    async def drain(self, window_s: float) -> list[ClientConnection]:
        """Closes every connection with 1012 spread over ``window_s`` so that
        clients reconnect elsewhere without arriving all at once."""
        self.draining = True
        conns = self._registry.all()

        async def close_later(conn: ClientConnection) -> None:
            await asyncio.sleep(random.uniform(0, window_s))
            await close_within(
                conn.websocket, CLOSE_SERVICE_RESTART, "gateway restarting; reconnect"
            )

        await asyncio.gather(*(close_later(c) for c in conns), return_exceptions=True)
        return conns


class _Limits:
    __slots__ = ("requests", "sends")

    def __init__(self) -> None:
        self.sends = TokenBucket(SEND_RATE_PER_S, SEND_BURST)
        self.requests = TokenBucket(REQUEST_RATE_PER_S, REQUEST_BURST)


def _bearer(headers: Headers) -> str:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _peer_host(websocket: ServerConnection) -> str | None:
    peer = websocket.remote_address
    return str(peer[0]) if peer else None


def _unauthorized(websocket: ServerConnection, why: str) -> Response:
    log.debug("handshake refused", extra={"fields": {"reason": why}})
    response = websocket.respond(HTTPStatus.UNAUTHORIZED, f"unauthorized: {why}\n")
    response.headers["WWW-Authenticate"] = 'Bearer realm="chatmesh"'
    return response


def _size(data: str | bytes) -> int:
    if isinstance(data, bytes):
        return len(data)
    # UTF-8 needs at most 4 bytes a character; encode only when it matters.
    return len(data) if len(data) * 4 <= MAX_FRAME_BYTES else len(data.encode())
