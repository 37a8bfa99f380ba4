"""Users, conversations and memberships in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

DIRECT = 1
GROUP = 2


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    kind: int
    created_at_ms: int
    member_ids: tuple[str, ...]


class Directory(Protocol):
    async def existing_users(self, user_ids: Iterable[str]) -> set[str]:
        """The subset of ``user_ids`` that are registered users."""
        ...

    async def ensure_direct(
        self, conversation_id: str, user_a: str, user_b: str, created_at_ms: int
    ) -> Conversation:
        """Creates the 1:1 conversation if missing (concurrent calls are safe)
        and returns it; an existing conversation keeps its creation time."""
        ...

    async def conversation(self, conversation_id: str) -> Conversation | None: ...


class PostgresDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def existing_users(self, user_ids: Iterable[str]) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT user_id FROM users WHERE user_id = ANY($1::text[])", list(user_ids)
        )
        return {r["user_id"] for r in rows}

    async def ensure_direct(
        self, conversation_id: str, user_a: str, user_b: str, created_at_ms: int
    ) -> Conversation:
        existing = await self.conversation(conversation_id)
        if existing is not None:
            return existing
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO conversations (conversation_id, kind, created_at_ms)"
                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                conversation_id,
                DIRECT,
                created_at_ms,
            )
            await conn.executemany(
                "INSERT INTO members (conversation_id, user_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                [(conversation_id, user) for user in sorted({user_a, user_b})],
            )
        created = await self.conversation(conversation_id)
        assert created is not None  # just inserted (or inserted concurrently)
        return created

    async def conversation(self, conversation_id: str) -> Conversation | None:
        rows = await self._pool.fetch(
            "SELECT c.kind, c.created_at_ms, m.user_id FROM conversations c"
            " LEFT JOIN members m ON m.conversation_id = c.conversation_id"
            " WHERE c.conversation_id = $1",
            conversation_id,
        )
        if not rows:
            return None
        return Conversation(
            conversation_id=conversation_id,
            kind=rows[0]["kind"],
            created_at_ms=rows[0]["created_at_ms"],
            member_ids=tuple(sorted(r["user_id"] for r in rows if r["user_id"] is not None)),
        )
