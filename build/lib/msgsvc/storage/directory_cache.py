"""An in-process cache of direct conversations in front of the directory.

A 1:1 conversation's members never change, so once seen it can be served
from memory for good: the steady-state send path then makes no PostgreSQL
round trip. Group conversations are not cached here; their membership
changes and needs invalidation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from msgsvc.storage.directory import DIRECT, Conversation, Directory

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
