"""Rate limits shared by every process, kept in Redis.

Per-connection limits alone let a client multiply its budget by opening
sockets (on one gateway or many) or by reconnecting. These limits are keyed
by what the client cannot multiply: the user, or the source address.

The algorithm is GCRA (the one behind redis-cell): one key per limited
subject holding the theoretical arrival time of the next request, updated
atomically by a Lua script with Redis's own clock, so gateways and msgsvc
instances on hosts with skewed clocks share one budget. ``rate_per_s``
requests per second are allowed on average, ``burst`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

from chatmesh.errors import ResourceExhausted

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
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._script = client.register_script(_GCRA)

    async def allow(self, limit: Limit, subject: str) -> float:
        """0 if allowed (and counted), else the seconds until it would be."""
        interval_us = int(1_000_000 / limit.rate_per_s)
        tolerance_us = interval_us * max(limit.burst - 1, 0)
        allowed, retry_us = await self._script(
            keys=[f"{self._prefix}rl:{limit.name}:{{{subject}}}"],
            args=[interval_us, tolerance_us],
        )
        return 0.0 if allowed else int(retry_us) / 1_000_000

    async def require(self, limit: Limit, subject: str) -> None:
        """Raises ResourceExhausted(RATE_LIMITED) when over the limit."""
        retry_after_s = await self.allow(limit, subject)
        if retry_after_s:
            raise ResourceExhausted(
                "RATE_LIMITED",
                f"at most {limit.rate_per_s:g} per second for this {limit.name};"
                f" retry in {retry_after_s:.1f} s",
            )
