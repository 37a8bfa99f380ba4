"""Snowflake worker ids leased from Redis, so no two live instances share one.

An instance takes the first free worker id (``SET NX PX``), renews the lease
every third of its TTL, and stops issuing ids the moment it can no longer
prove it holds the lease. With each renewal it records the latest millisecond
it has used; the next holder of the same worker id starts after that mark, so
ids stay unique across restarts even if the new holder's clock is behind.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable

from chatmesh import snowflake
from chatmesh.clock import Clock
from chatmesh.errors import Unavailable
from chatmesh.redis_client import RedisClient

log = logging.getLogger(__name__)

LEASE_TTL_MS = 30_000
RENEW_INTERVAL_S = LEASE_TTL_MS / 3 / 1000  # two renewals may fail before the lease lapses

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[3]) > mark then redis.call('SET', KEYS[2], ARGV[3]) end
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[2]) > mark then redis.call('SET', KEYS[2], ARGV[2]) end
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class NoWorkerIdFree(RuntimeError):
    pass


class WorkerLease:
    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        *,
        ttl_ms: int = LEASE_TTL_MS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._ttl_ms = ttl_ms
        self._monotonic = monotonic
        self._token = uuid.uuid4().hex
        self._worker_id: int | None = None
        self._valid_until = 0.0
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _keys(self, worker_id: int) -> list[str]:
        tag = f"{{{self._prefix}worker:{worker_id}}}"
        return [f"{tag}:lease", f"{tag}:issued-through-ms"]

    @property
    def worker_id(self) -> int:
        if self._worker_id is None:
            raise RuntimeError("lease not acquired")
        return self._worker_id

    async def acquire(self) -> tuple[int, int]:
        """Takes a free worker id; returns it and the millisecond its previous
        holders issued ids through."""
        start = random.randrange(snowflake.MAX_WORKER_ID + 1)
        for offset in range(snowflake.MAX_WORKER_ID + 1):
            candidate = (start + offset) % (snowflake.MAX_WORKER_ID + 1)
            lease_key, mark_key = self._keys(candidate)
            began = self._monotonic()
            if await self._redis.set(lease_key, self._token, nx=True, px=self._ttl_ms):
                self._worker_id = candidate
                self._valid_until = began + self._ttl_ms / 1000
                mark = await self._redis.get(mark_key)
                log.info("worker id leased", extra={"fields": {"worker_id": candidate}})
                return candidate, int(mark or 0)
        raise NoWorkerIdFree("all 1024 Snowflake worker ids are leased")

    async def renew(self, issued_through_ms: int) -> bool:
        began = self._monotonic()
        held = await self._renew(
            keys=self._keys(self.worker_id), args=[self._token, self._ttl_ms, issued_through_ms]
        )
        if held:
            self._valid_until = began + self._ttl_ms / 1000
        else:
            self._valid_until = 0.0
            log.error("worker id lease lost", extra={"fields": {"worker_id": self.worker_id}})
        return bool(held)

    def held(self) -> bool:
        return self._monotonic() < self._valid_until

    async def release(self, issued_through_ms: int) -> None:
        if self._worker_id is not None:
            await self._release(
                keys=self._keys(self._worker_id), args=[self._token, issued_through_ms]
            )
            self._valid_until = 0.0


class LeasedIdSource:
    """Issues Snowflake ids only while the worker id lease is held.

    If a renewal finds the lease gone (Redis lost it, or this process stalled
    past the TTL and another instance took the id), it leases a fresh worker
    id and carries on from there.
    """

    def __init__(
        self, lease: WorkerLease, generator: snowflake.SnowflakeGenerator, clock: Clock
    ) -> None:
        self._lease = lease
        self._generator = generator
        self._clock = clock

    @classmethod
    async def start(cls, lease: WorkerLease, clock: Clock) -> LeasedIdSource:
        worker_id, issued_through_ms = await lease.acquire()
        generator = snowflake.SnowflakeGenerator(
            worker_id, clock, issued_through_ms=issued_through_ms
        )
        return cls(lease, generator, clock)

    @property
    def worker_id(self) -> int:
        return self._generator.worker_id

    def next_id(self) -> int:
        if not self._lease.held():
            raise Unavailable("ID_LEASE_LOST", "message ids are unavailable; retry")
        try:
            return self._generator.next_id()
        except snowflake.ClockWentBackwards as exc:
            raise Unavailable("CLOCK_BEHIND", str(exc)) from exc

    async def renew(self) -> None:
        if await self._lease.renew(self._generator.last_ms):
            return
        worker_id, issued_through_ms = await self._lease.acquire()
        self._generator = snowflake.SnowflakeGenerator(
            worker_id,
            self._clock,
            # Never behind our own ids, whatever the new worker id's history.
            issued_through_ms=max(issued_through_ms, self._generator.last_ms),
        )

    async def release(self) -> None:
        await self._lease.release(self._generator.last_ms)
