"""Coalescing concurrent session lookups into few RPCs.

Every routed message needs its recipients' sessions. One unary call per
message costs sessionsvc and msgsvc each ~0.5 ms of CPU, which is most of a
core at a few hundred messages per second. Lookups issued while a call is in
flight are gathered and sent together as the next call (``Coalescer``), so
under load the batch grows with the load and the number of calls stays small;
when idle, a lookup goes out at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatmesh.coalescer import Coalescer
from msgsvc.routing import DeviceSession, SessionLookup

MAX_USERS_PER_CALL = 1000  # sessionsvc's request limit
MAX_LOOKUPS_PER_BATCH = 256


class BatchingSessionLookup:
    def __init__(self, inner: SessionLookup) -> None:
        self._inner = inner
        self._lookups: Coalescer[frozenset[str], list[DeviceSession]] = Coalescer(
            self._lookup_many, max_batch=MAX_LOOKUPS_PER_BATCH, name="session-lookup-batches"
        )

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        return await self._lookups.submit(frozenset(user_ids))

    async def _lookup_many(self, requests: Sequence[frozenset[str]]) -> list[list[DeviceSession]]:
        users = sorted(set().union(*requests))
        chunks = [
            users[i : i + MAX_USERS_PER_CALL] for i in range(0, len(users), MAX_USERS_PER_CALL)
        ]
        found = [s for part in await asyncio.gather(*map(self._inner.lookup, chunks)) for s in part]
        return [[s for s in found if s.user_id in wanted] for wanted in requests]
