"""The gateway's multiplexed streams to msgsvc.

All connections of a gateway share a few ``MessageService.Connect`` streams;
a connection always uses the same stream, so its frames stay in order. Each
stream message carries a batch of whatever frames are waiting, because each
gRPC message costs about 100 µs of CPU per side in Python.

When a stream breaks, every frame sent on it and not yet answered gets an
UNAVAILABLE error frame: the client resends with the same client_msg_id,
which msgsvc deduplicates. Frames not yet sent wait for the reconnect.

Each call reads frames through its own request iterator, and gRPC may leave
a dead call's iterator waiting after the call failed. Frames therefore wait
in one buffer that only the current call's iterator may take from: a stale
iterator that wakes up leaves, taking nothing, rather than writing a frame
into a call that no longer exists.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from chatmesh.errors import Unavailable, error_frame
from chatmesh.tracing import NO_TRACING, Tracing
from chatmesh.v1 import client_pb2, message_service_pb2, message_service_pb2_grpc
from gateway.frame_spans import FrameSpans

log = logging.getLogger(__name__)

MAX_FRAMES_PER_BATCH = 256
# Frames waiting per stream while msgsvc is slow or reconnecting; beyond this
# the gateway answers UNAVAILABLE at once instead of queueing without bound.
MAX_QUEUED_FRAMES = 10_000
RECONNECT_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)

ReplySink = Callable[[str, client_pb2.ServerFrame], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    connection_id: str
    request_id: str
    client_msg_id: str


class _Stream:
    def __init__(
        self,
        index: int,
        stub: message_service_pb2_grpc.MessageServiceStub,
        gateway_id: str,
        reply: ReplySink,
        spans: FrameSpans | None,
    ) -> None:
        self._spans = spans  # None: not tracing
        self._index = index
        self._stub = stub
        self._gateway_id = gateway_id
        self._reply = reply
        self._buffer: deque[message_service_pb2.InboundFrame] = deque()
        self._waiting = asyncio.Event()  # set while the buffer holds frames
        self._call_number = 0  # the call whose iterator may take frames
        self._pending: dict[int, _Pending] = {}
        self._next_seq = 1
        self.connected = asyncio.Event()

    def submit(
        self, connection_id: str, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> None:
        inbound = message_service_pb2.InboundFrame(
            seq=self._next_seq,
            connection_id=connection_id,
            user_id=user_id,
            device_id=device_id,
            frame=frame,
        )
        self._next_seq += 1
        if len(self._buffer) >= MAX_QUEUED_FRAMES:
            self._fail(inbound.connection_id, frame, "UPSTREAM_BUSY")
            return
        if self._spans is not None:
            self._spans.start(inbound)
        self._buffer.append(inbound)
        self._waiting.set()

    async def _requests(
        self, call_number: int
    ) -> AsyncIterator[message_service_pb2.ConnectRequest]:
        yield message_service_pb2.ConnectRequest(gateway_id=self._gateway_id)
        while True:
            await self._waiting.wait()
            if call_number != self._call_number:
                return  # a dead call's iterator: the frames belong to the live one
            batch: list[message_service_pb2.InboundFrame] = []
            while self._buffer and len(batch) < MAX_FRAMES_PER_BATCH:
                batch.append(self._buffer.popleft())
            if not self._buffer:
                self._waiting.clear()
            for inbound in batch:
                # Recorded before the write: if the stream dies after this
                # point the frame's fate is unknown and the client is told so.
                self._pending[inbound.seq] = _Pending(
                    inbound.connection_id,
                    inbound.frame.request_id,
                    inbound.frame.send.client_msg_id,
                )
            yield message_service_pb2.ConnectRequest(frames=batch)

    async def run(self) -> None:
        attempt = 0
        while True:
            call = self._stub.Connect(self._requests(self._call_number))
            try:
                await call.wait_for_connection()
                self.connected.set()
                attempt = 0
                log.info("msgsvc stream up", extra={"fields": {"stream": self._index}})
                async for response in call:
                    for outbound in response.frames:
                        self._pending.pop(outbound.in_reply_to, None)
                        if self._spans is not None:
                            self._spans.answered(outbound.in_reply_to, outbound.frame)
                        self._reply(outbound.connection_id, outbound.frame)
                log.warning("msgsvc stream ended", extra={"fields": {"stream": self._index}})
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "msgsvc stream failed",
                    extra={"fields": {"stream": self._index, "code": exc.code().name}},
                )
            finally:
                # Retired before the backoff, so a stale iterator that wakes
                # meanwhile cannot take frames into this dead call.
                self._call_number += 1
                self.connected.clear()
                call.cancel()
                self._fail_pending()
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)])
            attempt += 1

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if self._spans is not None:
            self._spans.fail_all(list(pending), "UPSTREAM_RESET")
        for p in pending.values():
            self._reply(
                p.connection_id,
                error_frame(
                    Unavailable("UPSTREAM_RESET", "message service connection lost; resend"),
                    request_id=p.request_id,
                    client_msg_id=p.client_msg_id,
                ),
            )

    def _fail(self, connection_id: str, frame: client_pb2.ClientFrame, reason: str) -> None:
        self._reply(
            connection_id,
            error_frame(
                Unavailable(reason, "message service is overloaded; resend later"),
                request_id=frame.request_id,
                client_msg_id=frame.send.client_msg_id,
            ),
        )


class MsgsvcLink:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        gateway_id: str,
        reply: ReplySink,
        *,
        streams: int,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        self._streams = [
            _Stream(i, stub, gateway_id, reply, FrameSpans(tracing) if tracing.enabled else None)
            for i in range(max(1, streams))
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def open(self) -> None:
        """Starts the streams; each connects, and reconnects, by itself."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(s.run(), name=f"msgsvc-stream:{i}")
            for i, s in enumerate(self._streams)
        ]

    async def start(self, *, timeout_s: float) -> None:
        """Opens the streams and waits until every one is connected."""
        self.open()
        await asyncio.wait_for(
            asyncio.gather(*(s.connected.wait() for s in self._streams)), timeout_s
        )

    def connected(self) -> bool:
        """Whether frames can go upstream now (some stream is up)."""
        return any(s.connected.is_set() for s in self._streams)

    def submit(
        self, connection_id: str, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> None:
        # A stable hash keeps one connection's frames on one stream, in order.
        stream = self._streams[zlib.crc32(connection_id.encode()) % len(self._streams)]
        stream.submit(connection_id, user_id, device_id, frame)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
