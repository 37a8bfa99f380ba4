"""Conversations a user muted: no pushes for them, until a time or for good."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import asyncpg


class PostgresMutes:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def mute(self, user_id: str, conversation_id: str, until_ms: int | None) -> None:
        """Mutes until ``until_ms`` (Unix ms), or for good with None."""
        until = (
            None
            if until_ms is None
            else datetime.datetime.fromtimestamp(until_ms / 1000, datetime.UTC)
        )
        await self._pool.execute(
            "INSERT INTO conversation_mutes (user_id, conversation_id, muted_until)"
            " VALUES ($1, $2, $3) ON CONFLICT (user_id, conversation_id)"
            " DO UPDATE SET muted_until = EXCLUDED.muted_until",
            user_id,
            conversation_id,
            until,
        )

    async def unmute(self, user_id: str, conversation_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM conversation_mutes WHERE user_id = $1 AND conversation_id = $2",
            user_id,
            conversation_id,
        )

    async def muted(self, conversation_id: str, user_ids: Sequence[str], now_ms: int) -> set[str]:
        """Which of ``user_ids`` have the conversation muted at ``now_ms``."""
        rows = await self._pool.fetch(
            "SELECT user_id FROM conversation_mutes"
            " WHERE conversation_id = $1 AND user_id = ANY($2::text[])"
            " AND (muted_until IS NULL OR muted_until > to_timestamp($3 / 1000.0))",
            conversation_id,
            list(user_ids),
            now_ms,
        )
        return {row["user_id"] for row in rows}
