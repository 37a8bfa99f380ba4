"""Liveness by one sweep (gateway.heartbeat): a peer that answers pings stays
connected; one that stopped answering is closed with 1011 within two
intervals; a closed connection leaves the wheel."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from chatmesh.auth import Identity
from chatmesh.frames import Encoding
from gateway.connection import ClientConnection
from gateway.heartbeat import Heartbeats

INTERVAL_S = 0.4
TICK_S = 0.05


@asynccontextmanager
async def _server(
    heartbeats: Heartbeats, closed: list[ServerConnection], any_closed: asyncio.Event | None = None
) -> AsyncIterator[int]:
    async def handler(websocket: ServerConnection) -> None:
        conn = ClientConnection(websocket, Identity("u", "phone"), Encoding.JSON)
        heartbeats.add(conn)
        try:
            async for _ in websocket:
                pass
        except ConnectionClosed:
            pass
        finally:
            heartbeats.discard(conn)
            closed.append(websocket)
            if any_closed is not None:
                any_closed.set()

    sweep = asyncio.get_running_loop().create_task(heartbeats.run())
    try:
        async with serve(handler, "127.0.0.1", 0, ping_interval=None, close_timeout=0.5) as server:
            yield server.sockets[0].getsockname()[1]
    finally:
        sweep.cancel()
        await asyncio.gather(sweep, return_exceptions=True)


async def test_a_peer_that_answers_pings_stays_connected() -> None:
    heartbeats = Heartbeats(interval_s=INTERVAL_S, tick_s=TICK_S)
    closed: list[ServerConnection] = []
    async with _server(heartbeats, closed) as port:
        async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
            await asyncio.sleep(INTERVAL_S * 5)
            assert len(heartbeats) == 1
            await ws.send("still here")
        await asyncio.sleep(0.2)
    assert len(heartbeats) == 0
    assert closed and closed[0].close_code == CloseCode.NORMAL_CLOSURE


async def test_a_peer_that_stopped_answering_is_closed_with_1011() -> None:
    heartbeats = Heartbeats(interval_s=INTERVAL_S, tick_s=TICK_S)
    closed: list[ServerConnection] = []
    any_closed = asyncio.Event()
    async with _server(heartbeats, closed, any_closed) as port:
        # Completes the upgrade, then never reads: no pong ever comes back,
        # as from a phone that left coverage without closing its socket.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            "GET / HTTP/1.1\r\nHost: chatmesh\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        # Two intervals, the close timeout, and slack for a loaded machine.
        try:
            await asyncio.wait_for(any_closed.wait(), 2 * INTERVAL_S + 0.5 + 5.0)
        except TimeoutError:
            pass
        writer.close()
    assert closed, "an unanswering peer was not closed"
    close = closed[0].protocol.close_sent
    assert close is not None and close.code == CloseCode.INTERNAL_ERROR
    assert len(heartbeats) == 0


async def test_connections_are_spread_over_the_wheel_and_leave_it() -> None:
    heartbeats = Heartbeats(interval_s=1.0, tick_s=0.25)  # four slots
    closed: list[ServerConnection] = []
    async with _server(heartbeats, closed) as port:
        clients = [await connect(f"ws://127.0.0.1:{port}/", ping_interval=None) for _ in range(8)]
        await asyncio.sleep(0.1)
        assert len(heartbeats) == 8
        assert sorted(len(slot) for slot in heartbeats._slots) == [2, 2, 2, 2]
        for ws in clients:
            await ws.close()
        await asyncio.sleep(0.2)
    assert len(heartbeats) == 0
