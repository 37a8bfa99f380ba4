"""Per-user budgets: what one user may ask of msgsvc, across all of its
devices, connections and gateways.

The gateways' per-connection limits stop a single noisy socket cheaply; these
stop a user who opens many sockets or reconnects for a fresh burst. Writes
(sends, group changes) and other requests have separate budgets, so a
device's catch-up sync never eats into its ability to send.
"""

from __future__ import annotations

from typing import Protocol

from chatmesh.ratelimit import Limit, RateLimiter

USER_WRITES = Limit("user-writes", rate_per_s=20.0, burst=60)
USER_REQUESTS = Limit("user-requests", rate_per_s=100.0, burst=300)


class UserBudgets(Protocol):
    async def write(self, user_id: str) -> None:
        """Raises ResourceExhausted(RATE_LIMITED) when the user is over budget."""

    async def request(self, user_id: str) -> None: ...


class RedisUserBudgets:
    def __init__(
        self,
        limiter: RateLimiter,
        writes: Limit = USER_WRITES,
        requests: Limit = USER_REQUESTS,
    ) -> None:
        self._limiter = limiter
        self._writes = writes
        self._requests = requests

    async def write(self, user_id: str) -> None:
        await self._limiter.require(self._writes, user_id)

    async def request(self, user_id: str) -> None:
        await self._limiter.require(self._requests, user_id)
