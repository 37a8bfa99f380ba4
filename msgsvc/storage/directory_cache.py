"""An in-process cache of direct conversations in front of the directory.

A 1:1 conversation's members never change, so once seen it can be served
from memory for good: the steady-state send path then makes no PostgreSQL
round trip. Group conversations are not cached here; their membership
changes and needs invalidation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from msgsvc.storage.directory import (
    DIRECT,
    ActivityKey,
    Conversation,
    Directory,
    Membership,
    MemberState,
)

MAX_CACHED_CONVERSATIONS = 200_000  # ~200 bytes each: ~40 MB at the limit


class CachingDirectory:
    def __init__(self, inner: Directory, *, max_entries: int = MAX_CACHED_CONVERSATIONS) -> None:
        self._inner = inner
        self._max_entries = max_entries
        self._direct: OrderedDict[str, Conversation] = OrderedDict()

    async def existing_users(self, user_ids: Iterable[str]) -> set[str]:
        return await self._inner.existing_users(user_ids)

    async def ensure_direct(
        self, conversation_id: str, user_a: str, user_b: str, created_at_ms: int
    ) -> Conversation:
        cached = self._get(conversation_id)
        if cached is not None:
            return cached
        conversation = await self._inner.ensure_direct(
            conversation_id, user_a, user_b, created_at_ms
        )
        self._put(conversation)
        return conversation

    async def conversation(self, conversation_id: str) -> Conversation | None:
        cached = self._get(conversation_id)
        if cached is not None:
            return cached
        conversation = await self._inner.conversation(conversation_id)
        if conversation is not None:
            self._put(conversation)
        return conversation

    async def conversation_for(self, conversation_id: str, user_id: str) -> Conversation | None:
        return await self._inner.conversation_for(conversation_id, user_id)

    # Activity and watermarks change with every message: never cached.

    async def touch(self, conversation_id: str, message_id: int, sender_user_id: str) -> None:
        await self._inner.touch(conversation_id, message_id, sender_user_id)

    async def memberships_since(self, user_id: str, floor_id: int, limit: int) -> list[Membership]:
        return await self._inner.memberships_since(user_id, floor_id, limit)

    async def memberships_page(
        self, user_id: str, after: ActivityKey | None, limit: int
    ) -> list[Membership]:
        return await self._inner.memberships_page(user_id, after, limit)

    async def member_states(self, conversation_ids: Sequence[str]) -> list[MemberState]:
        return await self._inner.member_states(conversation_ids)

    async def advance(
        self, conversation_id: str, user_id: str, *, delivered_to: int, read_to: int
    ) -> tuple[MemberState, bool] | None:
        return await self._inner.advance(
            conversation_id, user_id, delivered_to=delivered_to, read_to=read_to
        )

    def _get(self, conversation_id: str) -> Conversation | None:
        conversation = self._direct.get(conversation_id)
        if conversation is not None:
            self._direct.move_to_end(conversation_id)
        return conversation

    def _put(self, conversation: Conversation) -> None:
        if conversation.kind != DIRECT:
            return
        self._direct[conversation.conversation_id] = conversation
        self._direct.move_to_end(conversation.conversation_id)
        while len(self._direct) > self._max_entries:
            self._direct.popitem(last=False)
