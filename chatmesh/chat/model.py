"""What the terminal client knows: its conversations (names, unread counts,
last messages, members' watermarks) and the ticks of its user's own
messages. Pure state updated by the app from server answers and events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chatmesh.chat.render import Tick, conversation_name, counts_tick
from chatmesh.conversation import direct_conversation_id, is_direct
from chatmesh.v1 import common_pb2


@dataclass(slots=True)
class Conversation:
    conversation_id: str
    kind: int
    title: str = ""
    member_user_ids: tuple[str, ...] = ()
    unread: int = 0
    last_message: common_pb2.Message | None = None
    # user -> (delivered up to, read up to): what the other members have seen.
    watermarks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def name(self, me: str) -> str:
        return conversation_name(
            self.kind, self.title, self.member_user_ids, self.conversation_id, me
        )

    def peer(self, me: str) -> str | None:
        """The other user of a 1:1 conversation; None for a group."""
        if self.kind != common_pb2.CONVERSATION_KIND_DIRECT:
            return None
        others = [u for u in self.member_user_ids if u != me]
        return others[0] if others else None

    @property
    def newest_id(self) -> int:
        return self.last_message.message_id if self.last_message is not None else 0

    def watermark_tick(self, message_id: int, me: str) -> Tick:
        """An own message's tick from the others' watermarks: the least any of them got."""
        others = [mark for user, mark in self.watermarks.items() if user != me]
        if not others:
            return Tick.SENT
        if all(read >= message_id for _, read in others):
            return Tick.READ
        if all(max(delivered, read) >= message_id for delivered, read in others):
            return Tick.DELIVERED
        return Tick.SENT


class Conversations:
    def __init__(self, me: str) -> None:
        self.me = me
        self._by_id: dict[str, Conversation] = {}

    def get(self, conversation_id: str) -> Conversation | None:
        return self._by_id.get(conversation_id)

    def apply_summary(self, summary: common_pb2.ConversationSummary) -> Conversation:
        conversation = self._by_id.get(summary.conversation_id) or Conversation(
            summary.conversation_id, summary.kind
        )
        conversation.kind = summary.kind
        conversation.title = summary.title
        conversation.member_user_ids = tuple(summary.member_user_ids) or tuple(
            m.user_id for m in summary.members
        )
        conversation.unread = summary.unread_count
        if summary.HasField("last_message") and summary.last_message.message_id:
            conversation.last_message = summary.last_message
        for mark in summary.member_watermarks:
            conversation.watermarks[mark.user_id] = (
                mark.delivered_message_id,
                mark.read_message_id,
            )
        self._by_id[conversation.conversation_id] = conversation
        return conversation

    def apply_group(self, group: common_pb2.GroupInfo) -> Conversation:
        conversation = self._by_id.get(group.conversation_id) or Conversation(
            group.conversation_id, group.kind or common_pb2.CONVERSATION_KIND_GROUP
        )
        conversation.title = group.title
        conversation.member_user_ids = tuple(m.user_id for m in group.members)
        self._by_id[conversation.conversation_id] = conversation
        return conversation

    def direct(self, peer: str) -> Conversation:
        """The 1:1 conversation with ``peer``, known or not yet (its id is derived)."""
        conversation_id = direct_conversation_id(self.me, peer)
        conversation = self._by_id.get(conversation_id)
        if conversation is None:
            conversation = Conversation(
                conversation_id,
                common_pb2.CONVERSATION_KIND_DIRECT,
                member_user_ids=tuple(sorted({self.me, peer})),
            )
            self._by_id[conversation_id] = conversation
        return conversation

    def on_message(self, message: common_pb2.Message, open_id: str | None) -> Conversation:
        """Notes a message new to this device; counts it unread unless it is
        the user's own or its conversation is open."""
        conversation = self._by_id.get(message.conversation_id)
        if conversation is None:
            kind = (
                common_pb2.CONVERSATION_KIND_DIRECT
                if is_direct(message.conversation_id)
                else common_pb2.CONVERSATION_KIND_GROUP
            )
            direct = kind == common_pb2.CONVERSATION_KIND_DIRECT
            members = {self.me, message.sender_user_id} if direct else set()
            conversation = Conversation(
                message.conversation_id, kind, member_user_ids=tuple(sorted(members))
            )
            self._by_id[message.conversation_id] = conversation
        if message.message_id > conversation.newest_id:
            conversation.last_message = message
            if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
                _apply_change(conversation, message.system)
        if message.sender_user_id != self.me and message.conversation_id != open_id:
            conversation.unread += 1
        return conversation

    def ordered(self) -> list[Conversation]:
        """Newest activity first; conversations without messages last."""
        return sorted(self._by_id.values(), key=lambda c: c.newest_id, reverse=True)

    def find(self, target: str, listed: list[str]) -> Conversation | None:
        """``target`` as a number from the last list shown, a conversation id,
        a group title (case-insensitive) or a user's name (their 1:1)."""
        if target.isdigit():
            index = int(target) - 1
            return self._by_id.get(listed[index]) if 0 <= index < len(listed) else None
        if target in self._by_id:
            return self._by_id[target]
        for conversation in self.ordered():
            if conversation.title and conversation.title.lower() == target.lower():
                return conversation
        return None


