"""Idempotency claims for sends, in Redis.

A claim binds a ``SendKey`` (user, device, client_msg_id) to the message id
of the send that got there first, its conversation and its content digest.
Keys are hash-tagged by user, so every claim of a user, the user-scoped ones
of before included, shares a Redis Cluster slot and one script can read both.

Claims made before decision 0010 were scoped to the user alone
(``claim:{user}:client_msg_id`` → ``id:conversation``). ``LegacyClaims`` says
how this instance treats them while they age out; see that decision.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chatmesh.coalescer import Coalescer
from chatmesh.redis_client import RedisClient
from chatmesh.redis_scripts import PipelineScript, Queue, run_pipeline
from msgsvc.send_identity import SendKey

# A client retries within minutes; a device offline for a week that resends
# its outbox must still be deduplicated, so claims live for a week.
CLAIM_TTL_S = 7 * 24 * 3600


class LegacyClaims(enum.Enum):
    """The user-scoped claims of before decision 0010."""

    # Consulted when a send finds no claim of its own, and written alongside
    # every new claim, so an instance of the previous version still serving
    # during a rolling upgrade finds the sends this version took.
    MIRROR = "mirror"
    # Consulted only: no instance of the previous version serves any more.
    READ = "read"
    # Ignored: a claim TTL has passed since the last one could be written.
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: int
    conversation_id: str
    digest: str  # of the send holding the claim; "" for a legacy claim
    won: bool  # False: an earlier attempt holds the claim; reuse its id
    # A user-scoped claim from before decision 0010: it may belong to another
    # device, and only its stored row can tell.
    legacy: bool = False


class ClaimStore(Protocol):
    async def claim(
        self,
        key: SendKey,
        message_id: int,
        conversation_id: str,
        digest: str,
        *,
        consult_legacy: bool = True,
    ) -> Claim:
        """Atomically binds ``key`` unless already bound, and returns the
        binding in force. When ``key`` is unbound and a legacy claim for the
        user's client_msg_id exists (and ``consult_legacy``), nothing is bound
        and the legacy claim is returned instead (``legacy=True``)."""
        ...

    async def reclaim(self, key: SendKey, stale: Claim, message_id: int) -> Claim:
        """Atomically rebinds a claim still bound to ``stale`` to
        ``message_id`` (same conversation and digest), and returns the binding
        in force: the new one, or whatever a concurrent reclaim installed."""
        ...


# KEYS: the device-scoped claim, the user-scoped legacy claim.
# ARGV: binding, TTL, legacy mode, binding in the legacy format.
# Returns {0, held} lost, {1, binding} won, {2, legacy} a legacy claim found.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then return {0, held} end
if ARGV[3] ~= 'off' then
  local legacy = redis.call('GET', KEYS[2])
  if legacy then return {2, legacy} end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if ARGV[3] == 'mirror' then redis.call('SET', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[2]) end
return {1, ARGV[1]}
"""

# Compare-and-set: replace the value only if it is still the stale binding.
_RECLAIM = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return ARGV[2]
end
return current
"""

MAX_CLAIMS_PER_BATCH = 256  # claims sent in one pipeline

_LOST, _WON, _LEGACY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Request:
    key: SendKey
    message_id: int
    conversation_id: str
    digest: str
    legacy_mode: LegacyClaims


class RedisClaimStore:
    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        *,
        legacy: LegacyClaims = LegacyClaims.READ,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._legacy = legacy
        self._claim = PipelineScript(_CLAIM)
        self._reclaim = client.register_script(_RECLAIM)
        # Every send claims: concurrent claims share a pipeline (one round
        # trip); each script in it is still atomic on its own.
        self._claims: Coalescer[_Request, Claim] = Coalescer(
            self._claim_many, max_batch=MAX_CLAIMS_PER_BATCH, name="claims"
        )

    def _key(self, key: SendKey) -> str:
        # Device ids never contain ':' (``chatmesh.conversation``), so the
        # device ends where the client_msg_id begins; 'd' and 's' keep the
        # two scopes apart, and the legacy keys, whose user tag follows
        # 'claim:' directly, apart from both.
        if key.service_scope:
            return f"{self._prefix}claim:s:{{{key.user_id}}}:{key.client_msg_id}"
        return f"{self._prefix}claim:d:{{{key.user_id}}}:{key.device_id}:{key.client_msg_id}"

    def _legacy_key(self, key: SendKey) -> str:
        return f"{self._prefix}claim:{{{key.user_id}}}:{key.client_msg_id}"

    async def claim(
        self,
        key: SendKey,
        message_id: int,
        conversation_id: str,
        digest: str,
        *,
        consult_legacy: bool = True,
    ) -> Claim:
        mode = self._legacy if consult_legacy else LegacyClaims.OFF
        return await self._claims.submit(_Request(key, message_id, conversation_id, digest, mode))

    async def _claim_many(self, requests: Sequence[_Request]) -> list[Claim]:
        replies = await run_pipeline(
            self._redis, [self._claim_command(r) for r in requests], [self._claim]
        )
        claims = []
        for r, reply in zip(requests, replies, strict=True):
            if r.legacy_mode is LegacyClaims.OFF:
                won = reply is None
                held = _binding(r.message_id, r.digest, r.conversation_id) if won else reply
                claims.append(_parse(held, won=won))
            else:
                outcome, value = reply
                legacy = outcome == _LEGACY
                claims.append(
                    _parse_legacy(value) if legacy else _parse(value, won=outcome == _WON)
                )
        return claims

    def _claim_command(self, r: _Request) -> Queue:
        binding = _binding(r.message_id, r.digest, r.conversation_id)
        key = self._key(r.key)
        if r.legacy_mode is LegacyClaims.OFF:
            # SET NX GET: sets when absent and returns the previous value
            # otherwise, atomically; a sixth of a script's cost in Redis.
            return lambda pipe: pipe.set(key, binding, nx=True, get=True, ex=CLAIM_TTL_S)
        keys = [key, self._legacy_key(r.key)]
        args = [binding, CLAIM_TTL_S, r.legacy_mode.value, f"{r.message_id}:{r.conversation_id}"]
        return lambda pipe: self._claim.queue(pipe, keys, args)

    async def reclaim(self, key: SendKey, stale: Claim, message_id: int) -> Claim:
        fresh = _binding(message_id, stale.digest, stale.conversation_id)
        current = await self._reclaim(
            keys=[self._key(key)],
            args=[
                _binding(stale.message_id, stale.digest, stale.conversation_id),
                fresh,
                CLAIM_TTL_S,
            ],
        )
        if current is None:
            # The claim expired meanwhile (a week): bind afresh.
            return await self.claim(
                key, message_id, stale.conversation_id, stale.digest, consult_legacy=False
            )
        claim = _parse(current, won=False)
        return Claim(
            claim.message_id,
            claim.conversation_id,
            claim.digest,
            won=claim.message_id == message_id,
        )


def _binding(message_id: int, digest: str, conversation_id: str) -> str:
    # The conversation id goes last: it is the one field that may hold ':'.
    return f"{message_id}:{digest}:{conversation_id}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(value: object, *, won: bool) -> Claim:
    held_id, digest, conversation_id = _text(value).split(":", 2)
    return Claim(int(held_id), conversation_id, digest, won=won)


def _parse_legacy(value: object) -> Claim:
    held_id, conversation_id = _text(value).split(":", 1)
    return Claim(int(held_id), conversation_id, "", won=False, legacy=True)
