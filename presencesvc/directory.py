"""What presencesvc reads and writes in PostgreSQL: who shares a
conversation with whom, and who hides their presence."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from chatmesh.v1 import common_pb2

CONVERSATIONS = common_pb2.PRESENCE_VISIBILITY_CONVERSATIONS
NOBODY = common_pb2.PRESENCE_VISIBILITY_NOBODY


class PostgresPresenceDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def sharing_a_conversation(self, user_id: str, others: Collection[str]) -> set[str]:
        """Which of ``others`` are, with ``user_id``, current members of some
        conversation."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT theirs.user_id FROM members mine"
            " JOIN members theirs ON theirs.conversation_id = mine.conversation_id"
            " WHERE mine.user_id = $1 AND mine.left_id IS NULL"
            " AND theirs.user_id = ANY($2::text[]) AND theirs.left_id IS NULL",
            user_id,
            list(others),
        )
        return {row["user_id"] for row in rows}

    async def visibility(self, user_ids: Collection[str]) -> dict[str, int]:
        """Per user, who may see their presence; unknown users read as hidden."""
        rows = await self._pool.fetch(
            "SELECT user_id, presence_visibility FROM users WHERE user_id = ANY($1::text[])",
            list(user_ids),
        )
        found: dict[str, int] = dict.fromkeys(user_ids, int(NOBODY))
        found.update({row["user_id"]: row["presence_visibility"] for row in rows})
        return found

    async def set_visibility(self, user_id: str, visibility: int) -> bool:
        """False if the user does not exist."""
        status = await self._pool.execute(
            "UPDATE users SET presence_visibility = $2 WHERE user_id = $1", user_id, visibility
        )
        return bool(status.endswith(" 1"))
