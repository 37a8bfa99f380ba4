"""Idempotency claims for client message ids, in Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

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


class RedisClaimStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix

    async def claim(
        self, sender_user_id: str, client_msg_id: str, message_id: int, conversation_id: str
    ) -> Claim:
        key = f"{self._prefix}claim:{{{sender_user_id}}}:{client_msg_id}"
        # SET NX GET: sets when absent and returns the previous value otherwise,
        # in one round trip and atomically.
        previous = await self._redis.set(
            key, f"{message_id}:{conversation_id}", nx=True, get=True, ex=CLAIM_TTL_S
        )
        if previous is None:
            return Claim(message_id, conversation_id, won=True)
        text = previous.decode() if isinstance(previous, bytes) else str(previous)
        held_id, held_conversation = text.split(":", 1)
        return Claim(int(held_id), held_conversation, won=False)
