"""Receipts in groups: counts from the members' watermarks, pushed to the senders.

Every member has delivered and read watermarks per conversation, as in 1:1
(msgsvc.receipts). In a group a message's counts are how many of its
recipients' watermarks reach it; its recipients are the members whose window
holds it (they were members when it was sent and still are), its sender
excepted.

Telling all 500 members' devices of every member's every watermark move would
cost 500 frames a receipt. Instead each msgsvc instance notes the groups
whose watermarks moved and, every ``FLUSH_INTERVAL_S``, counts each such
group's newest messages (up to ``COUNTED_MESSAGES``) and sends every sender
the counts of their own messages: one frame per sender and group, however
many members reported. Older messages' counts, and who exactly has a
message, are read on request (``details``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.access import Access
from msgsvc.model import StoredMessage
from msgsvc.routing import Router
from msgsvc.storage.directory import GROUP, Conversation, Directory, MemberState
from msgsvc.storage.messages import MessageStore, bucket_at

COUNTED_MESSAGES = 20  # newest messages of a group whose counts are pushed
FLUSH_INTERVAL_S = 1.0  # how often counts are pushed: at most once a second per group


@dataclass(frozen=True, slots=True)
class Counts:
    message_id: int
    recipients: int
    delivered: int
    read: int

    def to_proto(self) -> common_pb2.ReceiptCounts:
        return common_pb2.ReceiptCounts(
            message_id=self.message_id,
            recipients=self.recipients,
            delivered=self.delivered,
            read=self.read,
        )


@dataclass(frozen=True, slots=True)
class MemberReceipt:
    user_id: str
    delivered: bool
    read: bool


def count(group: Conversation, states: Sequence[MemberState], message: StoredMessage) -> Counts:
    recipients = _recipients(group, states, message)
    return Counts(
        message.message_id,
        len(recipients),
        sum(1 for s in recipients if s.delivered_message_id >= message.message_id),
        sum(1 for s in recipients if s.read_message_id >= message.message_id),
    )


def _recipients(
    group: Conversation, states: Sequence[MemberState], message: StoredMessage
) -> list[MemberState]:
    readers = {
        m.user_id
        for m in group.members
        if m.current and m.sees(message.message_id) and m.user_id != message.sender_user_id
    }
    return [s for s in states if s.user_id in readers]


class GroupReceipts:
    def __init__(
        self, *, access: Access, directory: Directory, messages: MessageStore, router: Router
    ) -> None:
        self._access = access
        self._directory = directory
        self._messages = messages
        self._router = router
        self._moved: dict[str, int] = {}  # group -> highest watermark reported since the flush

    def moved(self, conversation_id: str, up_to: int) -> None:
        """Notes that a member's watermark in the group moved up to ``up_to``."""
        self._moved[conversation_id] = max(self._moved.get(conversation_id, 0), up_to)

    async def flush(self) -> int:
        """Pushes the counts of every group noted since the last flush; returns
        how many frames were sent. Best effort: a device that misses one reads
        the counts with its next sync, list or request."""
        moved, self._moved = self._moved, {}
        frames = 0
        for conversation_id, up_to in moved.items():
            frames += await self._push(conversation_id, up_to)
        return frames

    async def _push(self, conversation_id: str, up_to: int) -> int:
        group = await self._directory.conversation(conversation_id)
        if group is None or group.kind != GROUP:
            return 0
        newest = await self._messages.page(
            conversation_id,
            before_id=up_to + 1,
            limit=COUNTED_MESSAGES,
            oldest_bucket=bucket_at(group.created_at_ms),
        )
        counted = [m for m in newest if m.kind != common_pb2.MESSAGE_KIND_SYSTEM]
        if not counted:
            return 0
        states = await self._directory.member_states([conversation_id])
        by_sender: dict[str, list[Counts]] = {}
        for message in reversed(counted):  # oldest first in each frame
            by_sender.setdefault(message.sender_user_id, []).append(count(group, states, message))
        for sender, counts in by_sender.items():
            frame = client_pb2.ServerFrame(
                receipt_counts=client_pb2.ReceiptCountsFrame(
                    conversation_id=conversation_id, counts=[c.to_proto() for c in counts]
                )
            )
            await self._router.broadcast(frame, [sender], skip=("", ""))
        return len(by_sender)

    async def last_message_counts(
        self, group: Conversation, last: StoredMessage | None
    ) -> Counts | None:
        if last is None or group.kind != GROUP or last.kind == common_pb2.MESSAGE_KIND_SYSTEM:
            return None
        states = await self._directory.member_states([group.conversation_id])
        return count(group, states, last)

    async def details(
        self, user_id: str, conversation_id: str, message_id: int
    ) -> tuple[Counts, list[MemberReceipt]]:
        group = await self._access.member_conversation(user_id, conversation_id)
        if group.kind != GROUP:
            raise InvalidArgument(
                "NOT_A_GROUP",
                "receipts are counted in groups; 1:1 receipts are watermarks, channels have none",
            )
        message = await self._messages.get(conversation_id, message_id)
        member = group.member(user_id)
        if message is None or member is None or not member.sees(message_id):
            raise NotFound("MESSAGE_NOT_FOUND", "no such message in this conversation")
        states = await self._directory.member_states([conversation_id])
        recipients = _recipients(group, states, message)
        members = [
            MemberReceipt(
                s.user_id,
                s.delivered_message_id >= message_id,
                s.read_message_id >= message_id,
            )
            for s in sorted(recipients, key=lambda s: s.user_id)
        ]
        return count(group, states, message), members
