"""Presence in Redis: who is online, since when, and when last seen.

A user is online while any gateway holding one of their connections keeps
its lease. Per user, one hash (``{prefix}presence:{user}``, hash-tagged by
user) holds a field per gateway with connections (``gw:<id>``), the state
(``on``/``off``), when it began, when the user was last seen, and a pending
offline (``due``). Per gateway, a set of its users
(``{prefix}presence-gw:{gateway}``), a lease and its last report; pending
offlines wait in ``{prefix}{presence}:due``.

Transitions are atomic per user (Lua), so concurrent reports and sweeps of
several presencesvc instances produce each event once:

- a user's first connection anywhere turns them online;
- their last connection closing schedules an offline ``grace_ms`` later; a
  connection opening before then cancels it, and no event is produced at
  all (a flapping device makes no noise);
- a gateway whose lease runs out takes its users with it: those with no
  connection elsewhere go offline at once, last seen when it last reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from chatmesh.clock import Clock
from chatmesh.redis_client import RedisClient
from chatmesh.redis_scripts import PipelineScript, run_pipeline

ONLINE, OFFLINE = "on", "off"
# An offline user's state (last seen) is kept this long; a user away longer
# is shown as never seen.
LAST_SEEN_TTL_MS = 90 * 24 * 3600 * 1000

# A transition is marked unannounced (``ev``) until its event is published
# (``announced``): a report or sweep cut short after the change but before
# the publish announces it when it is made again, instead of never.

# KEYS[1] the user's hash. ARGV: gateway field, now. Returns the time the
# user turned online when that is to be announced, else 0.
_CAME = """
redis.call('HSET', KEYS[1], ARGV[1], '1')
redis.call('HDEL', KEYS[1], 'due')
if redis.call('HGET', KEYS[1], 'state') == 'on' then
  if redis.call('HEXISTS', KEYS[1], 'ev') == 1 then
    return tonumber(redis.call('HGET', KEYS[1], 'since'))
  end
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'on', 'since', ARGV[2], 'ev', '1')
redis.call('PERSIST', KEYS[1])
return tonumber(ARGV[2])
"""

# KEYS[1] the user's hash. ARGV: gateway field, seen (ms), due (ms), then the
# fields of the gateways alive now. Returns 1 when an offline is now pending.
_WENT = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'on' then return 0 end
local alive = {}
for i = 4, #ARGV do alive[ARGV[i]] = true end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if alive[field] then return 0 end
end
redis.call('HSET', KEYS[1], 'seen', ARGV[2], 'due', ARGV[3])
return 1
"""

# KEYS[1] the user's hash. ARGV: now, the fields of the gateways alive now,
# and last the ms an offline user's state is kept. Returns the last seen time
# when the user turned offline (and that is to be announced), else 0.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'state') == 'off' and redis.call('HEXISTS', KEYS[1], 'ev') == 1 then
  return tonumber(redis.call('HGET', KEYS[1], 'seen'))
