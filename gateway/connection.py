"""One client connection: identity, encoding, a bounded send queue, a rate limit."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from chatmesh.auth import Identity
from chatmesh.frames import CLOSE_TRY_AGAIN_LATER, Encoding, encode_server_frame
from chatmesh.v1 import client_pb2
from chatmesh.ws_close import close_within
from gateway import metrics

log = logging.getLogger(__name__)

# What may wait to be written to one client, in encoded bytes (and frames,
# for the per-frame overhead). A client this far behind is not reading; it is
# cut (close 1013) and resyncs from history when it returns, rather than
# holding gateway memory hostage: 50,000 such clients cost 25 GB at 512 KiB.
SEND_QUEUE_BYTES = 512 * 1024
SEND_QUEUE_FRAMES = 1024
# Channel nudges to one connection: at most one frame per window, naming each
# busy channel once with its newest message.
NUDGE_WINDOW_S = 2.0


class TokenBucket:
    """Per-connection rate limit on client frames."""

    __slots__ = ("_at", "_burst", "_now", "_rate", "_tokens")

    def __init__(
        self, rate_per_s: float, burst: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._now = now
        self._at = now()

    def take(self) -> bool:
        t = self._now()
        self._tokens = min(self._burst, self._tokens + (t - self._at) * self._rate)
        self._at = t
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class ClientConnection:
    """What the gateway holds for one client: kept small, since an idle
    connection costs only this, websockets' own state and the handler's
    frame. No task of its own while idle: a writer task runs only while
    frames wait to be written, and liveness is ``gateway.heartbeat``'s."""

    __slots__ = (
        "__weakref__",
        "_cutting",
        "_gone",
        "_greeted",
        "_monotonic",
        "_nudge_timer",
        "_nudge_window_s",
        "_nudged_at",
        "_nudges",
        "_queue",
        "_queue_bytes_limit",
        "_queue_frames_limit",
        "_queued_bytes",
        "_writer",
        "closed",
        "connection_id",
        "encoding",
        "identity",
        "token_issued_at_s",
        "websocket",
    )

    def __init__(
        self,
        websocket: ServerConnection,
        identity: Identity,
        encoding: Encoding,
        *,
        queue_frames: int = SEND_QUEUE_FRAMES,
        queue_bytes: int = SEND_QUEUE_BYTES,
        nudge_window_s: float = NUDGE_WINDOW_S,
        monotonic: Callable[[], float] = time.monotonic,
        token_issued_at_s: int = 0,
    ) -> None:
        # A device removal revokes the tokens issued before it.
        self.token_issued_at_s = token_issued_at_s
        self._nudge_window_s = nudge_window_s
        self._monotonic = monotonic
        self._nudges: dict[str, int] = {}  # channel -> newest message id, not yet sent
        self._nudged_at = -nudge_window_s
        self._nudge_timer: asyncio.TimerHandle | None = None
        self.websocket = websocket
        self.identity = identity
        self.encoding = encoding
        self.connection_id = secrets.token_hex(8)
        self.closed = False  # stopped: nothing may be added to it any more
        # Only while frames wait: an empty deque is most of a KiB, and an
        # idle connection has nothing queued.
        self._queue: deque[tuple[client_pb2.ServerFrame, int]] | None = None
        self._queue_frames_limit = queue_frames
        self._queue_bytes_limit = queue_bytes
        self._queued_bytes = 0  # protobuf sizes: JSON is larger, by a bounded factor
        self._writer: asyncio.Task[None] | None = None  # only while frames wait
        self._greeted = False
        self._gone = False  # a write failed: the peer is gone
        self._cutting: asyncio.Task[None] | None = None

    def send(self, frame: client_pb2.ServerFrame) -> None:
        """Queues a frame; never blocks. A full queue cuts the connection."""
        if self._cutting is not None or self._gone:
            return
        size = frame.ByteSize()
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif queue and (
            len(queue) >= self._queue_frames_limit
            or self._queued_bytes + size > self._queue_bytes_limit
        ):
            log.warning(
                "slow consumer cut",
                extra={
                    "fields": {
                        "connection_id": self.connection_id,
                        "user_id": self.identity.user_id,
                    }
                },
            )
            self.close_soon(CLOSE_TRY_AGAIN_LATER, "too far behind; resync")
            return
        queue.append((frame, size))
        self._queued_bytes += size
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._writer is None and self._greeted and self._queue:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_queued(), name=f"ws-writer:{self.connection_id}"
            )

    def nudge(self, activity: client_pb2.ChannelActivityFrame) -> None:
        """Tells the client of channel activity: at once if it heard nothing
        in the last window, else once the window is over, all channels that
        moved meanwhile in one frame."""
        for channel in activity.channels:
            held = self._nudges.get(channel.conversation_id, 0)
            self._nudges[channel.conversation_id] = max(held, channel.last_message_id)
        if self._nudge_timer is not None:
            return
        wait = self._nudged_at + self._nudge_window_s - self._monotonic()
        if wait <= 0:
            self._send_nudges()
        else:
            self._nudge_timer = asyncio.get_running_loop().call_later(wait, self._send_nudges)

    def _send_nudges(self) -> None:
        self._nudge_timer = None
        pending, self._nudges = self._nudges, {}
        if not pending:
            return
        self._nudged_at = self._monotonic()
        self.send(
            client_pb2.ServerFrame(
                channel_activity=client_pb2.ChannelActivityFrame(
                    channels=[
                        client_pb2.ChannelActivity(conversation_id=c, last_message_id=m)
                        for c, m in sorted(pending.items())
                    ]
                )
            )
        )

    def close_soon(self, code: int, reason: str) -> None:
        """Starts closing the connection without waiting; later calls do nothing."""
        if self._cutting is None:
            self._cutting = asyncio.get_running_loop().create_task(
                close_within(self.websocket, code, reason), name=f"ws-close:{self.connection_id}"
            )

    async def greet(self, hello: client_pb2.ServerFrame) -> None:
        """Writes the hello; frames queued earlier (deliveries that raced the
        session registration) follow it, never precede it."""
        await self.websocket.send(encode_server_frame(hello, self.encoding))
        metrics.frame_sent(hello)
        self._greeted = True
        self._wake_writer()

    async def _write_queued(self) -> None:
        """Writes until the queue is empty, then ends: ``send`` starts
        another when a frame comes. Frames leave in the order queued, one
        writer at a time."""
        queue = self._queue
        try:
            while queue:
                frame, size = queue.popleft()
                self._queued_bytes -= size
                await self.websocket.send(encode_server_frame(frame, self.encoding))
                metrics.frame_sent(frame)
        except ConnectionClosed:
            # Gone: later frames are dropped here rather than each starting
            # a writer that fails at once.
            if queue is not None:
                queue.clear()
            self._queued_bytes = 0
            self._gone = True
        finally:
            # No await between the empty queue and this: a frame queued
            # meanwhile would have found this writer still running.
            self._writer = None
            self._queue = None

    async def stop(self) -> None:
        self.closed = True
        if self._nudge_timer is not None:
            self._nudge_timer.cancel()
        if self._cutting is not None:
            await asyncio.gather(self._cutting, return_exceptions=True)
        writer = self._writer
        if writer is not None:
            writer.cancel()
            try:
                await writer
            except asyncio.CancelledError:
                pass


class ConnectionRegistry:
    """The connections this gateway holds, by id and by (user, device).

    A device has at most one current connection: a newer one replaces the
    older in the device index (the older keeps working until it closes).
    """

    def __init__(self) -> None:
        self._by_id: dict[str, ClientConnection] = {}
        self._by_device: dict[tuple[str, str], ClientConnection] = {}

    def add(self, conn: ClientConnection) -> None:
        self._by_id[conn.connection_id] = conn
        self._by_device[(conn.identity.user_id, conn.identity.device_id)] = conn

    def remove(self, conn: ClientConnection) -> None:
        self._by_id.pop(conn.connection_id, None)
        key = (conn.identity.user_id, conn.identity.device_id)
        if self._by_device.get(key) is conn:
            del self._by_device[key]

    def by_id(self, connection_id: str) -> ClientConnection | None:
        return self._by_id.get(connection_id)

    def by_device(self, user_id: str, device_id: str) -> ClientConnection | None:
        return self._by_device.get((user_id, device_id))

    def all(self) -> list[ClientConnection]:
        return list(self._by_id.values())

    def user_ids(self) -> set[str]:
        return {user for user, _ in self._by_device}

    def __len__(self) -> int:
        return len(self._by_id)
