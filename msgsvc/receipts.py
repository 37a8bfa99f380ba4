"""Delivered and read receipts as per-member watermarks.

A device reports "delivered up to id" or "read up to id" in a conversation.
The member's watermark only moves forward: an old, repeated or out-of-order
report is answered with the current state and changes nothing. Read implies
delivered. The reported id must be a stored message of that conversation,
so a watermark never points past what exists.

When a watermark moves in a 1:1 conversation, every device of both members
hears of it except the reporting device: the author's devices turn their
ticks double or blue, and the reader's other devices clear their unread
badge. In a group only the reader's other devices hear of it; senders get
counts (msgsvc.group_receipts).
"""

from __future__ import annotations

from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.v1 import common_pb2
from msgsvc.access import Access
from msgsvc.model import ReceiptOutcome
from msgsvc.storage.directory import DIRECT, GROUP, Directory
from msgsvc.storage.messages import MessageStore

_KINDS = frozenset({common_pb2.RECEIPT_KIND_DELIVERED, common_pb2.RECEIPT_KIND_READ})
_MAX_ID = (1 << 63) - 1


class ReceiptTracker:
    def __init__(self, access: Access, directory: Directory, messages: MessageStore) -> None:
        self._access = access
        self._directory = directory
        self._messages = messages

    async def mark(
        self, user_id: str, conversation_id: str, kind: int, message_id: int
    ) -> ReceiptOutcome:
        if kind not in _KINDS:
            raise InvalidArgument("UNKNOWN_RECEIPT_KIND", "kind must be DELIVERED or READ")
        if not 0 < message_id <= _MAX_ID:
            raise InvalidArgument("INVALID_MESSAGE_ID", "message_id must be a stored message id")
        conversation = await self._access.member_conversation(user_id, conversation_id)
        if not await _exists(self._messages, conversation_id, message_id):
            raise NotFound("MESSAGE_NOT_FOUND", "no such message in this conversation")
        read_to = message_id if kind == common_pb2.RECEIPT_KIND_READ else 0
        moved = await self._directory.advance(
            conversation_id, user_id, delivered_to=message_id, read_to=read_to
        )
        if moved is None:  # removed from the conversation meanwhile
            raise NotFound("CONVERSATION_NOT_FOUND", "no such conversation")
        state, advanced = moved
        if conversation.kind == DIRECT:
            return ReceiptOutcome(state, advanced, conversation.member_ids)
        # Groups count receipts for senders; channels keep them to the reader.
        return ReceiptOutcome(
            state, advanced, (user_id,), group=True, counted=conversation.kind == GROUP
        )


async def _exists(messages: MessageStore, conversation_id: str, message_id: int) -> bool:
    """Whether the row exists, a miss confirmed by every replica: a device
    may hold a message whose first write failed after reaching one replica
    and was routed from there (the sender's retry writes it everywhere), so
    a quorum read that happens to consult the others is not an answer."""
    if await messages.get(conversation_id, message_id) is not None:
        return True
    return await messages.get(conversation_id, message_id, every_replica=True) is not None
