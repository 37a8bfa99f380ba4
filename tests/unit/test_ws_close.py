"""A close is bounded even when the peer has stopped reading."""

from __future__ import annotations

import asyncio
import socket
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from chatmesh.ws_close import close_within


async def test_a_peer_that_reads_nothing_cannot_hold_a_close() -> None:
    closed_within: list[float] = []
    handler_done = asyncio.Event()

    async def flood_then_close(ws: ServerConnection) -> None:
        # Fill the socket towards a client that has stopped reading, until
        # writes would block (websockets waits on the transport's drain).
        await ws.recv()  # the client has stopped reading
        # Small kernel buffers, so that they fill in moments.
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        async def flood() -> None:
            chunk = b"x" * 65536
            while True:
                await ws.send(chunk)

        flooding = asyncio.create_task(flood())
        while ws.transport.get_write_buffer_size() <= 65536:  # noqa: ASYNC110 until sends wait
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        await close_within(ws, 1013, "too slow", timeout_s=0.5)
        closed_within.append(time.perf_counter() - started)
        await asyncio.gather(flooding, return_exceptions=True)  # ended by the abort
        handler_done.set()

    async with serve(flood_then_close, "127.0.0.1", 0, write_limit=65536) as server:
        port = server.sockets[0].getsockname()[1]
        client = await connect(f"ws://127.0.0.1:{port}", max_size=None, max_queue=1)
        client.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )
        client.transport.pause_reading()  # the client reads nothing more
        await client.send("go")
        try:
            await asyncio.wait_for(handler_done.wait(), 10)
            assert closed_within and closed_within[0] < 2.0
            # The server's end is gone: its socket was aborted.
            assert server.connections == set()
        finally:
            client.transport.abort()
