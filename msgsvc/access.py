"""Who may act on a conversation: its members, and nobody else.

A non-member gets the same answer as for a conversation that does not exist,
so conversation ids cannot be probed for existence.
"""

from __future__ import annotations

from chatmesh.errors import InvalidArgument, NotFound
from msgsvc.storage.directory import Conversation, Directory

MAX_CONVERSATION_ID_CHARS = 128


class Access:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    async def member_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        if not conversation_id:
            raise InvalidArgument("MISSING_CONVERSATION_ID", "conversation_id is required")
        if len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        conversation = await self._directory.conversation(conversation_id)
        if conversation is None or user_id not in conversation.member_ids:
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        return conversation
