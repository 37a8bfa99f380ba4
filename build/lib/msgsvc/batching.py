"""Coalescing concurrent session lookups into one RPC.

Every routed message needs its recipients' sessions. One unary call per
message costs sessionsvc and msgsvc each ~0.5 ms of CPU, which is most of a
core at a few hundred messages per second. Lookups issued while a call is in
flight are gathered and sent together as the next call, so under load the
batch grows with the load and the number of calls stays small; when idle, a
lookup goes out at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from msgsvc.routing import DeviceSession, SessionLookup

MAX_USERS_PER_CALL = 1000  # sessionsvc's request limit


@dataclass(slots=True)
class _Request:
    users: frozenset[str]
    result: asyncio.Future[list[DeviceSession]]


class BatchingSessionLookup:
    """One call in flight at a time; what arrives meanwhile forms the next batch."""

    def __init__(self, inner: SessionLookup) -> None:
        self._inner = inner
        self._waiting: list[_Request] = []
        self._pumping = False
        self._pump_task: asyncio.Task[None] | None = None

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        loop = asyncio.get_running_loop()
        request = _Request(frozenset(user_ids), loop.create_future())
        self._waiting.append(request)
        if not self._pumping:
            self._pumping = True
            self._pump_task = loop.create_task(self._pump(), name="session-lookup-batches")
        return await request.result

    async def _pump(self) -> None:
        try:
            while self._waiting:
                batch = self._take_batch()
                users = sorted(set().union(*(r.users for r in batch)))
                try:
                    sessions = await self._inner.lookup(users)
                except Exception as exc:
                    for request in batch:
                        if not request.result.done():
                            request.result.set_exception(exc)
                    continue
                for request in batch:
                    if not request.result.done():
                        request.result.set_result(
                            [s for s in sessions if s.user_id in request.users]
                        )
        finally:
            # No await between the loop's last check and this line, so a
            # lookup arriving now always finds the pump stopped and restarts it.
            self._pumping = False

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        users: set[str] = set()
        while self._waiting and len(users | self._waiting[0].users) <= MAX_USERS_PER_CALL:
            request = self._waiting.pop(0)
            users |= request.users
            batch.append(request)
        if not batch and self._waiting:  # a single request larger than the limit
            batch.append(self._waiting.pop(0))
        return batch
