"""Group memberships as fan-out workers need them: cached, invalidated by the log.

Why a cache is safe here (decision 0011, 0012): a group change appends its
system message to the log while it holds the group's lock, and every message
marked after the change is appended after it, to the same partition. So when
a worker reads a change it drops the group's entry, and the next message
loads the membership afresh from PostgreSQL: a message with a larger id than
the change was marked after the change committed, so the load includes it.
A message with a smaller id than a change may be read after it; member
windows (``Member.sees``) route it correctly whichever state is loaded. A
time limit bounds what a lost invalidation could cost.
"""

from __future__ import annotations

from collections import OrderedDict

from chatmesh.clock import Clock
from msgsvc.storage.directory import Conversation, Directory

MAX_CACHED_GROUPS = 20_000  # a 500-member group's entry is ~50 KB at most
ENTRY_TTL_MS = 60_000


class MembershipCache:
    def __init__(
        self,
        directory: Directory,
        clock: Clock,
        *,
        max_entries: int = MAX_CACHED_GROUPS,
        ttl_ms: int = ENTRY_TTL_MS,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._max_entries = max_entries
        self._ttl_ms = ttl_ms
        self._entries: OrderedDict[str, tuple[int, Conversation | None]] = OrderedDict()

    async def get(self, conversation_id: str) -> Conversation | None:
        now = self._clock.now_ms()
        held = self._entries.get(conversation_id)
        if held is not None and now - held[0] < self._ttl_ms:
            self._entries.move_to_end(conversation_id)
            return held[1]
        found = await self._directory.conversation(conversation_id)
        self._entries[conversation_id] = (now, found)
        self._entries.move_to_end(conversation_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return found

    def invalidate(self, conversation_id: str) -> None:
        self._entries.pop(conversation_id, None)
