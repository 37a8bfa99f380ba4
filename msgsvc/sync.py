"""Catching a device up after it was offline.

A sync has two steps, both stateless on the server. ``summary`` lists the
member's conversations with messages at or above the cursor's floor, newest
activity first, and issues the next cursor. ``page`` then returns one
conversation's messages at or above the same floor, oldest first, a page at
a time. The device adopts the next cursor once it has fetched every listed
conversation; a sync cut short is simply redone from the old cursor.

Why nothing is skipped: the next cursor's floor is ``visibility.sync_floor``
of the time the summary *started*, a window below anything that could still
be committed then (see ``msgsvc.visibility``). Messages between that floor and
the newest are read again by the next sync; the device drops those it has by
message id. A conversation is found by its activity mark, which every send
raises before writing its row.

Held ids: a page request may name messages the device already holds, and the
page leaves out exactly those ids. Nothing else is inferred from them (not
"everything below the highest held id": a smaller id can commit later, and
live delivery may have dropped it), so the guarantee above is unchanged; a
named id that is not in the conversation simply matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatmesh.clock import Clock
from chatmesh.errors import InvalidArgument
from msgsvc.access import Access
from msgsvc.history import page_size_within
from msgsvc.model import SyncPage, SyncSummary
from msgsvc.storage.directory import Directory
from msgsvc.storage.messages import MessageStore, bucket_at, bucket_of
from msgsvc.summaries import Summarizer
from msgsvc.tokens import parse_sync_cursor, parse_sync_page_token, sync_cursor, sync_page_token
from msgsvc.visibility import newest_possible_id, sync_floor

MAX_SYNC_CONVERSATIONS = 1000
SYNC_PAGE_SIZE = 50
# Held ids one page request may name. A device reconnecting every few seconds
# holds what arrived in the re-read window (30 s plus the time since its last
# sync): a few hundred covers a busy conversation, and a page then reads at
# most 50 + 256 + 1 rows. 256 packed ids are 2.3 KB binary, ~7 KB in JSON,
# well inside the 64 KiB frame limit.
MAX_HELD_IDS = 256


class SyncReader:
    def __init__(
        self,
        *,
        access: Access,
        directory: Directory,
        messages: MessageStore,
        summarizer: Summarizer,
        clock: Clock,
        max_conversations: int = MAX_SYNC_CONVERSATIONS,
    ) -> None:
        self._max_conversations = max_conversations
        self._access = access
        self._directory = directory
        self._messages = messages
        self._summarizer = summarizer
        self._clock = clock

    async def summary(self, user_id: str, cursor: str) -> SyncSummary:
        now = self._clock.now_ms()
        floor = self._floor(cursor, now)
        # Taken before reading: anything committed after this instant is at
        # or above the next floor and will be read again next time.
        next_floor = max(floor, sync_floor(now))
        limit = self._max_conversations
        changed = await self._directory.memberships_since(user_id, floor, limit + 1)
        gap = len(changed) > limit
        views = await self._summarizer.views(changed[:limit])
        return SyncSummary(
            tuple(views), next_cursor=sync_cursor(next_floor), gap=gap, floor_id=floor
        )

    async def page(
        self,
        user_id: str,
        conversation_id: str,
        *,
        cursor: str,
        page_token: str,
        page_size: int,
        held_ids: Iterable[int] = (),
    ) -> SyncPage:
        """The next page of messages at or above the cursor's floor, in id
        order, leaving out ``held_ids`` (at most ``MAX_HELD_IDS``)."""
        limit = page_size_within(page_size, SYNC_PAGE_SIZE, SYNC_PAGE_SIZE)
        held_named = frozenset(held_ids)
        if len(held_named) > MAX_HELD_IDS:
            raise InvalidArgument(
                "TOO_MANY_HELD_IDS", f"name at most {MAX_HELD_IDS} held message ids"
            )
        now = self._clock.now_ms()
        floor = self._floor(cursor, now)
        resume_after = parse_sync_page_token(page_token)
        if resume_after is not None and resume_after < floor:
            raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token does not belong to this cursor")
        conversation = await self._access.member_conversation(user_id, conversation_id)
        member = conversation.member(user_id)
        after_id = resume_after if resume_after is not None else max(floor - 1, 0)
        if member is not None:
            # A group member reads from the message that added them on.
            after_id = max(after_id, member.joined_id - 1)
        first_bucket = max(bucket_at(conversation.created_at_ms), bucket_of(after_id))
        last_bucket = bucket_of(newest_possible_id(now))
        held = {i for i in held_named if i > after_id}
        # At most len(held) of the rows read are left out, so reading that many
        # more than a page plus one still tells whether a row is left after the
        # page: the page is full whenever rows remain, never empty with a token.
        found = await self._messages.after(
            conversation_id,
            after_id=after_id,
            limit=limit + len(held) + 1,
            buckets=range(first_bucket, last_bucket + 1),
        )
        missing = [m for m in found if m.message_id not in held]
        page = tuple(missing[:limit])
        more = len(missing) > limit
        return SyncPage(
            page,
            next_page_token=sync_page_token(page[-1].message_id) if more else "",
            held_left_out=len(found) - len(missing),
        )

    def _floor(self, cursor: str, now_ms: int) -> int:
        floor = parse_sync_cursor(cursor)
        if floor > newest_possible_id(now_ms):
            raise InvalidArgument("INVALID_CURSOR", "cursor is from the future")
        return floor
