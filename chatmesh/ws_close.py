"""Closing a WebSocket within a bound, whatever the peer does.

websockets' ``close()`` bounds its wait for the peer's closing handshake by
``close_timeout``, but not the write of its own close frame before that: a
peer that has stopped reading, with the socket's buffers full, holds it
forever. Those are the very peers a server most needs rid of (a client too
slow to read its deliveries, one that vanished without a FIN), and each one
left holds its connection, its task and its buffers. Past the bound the
connection is aborted: no closing handshake, the socket is simply closed.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.connection import Connection

CLOSE_WITHIN_S = 10.0  # websockets' own close_timeout, for the whole close


async def close_within(
    websocket: Connection, code: int, reason: str, *, timeout_s: float = CLOSE_WITHIN_S
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await websocket.close(code, reason)
    except TimeoutError:
        websocket.transport.abort()
