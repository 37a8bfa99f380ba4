"""Rate limits shared by every process, kept in Redis.

Per-connection limits alone let a client multiply its budget by opening
sockets (on one gateway or many) or by reconnecting. These limits are keyed
by what the client cannot multiply: the user, or the source address.

The algorithm is GCRA (the one behind redis-cell): one key per limited
subject holding the theoretical arrival time of the next request, updated
atomically by a Lua script with Redis's own clock, so gateways and msgsvc
instances on hosts with skewed clocks share one budget. ``rate_per_s``
requests per second are allowed on average, ``burst`` at once. Every
message a user sends passes a limit, so checks that arrive while others are
in flight share one pipeline (one round trip); each script in it is still
atomic on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatmesh.coalescer import Coalescer
from chatmesh.errors import ResourceExhausted
from chatmesh.redis_client import RedisClient
from chatmesh.redis_scripts import PipelineScript, Queue, run_pipeline

MAX_CHECKS_PER_BATCH = 256

# KEYS[1]: the subject's key. ARGV: emission interval (µs), burst tolerance (µs).
# Returns {allowed (0/1), retry after (µs)}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # part of the key: "send", "handshake", ...
    rate_per_s: float
    burst: int


class RateLimiter:
    def __init__(self, client: RedisClient, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._script = PipelineScript(_GCRA)
        self._checks: Coalescer[tuple[Limit, str], float] = Coalescer(
            self._allow_many, max_batch=MAX_CHECKS_PER_BATCH, name="rate-limit-checks"
        )

    async def allow(self, limit: Limit, subject: str) -> float:
        """0 if allowed (and counted), else the seconds until it would be."""
        return await self._checks.submit((limit, subject))

    async def _allow_many(self, checks: Sequence[tuple[Limit, str]]) -> list[float]:
        replies = await run_pipeline(
            self._redis, [self._check(limit, subject) for limit, subject in checks], [self._script]
        )
        return [0.0 if allowed else int(retry_us) / 1_000_000 for allowed, retry_us in replies]

    def _check(self, limit: Limit, subject: str) -> Queue:
        interval_us = int(1_000_000 / limit.rate_per_s)
        tolerance_us = interval_us * max(limit.burst - 1, 0)
        key = f"{self._prefix}rl:{limit.name}:{{{subject}}}"
        return lambda pipe: self._script.queue(pipe, [key], [interval_us, tolerance_us])

    async def require(self, limit: Limit, subject: str) -> None:
        """Raises ResourceExhausted(RATE_LIMITED) when over the limit."""
        retry_after_s = await self.allow(limit, subject)
        if retry_after_s:
            raise ResourceExhausted(
                "RATE_LIMITED",
                f"at most {limit.rate_per_s:g} per second for this {limit.name};"
                f" retry in {retry_after_s:.1f} s",
            )
