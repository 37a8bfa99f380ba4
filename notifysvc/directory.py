"""What notifysvc reads from the relational directory (PostgreSQL): devices
with push credentials, names and titles, read marks, mutes, badges; and the
one thing it writes: forgetting a credential a provider declared dead."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import asyncpg

from notifysvc.devices import PushDevice

DIRECT = 1  # conversations.kind of a 1:1 conversation


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    title: str
    direct: bool


class PostgresPushDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def push_devices(self, user_ids: Collection[str]) -> dict[str, list[PushDevice]]:
        """Per user, the devices with a push credential."""
        rows = await self._pool.fetch(
            "SELECT user_id, device_id, push_platform, push_token, push_params, show_previews"
            " FROM devices WHERE user_id = ANY($1::text[]) AND push_token IS NOT NULL",
            list(user_ids),
        )
        found: dict[str, list[PushDevice]] = {}
        for row in rows:
            found.setdefault(row["user_id"], []).append(
                PushDevice(
                    user_id=row["user_id"],
                    device_id=row["device_id"],
                    platform=row["push_platform"] or "",
                    token=row["push_token"],
                    params=json.loads(row["push_params"]) if row["push_params"] else {},
                    show_previews=row["show_previews"],
                )
            )
        return found

    async def display_names(self, user_ids: Collection[str]) -> dict[str, str]:
        rows = await self._pool.fetch(
            "SELECT user_id, display_name FROM users WHERE user_id = ANY($1::text[])",
            list(user_ids),
        )
        return {row["user_id"]: row["display_name"] or row["user_id"] for row in rows}

    async def conversations(self, conversation_ids: Collection[str]) -> dict[str, ConversationInfo]:
        rows = await self._pool.fetch(
            "SELECT conversation_id, kind, title FROM conversations"
            " WHERE conversation_id = ANY($1::text[])",
            list(conversation_ids),
        )
        return {
            row["conversation_id"]: ConversationInfo(row["title"], row["kind"] == DIRECT)
            for row in rows
        }

    async def read_marks(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], int | None]:
        """Per (conversation, user), the member's read watermark; None for a
        user who is no longer a member (nothing is pushed to them)."""
        pairs = sorted(set(pairs))
        rows = await self._pool.fetch(
            "SELECT m.conversation_id, m.user_id, m.read_watermark, m.left_id"
            " FROM members m JOIN unnest($1::text[], $2::text[]) AS p (c, u)"
            " ON m.conversation_id = p.c AND m.user_id = p.u",
            [c for c, _ in pairs],
            [u for _, u in pairs],
        )
        marks: dict[tuple[str, str], int | None] = dict.fromkeys(pairs)
        for row in rows:
            if row["left_id"] is None:
                marks[(row["conversation_id"], row["user_id"])] = row["read_watermark"]
        return marks

    async def muted(self, pairs: Iterable[tuple[str, str]], now_ms: int) -> set[tuple[str, str]]:
        """The (conversation, user) pairs muted at ``now_ms``."""
        pairs = sorted(set(pairs))
        rows = await self._pool.fetch(
            "SELECT m.conversation_id, m.user_id FROM conversation_mutes m"
            " JOIN unnest($1::text[], $2::text[]) AS p (c, u)"
            " ON m.conversation_id = p.c AND m.user_id = p.u"
            " WHERE m.muted_until IS NULL OR m.muted_until > to_timestamp($3 / 1000.0)",
            [c for c, _ in pairs],
            [u for _, u in pairs],
            now_ms,
        )
        return {(row["conversation_id"], row["user_id"]) for row in rows}

    async def badges(self, user_ids: Collection[str]) -> dict[str, int]:
        """Per user, the conversations with unread messages: the badge. One
        indexed query, where counting messages would read every unread
        conversation's rows from Cassandra."""
        rows = await self._pool.fetch(
            "SELECT m.user_id, count(*) AS unread FROM members m"
            " JOIN conversations c ON c.conversation_id = m.conversation_id"
            " WHERE m.user_id = ANY($1::text[]) AND m.left_id IS NULL"
            " AND c.last_message_id > m.read_watermark"
            " GROUP BY m.user_id",
            list(user_ids),
        )
        counts = dict.fromkeys(user_ids, 0)
        counts.update({row["user_id"]: row["unread"] for row in rows})
        return counts

    async def forget_credential(self, device: PushDevice) -> bool:
        """Clears a dead credential unless the device has registered another
        since; True if it was cleared."""
        status = await self._pool.execute(
            "UPDATE devices SET push_platform = NULL, push_token = NULL, push_params = NULL"
            " WHERE user_id = $1 AND device_id = $2 AND push_token = $3",
            device.user_id,
            device.device_id,
            device.token,
        )
        return bool(status.endswith(" 1"))
