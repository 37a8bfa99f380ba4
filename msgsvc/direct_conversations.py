"""Direct conversations, remembered once read.

Every 1:1 send reads its conversation, to authorise the sender and to learn
whom to route to. A direct conversation's id is derived from its two members
and its members never change, so what a send needs of it holds for the life
of the process: remembered, it costs PostgreSQL one query per pair instead
of one per message. Its activity mark (``last_message_id``) changes with
every message and is not kept.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

from msgsvc.storage.directory import DIRECT, Conversation

MAX_REMEMBERED = 50_000


class DirectConversations:
    def __init__(self, max_entries: int = MAX_REMEMBERED) -> None:
        self._max_entries = max_entries
        self._known: OrderedDict[str, Conversation] = OrderedDict()

    def get(self, conversation_id: str) -> Conversation | None:
        conversation = self._known.get(conversation_id)
        if conversation is not None:
            self._known.move_to_end(conversation_id)
        return conversation

    def remember(self, conversation: Conversation) -> None:
        if conversation.kind != DIRECT:
            return
        self._known[conversation.conversation_id] = dataclasses.replace(
            conversation, last_message_id=0
        )
        self._known.move_to_end(conversation.conversation_id)
        while len(self._known) > self._max_entries:
            self._known.popitem(last=False)
