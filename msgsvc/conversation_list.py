"""A member's conversations, newest activity first, a page at a time.

Pages are keyed by (last_message_id, conversation_id). A conversation that
gets a new message while the list is being paged moves to the front and may
be missed by the pages still to come; a client shows it anyway from the live
delivery that moved it, and sync covers it for a device that was away.
"""

from __future__ import annotations

from msgsvc.history import page_size_within
from msgsvc.model import ConversationPage
from msgsvc.storage.directory import ActivityKey, Directory
from msgsvc.summaries import Summarizer
from msgsvc.tokens import list_page_token, parse_list_page_token

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class ConversationLister:
    def __init__(self, directory: Directory, summarizer: Summarizer) -> None:
        self._directory = directory
        self._summarizer = summarizer

    async def page(self, user_id: str, *, page_size: int, page_token: str) -> ConversationPage:
        limit = page_size_within(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = parse_list_page_token(page_token)
        found = await self._directory.memberships_page(user_id, after, limit + 1)
        page = found[:limit]
        token = ""
        if len(found) > limit:
            last = page[-1]
            token = list_page_token(ActivityKey(last.last_message_id, last.conversation_id))
        return ConversationPage(tuple(await self._summarizer.views(page)), next_page_token=token)