def _apply_change(conversation: Conversation, event: common_pb2.SystemEvent) -> None:
    """A group's title and members as its newest change left them."""
    which = event.WhichOneof("event")
    members = list(conversation.member_user_ids)
    if which == "group_created":
        conversation.title = event.group_created.title
        members = [event.actor_user_id, *event.group_created.member_user_ids]
    elif which == "title_changed":
        conversation.title = event.title_changed.title
    elif which == "members_added":
        members.extend(event.members_added.user_ids)
    elif which == "member_removed":
        members = [u for u in members if u != event.member_removed.user_id]
    elif which == "member_left":
        members = [u for u in members if u != event.actor_user_id]
    conversation.member_user_ids = tuple(dict.fromkeys(members))


@dataclass(frozen=True, slots=True)
class TickChange:
    message: common_pb2.Message
    tick: Tick
    by: str  # who: a user, or "2 of 3" in a group


class Ticks:
    """The ticks of the user's own messages, raised by watermarks (1:1) and
    receipt counts (groups). Each change is reported once."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._own: dict[int, common_pb2.Message] = {}
        self._tick: dict[int, Tick] = {}
        self._by: dict[int, str] = {}

    def sent(self, message: common_pb2.Message, tick: Tick = Tick.SENT) -> None:
        self._own[message.message_id] = message
        self._tick[message.message_id] = max(tick, self._tick.get(message.message_id, tick))

    def tick(self, message_id: int) -> Tick | None:
        return self._tick.get(message_id)

    def on_watermark(self, conversation: Conversation) -> list[TickChange]:
        """After ``conversation.watermarks`` moved: the newest own message
        whose tick rose, per tick reached (one line says it for the older ones)."""
        newest: dict[Tick, common_pb2.Message] = {}
        for message in self._in(conversation.conversation_id):
            tick = conversation.watermark_tick(message.message_id, self.me)
            if tick > self._tick[message.message_id]:
                self._tick[message.message_id] = tick
                newest[tick] = message
        by = conversation.peer(self.me) or "everyone"
        return [TickChange(m, t, by) for t, m in sorted(newest.items())]

    def on_counts(
        self, conversation_id: str, counts: Iterable[common_pb2.ReceiptCounts]
    ) -> list[TickChange]:
        changes = []
        for count in sorted(counts, key=lambda c: c.message_id):
            message = self._own.get(count.message_id)
            if message is None or message.conversation_id != conversation_id:
                continue
            tick, by = counts_tick(count)
            if (tick, by) == (self._tick[count.message_id], self._by.get(count.message_id, "")):
                continue
            if tick < self._tick[count.message_id]:
                continue  # counts only grow; an older frame is stale
            self._tick[count.message_id] = tick
            self._by[count.message_id] = by
            if tick > Tick.SENT:
                changes.append(TickChange(message, tick, by))
        return changes

    def _in(self, conversation_id: str) -> list[common_pb2.Message]:
        return [m for i, m in sorted(self._own.items()) if m.conversation_id == conversation_id]
