"""Reading a conversation's history, newest first, one page at a time."""

from __future__ import annotations

from chatmesh.clock import Clock
from chatmesh.errors import InvalidArgument
from msgsvc.access import Access
from msgsvc.model import HistoryPage
from msgsvc.storage.messages import MessageStore, bucket_at, bucket_of
from msgsvc.tokens import history_page_token, parse_history_page_token
from msgsvc.visibility import newest_possible_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class HistoryReader:
    def __init__(self, access: Access, messages: MessageStore, clock: Clock) -> None:
        self._access = access
        self._messages = messages
        self._clock = clock

    async def page(
        self, requester_user_id: str, conversation_id: str, *, page_token: str, page_size: int
    ) -> HistoryPage:
        limit = page_size_within(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        before_id = parse_history_page_token(page_token)
        conversation = await self._access.member_conversation(requester_user_id, conversation_id)
        member = conversation.member(requester_user_id)
        # A group member reads from the message that added them on.
        joined = member.joined_id if member is not None else 0
        if before_id == 0:
            before_id = newest_possible_id(self._clock.now_ms())
        found = await self._messages.page(
            conversation_id,
            before_id=before_id,
            limit=limit + 1,
            oldest_bucket=max(bucket_at(conversation.created_at_ms), bucket_of(joined)),
        )
        found = [m for m in found if m.message_id >= joined]
        more = len(found) > limit
        page = tuple(found[:limit])
        token = history_page_token(page[-1].message_id) if more and page else ""
        return HistoryPage(page, next_page_token=token)


def page_size_within(page_size: int, default: int, maximum: int) -> int:
    """A requested page size checked against its documented range."""
    if page_size < 0 or page_size > maximum:
        raise InvalidArgument("INVALID_PAGE_SIZE", f"page_size must be 0..{maximum}")
    return page_size or default
