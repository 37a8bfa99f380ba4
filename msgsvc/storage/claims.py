"""Idempotency claims for client message ids, in Redis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

from chatmesh.coalescer import Coalescer

# A client retries within minutes; a device offline for a week that resends
# its outbox must still be deduplicated, so claims live for a week.
CLAIM_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: int
    conversation_id: str
    won: bool  # False: an earlier send holds the claim; reuse its id


class ClaimStore(Protocol):
    async def claim(
        self, sender_user_id: str, client_msg_id: str, message_id: int, conversation_id: str
    ) -> Claim:
        """Atomically binds (sender, client_msg_id) to ``message_id`` unless
        already bound, and returns the binding in force."""
        ...

    async def reclaim(
        self, sender_user_id: str, client_msg_id: str, stale: Claim, message_id: int
    ) -> Claim:
        """Atomically rebinds a claim still bound to ``stale`` to ``message_id``
        (same conversation), and returns the binding in force: the new one, or
        whatever a concurrent reclaim installed first."""
        ...


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


@dataclass(frozen=True, slots=True)
class _Request:
    key: str
    message_id: int
    conversation_id: str


class RedisClaimStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._reclaim = client.register_script(_RECLAIM)
        # Every send claims: concurrent claims share a pipeline (one round
        # trip); each SET NX GET in it is still atomic on its own.
        self._claims: Coalescer[_Request, Claim] = Coalescer(
            self._claim_many, max_batch=MAX_CLAIMS_PER_BATCH, name="claims"
        )

    def _key(self, sender_user_id: str, client_msg_id: str) -> str:
        return f"{self._prefix}claim:{{{sender_user_id}}}:{client_msg_id}"

    async def claim(
        self, sender_user_id: str, client_msg_id: str, message_id: int, conversation_id: str
    ) -> Claim:
        return await self._claims.submit(
            _Request(self._key(sender_user_id, client_msg_id), message_id, conversation_id)
        )

    async def _claim_many(self, requests: Sequence[_Request]) -> list[Claim]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for r in requests:
                # SET NX GET: sets when absent and returns the previous value
                # otherwise, atomically.
                pipe.set(
                    r.key, f"{r.message_id}:{r.conversation_id}", nx=True, get=True, ex=CLAIM_TTL_S
                )
            previous = await pipe.execute()
        return [
            Claim(r.message_id, r.conversation_id, won=True)
            if held is None
            else _parse(held, won=False)
            for r, held in zip(requests, previous, strict=True)
        ]

    async def reclaim(
        self, sender_user_id: str, client_msg_id: str, stale: Claim, message_id: int
    ) -> Claim:
        fresh = f"{message_id}:{stale.conversation_id}"
        current = await self._reclaim(
            keys=[self._key(sender_user_id, client_msg_id)],
            args=[f"{stale.message_id}:{stale.conversation_id}", fresh, CLAIM_TTL_S],
        )
        if current is None:
            # The claim expired meanwhile (a week): bind afresh.
            return await self.claim(
                sender_user_id, client_msg_id, message_id, stale.conversation_id
            )
        claim = _parse(current, won=False)
        return Claim(claim.message_id, claim.conversation_id, won=claim.message_id == message_id)


def _parse(value: object, *, won: bool) -> Claim:
    text = value.decode() if isinstance(value, bytes) else str(value)
    held_id, held_conversation = text.split(":", 1)
    return Claim(int(held_id), held_conversation, won=won)
