"""Liveness of every connection by one sweep, not a task per connection.

Each connection is pinged once per ``interval_s``; a connection whose pong
has not come back by its next turn is closed (1011, as websockets' own
keepalive does), so a peer that vanished is noticed within two intervals,
plus the close timeout. Connections are spread over ``interval_s /
tick_s`` slots of a wheel and each tick visits one slot: the gateway wakes
once per tick whatever the number of connections, and its pings go out
evenly instead of in bursts.

websockets' built-in keepalive would cost every connection a task with its
own timers (sleep, ping timeout): memory per idle connection, and a wake-up
per connection per interval.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

from gateway.connection import ClientConnection

log = logging.getLogger(__name__)

# A dead peer is noticed within a minute; through Envoy (stream idle timeout
# 300 s) and NATs a ping every 30 s keeps an idle connection alive.
PING_INTERVAL_S = 30.0
TICK_S = 1.0


class Heartbeats:
    def __init__(self, *, interval_s: float = PING_INTERVAL_S, tick_s: float = TICK_S) -> None:
        self._tick_s = tick_s
        self._slots: list[dict[ClientConnection, Awaitable[float] | None]] = [
            {} for _ in range(max(1, round(interval_s / tick_s)))
        ]
        self._slot_of: dict[ClientConnection, int] = {}
        self._next_slot = itertools.cycle(range(len(self._slots)))
        self._position = 0

    def add(self, conn: ClientConnection) -> None:
        """Starts watching a greeted connection; its first ping comes within
        an interval."""
        slot = next(self._next_slot)
        self._slot_of[conn] = slot
        self._slots[slot][conn] = None

    def discard(self, conn: ClientConnection) -> None:
        slot = self._slot_of.pop(conn, None)
        if slot is not None:
            self._slots[slot].pop(conn, None)

    def __len__(self) -> int:
        return len(self._slot_of)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            await self.tick()

    async def tick(self) -> None:
        """Visits the next slot: closes what did not answer the last ping,
        pings the rest."""
        slot = self._slots[self._position]
        self._position = (self._position + 1) % len(self._slots)
        for conn, pong in list(slot.items()):
            ws = conn.websocket
            if ws.state is not State.OPEN:
                continue  # closing: the handler discards it when done
            if isinstance(pong, asyncio.Future) and not pong.done():
                log.info(
                    "keepalive ping unanswered",
                    extra={"fields": {"connection_id": conn.connection_id}},
                )
                conn.close_soon(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                slot.pop(conn, None)
                continue
            if ws.paused:
                # The peer is not taking what we write: a ping would wait
                # behind that data (and hold this sweep). The send queue's
                # limit cuts such a client; the ping waits for its next turn.
                continue
            try:
                slot[conn] = await ws.ping()
            except ConnectionClosed:
                pass
