"""Conversation summaries: last message, unread count, receipt state.

Shared by the conversation list and the sync summary. The unread count comes
from the member's read watermark: messages above it are unread (a member's
own sends raise their watermark, so those are all from others). Counting
reads message ids only and stops at ``UNREAD_COUNT_CAP``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from chatmesh.v1 import common_pb2
from msgsvc.group_receipts import count
from msgsvc.model import ConversationView, StoredMessage
from msgsvc.storage.directory import (
    DIRECT,
    GROUP,
    Directory,
    Member,
    Membership,
    MemberState,
)
from msgsvc.storage.messages import MessageStore, bucket_at, bucket_of

UNREAD_COUNT_CAP = 1000  # a badge shows "999+" long before this
# Cassandra reads in flight for one summary request: enough to hide latency,
# few enough that one user's sync cannot monopolise the driver.
MAX_CONCURRENT_READS = 32


class Summarizer:
    def __init__(self, directory: Directory, messages: MessageStore) -> None:
        self._directory = directory
        self._messages = messages

    async def views(self, memberships: Sequence[Membership]) -> list[ConversationView]:
        direct_ids = [m.conversation_id for m in memberships if m.kind == DIRECT]
        states: dict[str, list[MemberState]] = defaultdict(list)
        if direct_ids:
            for state in await self._directory.member_states(direct_ids):
                states[state.conversation_id].append(state)
        slots = asyncio.Semaphore(MAX_CONCURRENT_READS)

        async def view(membership: Membership) -> ConversationView:
            async with slots:
                return await self._view(
                    membership, tuple(states.get(membership.conversation_id, ()))
                )

        return list(await asyncio.gather(*(view(m) for m in memberships)))

    async def _view(
        self, membership: Membership, member_states: tuple[MemberState, ...]
    ) -> ConversationView:
        conversation = await self._directory.conversation(membership.conversation_id)
        member_ids = conversation.member_ids if conversation is not None else ()
        members: tuple[Member, ...] = ()
        if conversation is not None and conversation.kind != DIRECT:
            members = tuple(m for m in conversation.members if m.current)
        last = await self._last_message(membership)
        last_receipts = None
        if conversation is not None and conversation.kind == GROUP and not membership.left:
            if last is not None and last.kind != common_pb2.MESSAGE_KIND_SYSTEM:
                states = await self._directory.member_states([conversation.conversation_id])
                counted = count(conversation, states, last)
                last_receipts = (
                    counted.message_id,
                    counted.recipients,
                    counted.delivered,
                    counted.read,
                )
        return ConversationView(
            conversation_id=membership.conversation_id,
            kind=membership.kind,
            title=membership.title,
            member_ids=member_ids,
            last_message=last,
            unread_count=0 if membership.left else await self._unread(membership, last),
            member_watermarks=member_states,
            members=members,
            left=membership.left,
            last_receipts=last_receipts,
        )

    async def _last_message(self, membership: Membership) -> StoredMessage | None:
        if membership.last_message_id == 0:
            return None
        found = await self._messages.get(membership.conversation_id, membership.last_message_id)
        if found is not None:
            return found
        # The activity mark is raised before the row is written; a send that
        # died in between leaves a mark with no row. Fall back to the newest row.
        older = await self._messages.page(
            membership.conversation_id,
            before_id=membership.last_message_id,
            limit=1,
            oldest_bucket=bucket_at(membership.created_at_ms),
        )
        return older[0] if older else None

    async def _unread(self, membership: Membership, last: StoredMessage | None) -> int:
        read_to = membership.own.read_message_id
        if last is None or last.message_id <= read_to:
            return 0
        oldest = max(bucket_at(membership.created_at_ms), bucket_of(read_to) if read_to else 0)
        senders = await self._messages.senders_after(
            membership.conversation_id,
            after_id=read_to,
            limit=UNREAD_COUNT_CAP,
            buckets=range(oldest, bucket_of(last.message_id) + 1),
        )
        return sum(1 for sender in senders if sender != membership.own.user_id)
