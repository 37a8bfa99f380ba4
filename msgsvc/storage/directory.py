"""Users, conversations and memberships in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from chatmesh.coalescer import Coalescer

DIRECT = 1
GROUP = 2
CHANNEL = 3  # a broadcast channel: admins post, members are nudged and read on open
MULTI_MEMBER = frozenset({GROUP, CHANNEL})  # conversations with membership changes

# Member roles (chatmesh.v1.MemberRole).
MEMBER = 1
ADMIN = 2


@dataclass(frozen=True, slots=True)
class Member:
    """One member row: a window of message ids the user may read, and a role."""

    user_id: str
    role: int
    joined_id: int  # first readable message id
    left_id: int | None = None  # first message id no longer readable; None while a member

    @property
    def current(self) -> bool:
        return self.left_id is None

    def sees(self, message_id: int) -> bool:
        return self.joined_id <= message_id and (self.left_id is None or message_id < self.left_id)


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    kind: int
    created_at_ms: int
    member_ids: tuple[str, ...]  # current members, sorted
    title: str = ""
    created_by: str = ""
    created_event_id: int = 0  # groups: the GroupCreated system message
    last_message_id: int = 0
    members: tuple[Member, ...] = ()  # every row, former members included, by user id

    def member(self, user_id: str) -> Member | None:
        """The user's row if they are a current member."""
        for m in self.members:
            if m.user_id == user_id and m.current:
                return m
        return None

    def recipients(self, message_id: int) -> tuple[str, ...]:
        """Whoever may read ``message_id``: the members whose window holds it."""
        if not self.members:
            return self.member_ids
        return tuple(m.user_id for m in self.members if m.sees(message_id))


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member's receipt watermarks in one conversation."""

    conversation_id: str
    user_id: str
    delivered_message_id: int
    read_message_id: int


@dataclass(frozen=True, slots=True)
class Membership:
    """A conversation as one member sees it: activity and own watermarks."""

    conversation_id: str
    kind: int
    title: str
    created_at_ms: int
    last_message_id: int  # the newest the member may read
    own: MemberState
    joined_id: int = 0
    left: bool = False  # a former member: listed to learn it, nothing more


@dataclass(frozen=True, slots=True)
class ActivityKey:
    """Position in a member's conversation list, newest activity first."""

    last_message_id: int
    conversation_id: str


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

    async def conversation_for(self, conversation_id: str, user_id: str) -> Conversation | None:
        """The conversation with only ``user_id``'s member row (if any): what
        authorising one member needs, at a cost that does not grow with the
        group. ``member_ids`` holds the user alone, if a current member."""
        ...

    async def touch(self, conversation_id: str, message_id: int, sender_user_id: str) -> None:
        """Raises the conversation's last_message_id to ``message_id`` (never
        lowers it), and the sender's watermarks with it: whoever writes has
        read what came before. Done before the message row is written, so a
        conversation whose rows a reader can see is always marked active."""
        ...

    async def memberships_since(self, user_id: str, floor_id: int, limit: int) -> list[Membership]:
        """The user's conversations with last_message_id >= ``floor_id``,
        newest activity first, at most ``limit``."""
        ...

    async def memberships_page(
        self, user_id: str, after: ActivityKey | None, limit: int
    ) -> list[Membership]:
        """The user's conversations ordered by (last_message_id,
        conversation_id) descending, strictly after ``after``."""
        ...

    async def member_states(self, conversation_ids: Sequence[str]) -> list[MemberState]:
        """Every member's watermarks in the given conversations."""
        ...

    async def advance(
        self, conversation_id: str, user_id: str, *, delivered_to: int, read_to: int
    ) -> tuple[MemberState, bool] | None:
        """Raises the member's watermarks to at least the given ids (0 leaves
        one alone) and returns the state after, and whether anything moved;
        None if the user is not a member. Never lowers a watermark."""
        ...


# Touches written in one transaction: bounded so one batch's commit stays short.
MAX_TOUCHES_PER_BATCH = 256


class PostgresDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # Every send touches; concurrent touches share one round trip and
        # one commit instead of paying each.
        self._touches: Coalescer[tuple[str, int, str], None] = Coalescer(
            self._touch_many, max_batch=MAX_TOUCHES_PER_BATCH, name="activity-touches"
        )

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
        return conversation_from_rows(
            conversation_id, await self._pool.fetch(CONVERSATION_SELECT, conversation_id)
        )

    async def conversation_for(self, conversation_id: str, user_id: str) -> Conversation | None:
        return conversation_from_rows(
            conversation_id,
            await self._pool.fetch(_ONE_MEMBER_SELECT, conversation_id, user_id),
        )

    async def touch(self, conversation_id: str, message_id: int, sender_user_id: str) -> None:
        await self._touches.submit((conversation_id, message_id, sender_user_id))

    async def _touch_many(self, touches: Sequence[tuple[str, int, str]]) -> list[None]:
        # One transaction for the batch. Rows are locked in a global order
        # (conversation, then message id), so batches from two instances
        # that share conversations cannot deadlock.
        await self._pool.executemany(
            "WITH activity AS ("
            " UPDATE conversations SET last_message_id = $2"
            " WHERE conversation_id = $1 AND last_message_id < $2)"
            " UPDATE members SET read_watermark = $2,"
            " delivered_watermark = GREATEST(delivered_watermark, $2)"
            " WHERE conversation_id = $1 AND user_id = $3 AND read_watermark < $2",
            sorted(touches),
        )
        return [None] * len(touches)

    async def memberships_since(self, user_id: str, floor_id: int, limit: int) -> list[Membership]:
        rows = await self._pool.fetch(
            _MEMBERSHIP_SELECT + " AND c.last_message_id >= $2"
            " ORDER BY c.last_message_id DESC, c.conversation_id DESC LIMIT $3",
            user_id,
            floor_id,
            limit,
        )
        return [_membership(user_id, r) for r in rows]

    async def memberships_page(
        self, user_id: str, after: ActivityKey | None, limit: int
    ) -> list[Membership]:
        if after is None:
            rows = await self._pool.fetch(
                _MEMBERSHIP_SELECT
                + " ORDER BY c.last_message_id DESC, c.conversation_id DESC LIMIT $2",
                user_id,
                limit,
            )
        else:
            rows = await self._pool.fetch(
                _MEMBERSHIP_SELECT + " AND (c.last_message_id, c.conversation_id) < ($2, $3)"
                " ORDER BY c.last_message_id DESC, c.conversation_id DESC LIMIT $4",
                user_id,
                after.last_message_id,
                after.conversation_id,
                limit,
            )
        return [_membership(user_id, r) for r in rows]

    async def member_states(self, conversation_ids: Sequence[str]) -> list[MemberState]:
        rows = await self._pool.fetch(
            "SELECT conversation_id, user_id, delivered_watermark, read_watermark FROM members"
            " WHERE conversation_id = ANY($1::text[]) ORDER BY conversation_id, user_id",
            list(conversation_ids),
        )
        return [
            MemberState(
                r["conversation_id"], r["user_id"], r["delivered_watermark"], r["read_watermark"]
            )
            for r in rows
        ]

    async def advance(
        self, conversation_id: str, user_id: str, *, delivered_to: int, read_to: int
    ) -> tuple[MemberState, bool] | None:
        # Read implies delivered. The WHERE clause makes an old report a
        # no-op without taking a write lock's worth of work.
        delivered_to = max(delivered_to, read_to)
        row = await self._pool.fetchrow(
            "UPDATE members SET"
            " delivered_watermark = GREATEST(delivered_watermark, $3),"
            " read_watermark = GREATEST(read_watermark, $4)"
            " WHERE conversation_id = $1 AND user_id = $2"
            " AND (delivered_watermark < $3 OR read_watermark < $4)"
            " RETURNING delivered_watermark, read_watermark",
            conversation_id,
            user_id,
            delivered_to,
            read_to,
        )
        advanced = row is not None
        if row is None:
            row = await self._pool.fetchrow(
                "SELECT delivered_watermark, read_watermark FROM members"
                " WHERE conversation_id = $1 AND user_id = $2",
                conversation_id,
                user_id,
            )
            if row is None:
                return None
        state = MemberState(
            conversation_id, user_id, row["delivered_watermark"], row["read_watermark"]
        )
        return state, advanced


# A conversation and every member row; ``FOR UPDATE`` is appended by the
# group store, which reads it under the conversation's lock.
CONVERSATION_SELECT = (
    "SELECT c.kind, c.title, c.created_by, c.created_event_id, c.created_at_ms,"
    " c.last_message_id, m.user_id, m.role, m.joined_id, m.left_id"
    " FROM conversations c LEFT JOIN members m ON m.conversation_id = c.conversation_id"
    " WHERE c.conversation_id = $1"
)


_ONE_MEMBER_SELECT = (
    "SELECT c.kind, c.title, c.created_by, c.created_event_id, c.created_at_ms,"
    " c.last_message_id, m.user_id, m.role, m.joined_id, m.left_id"
    " FROM conversations c LEFT JOIN members m"
    " ON m.conversation_id = c.conversation_id AND m.user_id = $2"
    " WHERE c.conversation_id = $1"
)


def conversation_from_rows(
    conversation_id: str, rows: Sequence[asyncpg.Record]
) -> Conversation | None:
    if not rows:
        return None
    members = tuple(
        sorted(
            (
                Member(r["user_id"], r["role"], r["joined_id"], r["left_id"])
                for r in rows
                if r["user_id"] is not None
            ),
            key=lambda m: m.user_id,
        )
    )
    first = rows[0]
    return Conversation(
        conversation_id=conversation_id,
        kind=first["kind"],
        created_at_ms=first["created_at_ms"],
        member_ids=tuple(m.user_id for m in members if m.current),
        title=first["title"],
        created_by=first["created_by"] or "",
        created_event_id=first["created_event_id"],
        last_message_id=first["last_message_id"],
        members=members,
    )


# A member's view of their conversations: a former member's activity stops
# at the message that ended their membership.
_MEMBERSHIP_SELECT = (
    "SELECT * FROM (SELECT c.conversation_id, c.kind, c.title, c.created_at_ms,"
    " CASE WHEN m.left_id IS NULL THEN c.last_message_id"
    " ELSE LEAST(c.last_message_id, m.left_id - 1) END AS last_message_id,"
    " m.delivered_watermark, m.read_watermark, m.joined_id, m.left_id IS NOT NULL AS left"
    " FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id"
    " WHERE m.user_id = $1) AS c WHERE TRUE"
)


def _membership(user_id: str, row: asyncpg.Record) -> Membership:
    return Membership(
        conversation_id=row["conversation_id"],
        kind=row["kind"],
        title=row["title"],
        created_at_ms=row["created_at_ms"],
        last_message_id=row["last_message_id"],
        own=MemberState(
            row["conversation_id"], user_id, row["delivered_watermark"], row["read_watermark"]
        ),
        joined_id=row["joined_id"],
        left=row["left"],
    )
