"""One client connection at the gateway: a client that stops reading is cut
with 1013, not buffered without bound; channel nudges are coalesced."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from chatmesh.auth import Identity
from chatmesh.frames import CLOSE_TRY_AGAIN_LATER, Encoding
from chatmesh.v1 import client_pb2
from gateway.connection import ClientConnection

QUEUE_FRAMES = 8
FRAMES_OFFERED = 2000
BIG = "x" * 60_000  # 2000 frames are ~120 MB: far beyond any socket buffer


async def test_a_client_that_stops_reading_is_cut_and_told_to_resync() -> None:
    outcome: dict[str, int | None] = {}
    finished = asyncio.Event()

    async def handler(websocket: ServerConnection) -> None:
        conn = ClientConnection(
            websocket, Identity("slow", "phone"), Encoding.JSON, queue_frames=QUEUE_FRAMES
        )
        await conn.greet(client_pb2.ServerFrame(hello=client_pb2.HelloFrame(user_id="slow")))
        offered = 0
        while offered < FRAMES_OFFERED and websocket.protocol.close_sent is None:
            conn.send(client_pb2.ServerFrame(error=client_pb2.ErrorFrame(message=BIG)))
            offered += 1
            await asyncio.sleep(0)
        outcome["offered"] = offered
        close = websocket.protocol.close_sent
        outcome["close_code"] = close.code if close else None
        finished.set()
        await conn.stop()

    async with serve(handler, "127.0.0.1", 0, close_timeout=1) as server:
        port = server.sockets[0].getsockname()[1]
        # A raw TCP client that completes the upgrade and then never reads,
        # with a small receive buffer fixed before connecting (a stalled
        # mobile client), so backpressure reaches the server quickly.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        _, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            "GET / HTTP/1.1\r\nHost: chatmesh\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await asyncio.wait_for(finished.wait(), 30)
        writer.close()
    assert outcome["close_code"] == CLOSE_TRY_AGAIN_LATER
    assert outcome["offered"] is not None and outcome["offered"] < FRAMES_OFFERED


async def test_channel_nudges_are_coalesced_per_connection() -> None:
    """The first nudge goes at once; those within the window after it wait
    for its end and leave as one frame naming each channel once, newest id."""
    frames: list[client_pb2.ServerFrame] = []
    done = asyncio.Event()
    window_s = 0.3

    def activity(*channels: tuple[str, int]) -> client_pb2.ChannelActivityFrame:
        return client_pb2.ChannelActivityFrame(
            channels=[
                client_pb2.ChannelActivity(conversation_id=c, last_message_id=m)
                for c, m in channels
            ]
        )

    async def handler(websocket: ServerConnection) -> None:
        conn = ClientConnection(
            websocket, Identity("reader", "phone"), Encoding.BINARY, nudge_window_s=window_s
        )
        await conn.greet(client_pb2.ServerFrame(hello=client_pb2.HelloFrame(user_id="reader")))
        conn.nudge(activity(("c1", 1)))
        for m in range(2, 6):
            conn.nudge(activity(("c1", m)))
            conn.nudge(activity(("c2", 10 * m)))
        await done.wait()
        await conn.stop()

    async with serve(handler, "127.0.0.1", 0, close_timeout=1) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.recv()  # hello
            started = asyncio.get_running_loop().time()
            for _ in range(2):
                frame = client_pb2.ServerFrame()
                frame.ParseFromString(await asyncio.wait_for(ws.recv(), 5))
                frames.append(frame)
            elapsed = asyncio.get_running_loop().time() - started
            with_more = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(window_s * 2)
            assert not with_more.done()  # nothing else was sent
            with_more.cancel()
            done.set()
    first, second = (
        [(c.conversation_id, c.last_message_id) for c in f.channel_activity.channels]
        for f in frames
    )
    assert first == [("c1", 1)]
    assert second == [("c1", 5), ("c2", 50)]
    assert elapsed >= window_s * 0.8
