"""Sessions in Redis: which gateway holds each device's connection.

``{prefix}sessions:{user}`` is a hash of device -> "gateway<US>connection".
``{prefix}gateway-alive:{gateway}`` exists while the gateway heartbeats. A
session counts only while its gateway is alive, so a crashed gateway's
sessions vanish from lookups at once and are deleted lazily when seen.
A user's hash expires ``SESSION_TTL_S`` after their last registration: no
connection outlives its token, so nothing is lost, and the hashes of users
nobody looks up after a crash do not stay forever.

Every routed message looks sessions up. With ``alive_for_s`` a gateway
found alive is taken as alive for that long without asking Redis again,
which saves a round trip per lookup: a crashed gateway's sessions then
vanish up to that much later than its heartbeat key does (its deliveries
meanwhile reach no one, as they would during its heartbeat TTL, and its
devices sync when they reconnect). A gateway found dead is asked about
again every time, so a gateway that has just started is seen at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from chatmesh.auth import LEEWAY_S, MAX_TOKEN_LIFETIME_S
from chatmesh.redis_client import RedisClient
from chatmesh.redis_scripts import PipelineScript, run_pipeline

SESSION_TTL_S = MAX_TOKEN_LIFETIME_S + 2 * LEEWAY_S
_SEP = "\x1f"
_DELETE_IF_MATCHES = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
# KEYS[1] the user's hash. ARGV: device, "gateway<US>connection", TTL (s).
# Returns the device's previous value. A script, not MULTI: registrations
# of many users go out in one pipeline, and on a Redis Cluster a MULTI may
# only touch one slot, while each script here touches one user's hash.
_REPLACE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return old
"""


@dataclass(frozen=True, slots=True)
class DeviceSession:
    user_id: str
    device_id: str
    gateway_id: str
    connection_id: str


class RedisSessionStore:
    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        *,
        alive_for_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._alive_for_s = alive_for_s
        self._monotonic = monotonic
        self._seen_alive: dict[str, float] = {}  # gateway -> when it was last found alive
        self._delete_if_matches = client.register_script(_DELETE_IF_MATCHES)
        self._replace = PipelineScript(_REPLACE)

    def _user_key(self, user_id: str) -> str:
        return f"{self._prefix}sessions:{{{user_id}}}"

    def _alive_key(self, gateway_id: str) -> str:
        return f"{self._prefix}gateway-alive:{gateway_id}"

    async def register(self, sessions: Sequence[DeviceSession]) -> list[DeviceSession]:
        """Records the sessions; returns the different sessions they replaced."""
        # Each read of the old value and write of the new one happen
        # together (a script), so two registrations of one device cannot
        # both miss each other.
        olds = await run_pipeline(
            self._redis,
            [
                partial(
                    self._replace.queue,
                    keys=[self._user_key(s.user_id)],
                    args=[s.device_id, s.gateway_id + _SEP + s.connection_id, SESSION_TTL_S],
                )
                for s in sessions
            ],
            [self._replace],
        )
        replaced = []
        for s, old in zip(sessions, olds, strict=True):
            if old is None:
                continue
            gateway_id, _, connection_id = _text(old).partition(_SEP)
            if (gateway_id, connection_id) != (s.gateway_id, s.connection_id):
                replaced.append(DeviceSession(s.user_id, s.device_id, gateway_id, connection_id))
        return replaced

    async def unregister(self, sessions: Sequence[DeviceSession]) -> int:
        removed = 0
        for s in sessions:
            removed += int(
                await self._delete_if_matches(
                    keys=[self._user_key(s.user_id)],
                    args=[s.device_id, s.gateway_id + _SEP + s.connection_id],
                )
            )
        return removed

    async def _alive(self, gateways: set[str]) -> set[str]:
        now = self._monotonic()
        alive = {g for g in gateways if now - self._seen_alive.get(g, -1e18) < self._alive_for_s}
        unsure = sorted(gateways - alive)
        if not unsure:
            return alive
        async with self._redis.pipeline(transaction=False) as pipe:
            for gateway_id in unsure:
                pipe.exists(self._alive_key(gateway_id))
            answers = await pipe.execute()
        for gateway_id, up in zip(unsure, answers, strict=True):
            if up:
                alive.add(gateway_id)
                self._seen_alive[gateway_id] = now
            else:
                self._seen_alive.pop(gateway_id, None)
        return alive

    async def heartbeat(self, gateway_id: str, ttl_s: int) -> None:
        await self._redis.set(self._alive_key(gateway_id), b"1", ex=ttl_s)

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hgetall(self._user_key(user_id))
            hashes = await pipe.execute()
        found: list[DeviceSession] = []
        for user_id, entries in zip(user_ids, hashes, strict=True):
            for device, value in entries.items():
                gateway_id, connection_id = value.decode().split(_SEP, 1)
                found.append(DeviceSession(user_id, device.decode(), gateway_id, connection_id))
        alive = await self._alive({s.gateway_id for s in found})
        stale = [s for s in found if s.gateway_id not in alive]
        if stale:
            await self.unregister(stale)
        return [s for s in found if s.gateway_id in alive]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
