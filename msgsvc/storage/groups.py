"""Group membership in PostgreSQL: changes made under the conversation's lock.

A change is validated and applied inside one transaction that holds the
conversation's row lock (``locked``; ``creating`` for a group that may not
exist yet). Sends raise the conversation's activity mark under the same row
lock, so a change and the sends around it are serialised: the change's
message id is taken above every message id marked before it, and every send
with a larger id is marked, and routed, after the change is visible.

``apply`` is idempotent and order-free: each member row and the title carry
the id of the system message that last changed them, and a change applies
only over an older one. The same change can therefore be applied again by
whoever finds its system message unapplied (routing, recovery) without
undoing anything newer (decision 0011).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from chatmesh import snowflake
from msgsvc.group_events import Change, GroupEvent, effects
from msgsvc.storage.directory import (
    CONVERSATION_SELECT,
    Conversation,
    conversation_from_rows,
)

Connection = asyncpg.Connection | PoolConnectionProxy


class GroupTransaction:
    """One change in progress: the conversation as it was when locked."""

    def __init__(self, conn: Connection, conversation: Conversation | None) -> None:
        self._conn = conn
        self.conversation = conversation

    async def apply(self, message_id: int, event: GroupEvent, conversation_id: str) -> None:
        await apply_event(self._conn, conversation_id, message_id, event)

    async def reload(self, conversation_id: str) -> Conversation:
        found = conversation_from_rows(
            conversation_id, await self._conn.fetch(CONVERSATION_SELECT, conversation_id)
        )
        assert found is not None
        return found


class GroupStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def locked(self, conversation_id: str) -> AsyncIterator[GroupTransaction]:
        """A transaction holding the conversation's row lock; commits on exit
        unless an exception leaves the block."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked first, read after, in two statements: a read that waits
            # for the lock inside one statement would see the conversation
            # row as it is after the wait but its members as they were
            # before, and a concurrent change would be validated against a
            # stale membership.
            await conn.execute(
                "SELECT 1 FROM conversations WHERE conversation_id = $1 FOR UPDATE",
                conversation_id,
            )
            rows = await conn.fetch(CONVERSATION_SELECT, conversation_id)
            yield GroupTransaction(conn, conversation_from_rows(conversation_id, rows))

    @asynccontextmanager
    async def creating(self, conversation_id: str) -> AsyncIterator[GroupTransaction]:
        """Like ``locked`` for a group that may not exist yet: concurrent
        creations of one id wait for each other."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", conversation_id
            )
            rows = await conn.fetch(CONVERSATION_SELECT, conversation_id)
            yield GroupTransaction(conn, conversation_from_rows(conversation_id, rows))

    async def apply(self, conversation_id: str, message_id: int, event: GroupEvent) -> None:
        """Applies a change found recorded but perhaps not applied."""
        async with self._pool.acquire() as conn, conn.transaction():
            await apply_event(conn, conversation_id, message_id, event)


async def apply_event(
    conn: Connection, conversation_id: str, message_id: int, event: GroupEvent
) -> None:
    if event.change is Change.CREATED:
        await conn.execute(
            "INSERT INTO conversations (conversation_id, kind, title, title_version,"
            " created_at_ms, created_by, created_event_id, last_message_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $4, $4) ON CONFLICT DO NOTHING",
            conversation_id,
            event.kind,
            event.title,
            message_id,
            snowflake.timestamp_ms(message_id),
            event.actor,
        )
    result = effects(event)
    if result.title is not None:
        await conn.execute(
            "UPDATE conversations SET title = $2, title_version = $3"
            " WHERE conversation_id = $1 AND title_version < $3",
            conversation_id,
            result.title,
            message_id,
        )
    for effect in result.members:
        if effect.join_as is not None:
            # (Re)joining starts the member's window and receipts at this message.
            await conn.execute(
                "INSERT INTO members (conversation_id, user_id, role, joined_id, left_id,"
                " version, delivered_watermark, read_watermark)"
                " VALUES ($1, $2, $3, $4::bigint, NULL, $4::bigint, $4::bigint - 1, $4::bigint - 1)"
                " ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = EXCLUDED.role,"
                " joined_id = EXCLUDED.joined_id, left_id = NULL, version = EXCLUDED.version,"
                " delivered_watermark = EXCLUDED.delivered_watermark,"
                " read_watermark = EXCLUDED.read_watermark"
                " WHERE members.version < EXCLUDED.version",
                conversation_id,
                effect.user_id,
                effect.join_as,
                message_id,
            )
        if effect.leave:
            await conn.execute(
                "UPDATE members SET left_id = $3::bigint + 1, version = $3::bigint"
                " WHERE conversation_id = $1 AND user_id = $2 AND version < $3",
                conversation_id,
                effect.user_id,
                message_id,
            )
        if effect.role is not None:
            await conn.execute(
                "UPDATE members SET role = $3, version = $4"
                " WHERE conversation_id = $1 AND user_id = $2 AND version < $4",
                conversation_id,
                effect.user_id,
                effect.role,
                message_id,
            )
    # The actor wrote the message: it raises their read watermark like a send.
    await conn.execute(
        "WITH activity AS (UPDATE conversations SET last_message_id = $2"
        " WHERE conversation_id = $1 AND last_message_id < $2)"
        " UPDATE members SET read_watermark = $2,"
        " delivered_watermark = GREATEST(delivered_watermark, $2)"
        " WHERE conversation_id = $1 AND user_id = $3 AND left_id IS NULL"
        " AND read_watermark < $2",
        conversation_id,
        message_id,
        event.actor,
    )
