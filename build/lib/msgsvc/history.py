"""Reading a conversation's history, newest first, one page at a time."""

from __future__ import annotations

from chatmesh import snowflake
from chatmesh.clock import Clock
from chatmesh.errors import InvalidArgument, NotFound
from msgsvc.model import HistoryPage
from msgsvc.storage.directory import Directory
from msgsvc.storage.messages import MessageStore, bucket_at

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class HistoryReader:
    def __init__(self, directory: Directory, messages: MessageStore, clock: Clock) -> None:
        self._directory = directory
        self._messages = messages
        self._clock = clock

    async def page(
        self, requester_user_id: str, conversation_id: str, *, before_id: int, page_size: int
    ) -> HistoryPage:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("INVALID_PAGE_SIZE", f"page_size must be 0..{MAX_PAGE_SIZE}")
        limit = page_size or DEFAULT_PAGE_SIZE
        conversation = await self._directory.conversation(conversation_id)
        if conversation is None or requester_user_id not in conversation.member_ids:
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        if before_id == 0:
            # Ids may run ahead of the wall clock by the generator's lag bound.
            before_id = snowflake.lowest_id_at(
                self._clock.now_ms() + snowflake.DEFAULT_MAX_LAG_MS + 1
            )
        found = await self._messages.page(
            conversation_id,
            before_id=before_id,
            limit=limit + 1,
            oldest_bucket=bucket_at(conversation.created_at_ms),
        )
        more = len(found) > limit
        page = tuple(found[:limit])
        return HistoryPage(page, next_before_id=page[-1].message_id if more and page else 0)


def parse_page_token(token: str) -> int:
    if not token:
        return 0
    try:
        before_id = int(token)
    except ValueError as exc:
        raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one we issued") from exc
    if before_id <= 0:
        raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one we issued")
    return before_id
