"""Presence in Redis: a TTL key per online user and a last-seen timestamp.

A user is online while ``{prefix}presence:{user}`` exists; each heartbeat
renews it for ``PRESENCE_TTL_S`` and records the time in
``{prefix}last-seen:{user}``, kept ``LAST_SEEN_TTL_S`` (a user away longer
is shown as not seen recently, not with a date).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as redis

from chatmesh.clock import Clock

PRESENCE_TTL_S = 60  # two missed 30 s heartbeats
LAST_SEEN_TTL_S = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class PresenceState:
    user_id: str
    online: bool
    last_seen_ms: int


class RedisPresenceStore:
    def __init__(self, client: redis.Redis, key_prefix: str, clock: Clock) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._clock = clock

    async def heartbeat(self, user_ids: Sequence[str]) -> None:
        now_ms = self._clock.now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.set(f"{self._prefix}presence:{{{user_id}}}", b"1", ex=PRESENCE_TTL_S)
                pipe.set(f"{self._prefix}last-seen:{{{user_id}}}", now_ms, ex=LAST_SEEN_TTL_S)
            await pipe.execute()

    async def get(self, user_ids: Sequence[str]) -> list[PresenceState]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.exists(f"{self._prefix}presence:{{{user_id}}}")
                pipe.get(f"{self._prefix}last-seen:{{{user_id}}}")
            replies = await pipe.execute()
        return [
            PresenceState(user_id, bool(replies[2 * i]), int(replies[2 * i + 1] or 0))
            for i, user_id in enumerate(user_ids)
        ]
