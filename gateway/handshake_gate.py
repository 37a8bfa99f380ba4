"""How many handshakes a gateway works on at once, and who waits for a turn.

When a gateway dies its clients all return to the others within a second.
Unbounded, thousands of handshakes share the CPU until each outlives its
client's timeout, their work spent for nothing, and each retry adds more.
Refusing every handshake beyond the bound at once is no better: the clients
retry in waves and the last of them lose a lottery for minutes. So a few
handshakes are worked on at a time, in arrival order, and the others wait in
a line for a turn, bounded in length and in waiting time; only past those is
a handshake refused (503), cheaply, before any Redis call or token check,
so that Envoy tries another gateway and the client backs off.

A handshake is in progress from its upgrade request to its hello. One that
was let in but whose connection then failed before its handler ran is never
told done: it stops holding its turn after ``forgotten_after_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable


class HandshakeGate:
    def __init__(
        self,
        *,
        in_progress: int,
        waiting: int,
        max_wait_s: float,
        forgotten_after_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = in_progress
        self._max_waiting = waiting
        self._max_wait_s = max_wait_s
        self._forgotten_after_s = forgotten_after_s
        self._monotonic = monotonic
        self._in_progress: dict[Hashable, float] = {}  # -> when it got its turn
        self._line: deque[tuple[Hashable, asyncio.Future[None]]] = deque()

    @property
    def in_progress(self) -> int:
        return len(self._in_progress)

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def enter(self, handshake: Hashable) -> bool:
        """True once ``handshake`` has its turn; False if it must be refused."""
        self._hand_over()  # turns held by forgotten handshakes go to the line
        if not self._line and self._has_room():
            self._in_progress[handshake] = self._monotonic()
            return True
        if len(self._line) >= self._max_waiting:
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (handshake, turn)
        self._line.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self._max_wait_s)
        except TimeoutError:
            if turn.done():  # handed its turn as the wait ran out: take it
                return True
            self._line.remove(entry)
            return False
        except asyncio.CancelledError:
            if turn.done():
                self.done(handshake)
            else:
                self._line.remove(entry)
            raise
        return True

    def done(self, handshake: Hashable) -> None:
        """``handshake`` finished (or failed); the next in line gets its turn."""
        if self._in_progress.pop(handshake, None) is not None:
            self._hand_over()

    def _has_room(self) -> bool:
        if len(self._in_progress) < self._limit:
            return True
        stale = self._monotonic() - self._forgotten_after_s
        self._in_progress = {h: t for h, t in self._in_progress.items() if t > stale}
        return len(self._in_progress) < self._limit

    def _hand_over(self) -> None:
        while self._line and self._has_room():
            handshake, turn = self._line.popleft()
            self._in_progress[handshake] = self._monotonic()
            turn.set_result(None)