end
local due = tonumber(redis.call('HGET', KEYS[1], 'due'))
if not due or due > tonumber(ARGV[1]) then return 0 end
redis.call('HDEL', KEYS[1], 'due')
local alive = {}
for i = 2, #ARGV - 1 do alive[ARGV[i]] = true end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if alive[field] then return 0 end
end
local seen = redis.call('HGET', KEYS[1], 'seen')
redis.call('HSET', KEYS[1], 'state', 'off', 'since', seen, 'ev', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
return tonumber(seen)
"""


# KEYS[1] the leases, KEYS[2] the last reports. ARGV: gateway, now.
_FORGET_EXPIRED = """
local lease = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if lease and lease < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class PresenceState:
    user_id: str
    online: bool
    since_ms: int  # when the state began; 0 if never seen
    last_seen_ms: int  # 0 while online or never seen


@dataclass(frozen=True, slots=True)
class Transition:
    user_id: str
    online: bool
    at_ms: int  # when it happened: the connection, or the last seen time


def gateway_field(gateway_id: str) -> str:
    return f"gw:{gateway_id}"


class RedisPresenceStore:
    def __init__(self, client: RedisClient, key_prefix: str, clock: Clock) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._clock = clock
        # Pipelined by SHA (chatmesh.redis_scripts), which a cluster allows.
        self._came = PipelineScript(_CAME)
        self._went = PipelineScript(_WENT)
        self._settle = PipelineScript(_SETTLE)
        self._forget_expired = client.register_script(_FORGET_EXPIRED)
        # One hash tag: scripts touch leases and reports together.
        self.leases = f"{key_prefix}{{presence}}:leases"
        self.reported = f"{key_prefix}{{presence}}:reported"  # gateway -> last report (ms)
        self.due = f"{key_prefix}{{presence}}:due"

    def user_key(self, user_id: str) -> str:
        return f"{self._prefix}presence:{{{user_id}}}"

    def gateway_key(self, gateway_id: str) -> str:
        return f"{self._prefix}presence-gw:{{{gateway_id}}}"

    async def alive_gateways(self, now_ms: int) -> list[str]:
        members = await self._redis.zrangebyscore(self.leases, now_ms, "+inf")
        return [gateway_field(_text(m)) for m in members]

    async def renew(self, gateway_id: str, lease_ms: int) -> bool:
        """Extends the gateway's lease; False if it had none (new, or run out
        and swept): its population must then be reported whole."""
        now_ms = self._clock.now_ms()
        previous = await self._redis.zscore(self.leases, gateway_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.leases, {gateway_id: now_ms + lease_ms})
            pipe.hset(self.reported, gateway_id, now_ms)
            await pipe.execute()
        return previous is not None and previous >= now_ms

    async def population(self, gateway_id: str) -> set[str]:
        return {_text(m) for m in await self._redis.smembers(self.gateway_key(gateway_id))}

    async def connected(self, gateway_id: str, user_ids: Sequence[str]) -> list[Transition]:
        if not user_ids:
            return []
        now_ms = self._clock.now_ms()
        field = gateway_field(gateway_id)
        turned = []
        for chunk in _chunks(user_ids):
            # One round trip per chunk: a gateway's whole population at once
            # must be applied well inside its report's deadline.
            replies = await run_pipeline(
                self._redis,
                [
                    partial(_sadd, self.gateway_key(gateway_id), chunk),
                    *(
                        partial(self._came.queue, keys=[self.user_key(u)], args=[field, now_ms])
                        for u in chunk
                    ),
                ],
                [self._came],
            )
            turned += [
                Transition(user_id, True, int(at))
                for user_id, at in zip(chunk, replies[1:], strict=True)
                if at
            ]
        return turned

    async def disconnected(
        self, gateway_id: str, user_ids: Sequence[str], *, grace_ms: int, seen_ms: int | None = None
    ) -> None:
        """Schedules offlines ``grace_ms`` from now for users with no other
        live gateway; ``settle`` carries them out."""
        if not user_ids:
            return
        now_ms = self._clock.now_ms()
        seen = now_ms if seen_ms is None else seen_ms
        field = gateway_field(gateway_id)
        alive = [f for f in await self.alive_gateways(now_ms) if f != field]
        due = now_ms + grace_ms
        for chunk in _chunks(user_ids):
            replies = await run_pipeline(
                self._redis,
                [
                    partial(_srem, self.gateway_key(gateway_id), chunk),
                    *(
                        partial(
                            self._went.queue,
                            keys=[self.user_key(u)],
                            args=[field, seen, due, *alive],
                        )
                        for u in chunk
                    ),
                ],
                [self._went],
            )
            pending = {u: due for u, went in zip(chunk, replies[1:], strict=True) if went}
            if pending:
                await self._redis.zadd(self.due, pending)

    async def sweep_gateways(self) -> int:
        """Takes the users of gateways whose lease ran out offline (at once,
        last seen at the gateway's last report); returns how many gateways."""
        expired = await self._redis.zrangebyscore(self.leases, "-inf", self._clock.now_ms() - 1)
        for member in expired:
            gateway_id = _text(member)
            last_report = await self._redis.hget(self.reported, gateway_id)
            users = sorted(await self.population(gateway_id))
            await self.disconnected(
                gateway_id, users, grace_ms=0, seen_ms=int(last_report or self._clock.now_ms())
            )
            await self._redis.delete(self.gateway_key(gateway_id))
            # Only if it has not reported again meanwhile.
            await self._forget_expired(
                keys=[self.leases, self.reported], args=[gateway_id, self._clock.now_ms()]
            )
        return len(expired)

    async def settle(self, limit: int = 1000) -> list[Transition]:
        """Carries out the offlines due now; returns those that happened."""
        now_ms = self._clock.now_ms()
        due = [
            _text(m) for m in await self._redis.zrangebyscore(self.due, "-inf", now_ms, 0, limit)
        ]
        if not due:
            return []
        alive = await self.alive_gateways(now_ms)
        replies = await run_pipeline(
            self._redis,
            [
                partial(
                    self._settle.queue,
                    keys=[self.user_key(u)],
                    args=[now_ms, *alive, LAST_SEEN_TTL_MS],
                )
                for u in due
            ],
            [self._settle],
        )
        # Offlines a reconnect cancelled are done with; the others stay in
        # the due set until announced, so a sweep cut short is made again.
        cancelled = [u for u, seen in zip(due, replies, strict=True) if not seen]
        if cancelled:
            await self._redis.zrem(self.due, *cancelled)
        return [
            Transition(user_id, False, int(seen))
            for user_id, seen in zip(due, replies, strict=True)
            if seen
        ]

    async def announced(self, transitions: Sequence[Transition]) -> None:
        """The transitions' events are out (or withheld for good): they are
        not to be announced again."""
        if not transitions:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for t in transitions:
                pipe.hdel(self.user_key(t.user_id), "ev")
            offline = [t.user_id for t in transitions if not t.online]
            if offline:
                pipe.zrem(self.due, *offline)
            await pipe.execute()

    async def get(self, user_ids: Sequence[str]) -> list[PresenceState]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hmget(self.user_key(user_id), "state", "since", "seen")
            replies = await pipe.execute()
        states = []
        for user_id, (state, since, seen) in zip(user_ids, replies, strict=True):
            online = state == ONLINE.encode()
            states.append(
                PresenceState(
                    user_id,
                    online,
                    int(since or 0),
                    0 if online else int(seen or 0),
                )
            )
        return states


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


CHUNK = 500


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _sadd(key: str, members: Sequence[str], pipe: Pipeline | ClusterPipeline) -> None:
    pipe.sadd(key, *members)


def _srem(key: str, members: Sequence[str], pipe: Pipeline | ClusterPipeline) -> None:
    pipe.srem(key, *members)
