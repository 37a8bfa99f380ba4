"""Every line the terminal client prints, as pure functions of protobuf
values and the time now: readable text, never JSON.

Times are shown in the local time zone of ``tz`` (the terminal's unless a
test fixes it).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, tzinfo

from chatmesh.v1 import common_pb2

PREVIEW_CHARS = 40  # a list line stays on one line of an 80-column terminal
NOTICE_CHARS = 60  # a notice has no time or number before it
_KIND_NAMES: dict[int, str] = {
    common_pb2.MESSAGE_KIND_IMAGE: "image",
    common_pb2.MESSAGE_KIND_VIDEO: "video",
    common_pb2.MESSAGE_KIND_VOICE: "voice note",
    common_pb2.MESSAGE_KIND_DOCUMENT: "document",
}


class Tick(enum.IntEnum):
    """How far one of the user's own messages got; only ever moves up."""

    SENDING = 0
    SENT = 1  # acked: stored by the server
    DELIVERED = 2  # on every recipient's device (1:1: the other user's)
    READ = 3

    @property
    def mark(self) -> str:
        return ("…", "✓", "✓✓", "✓✓ read")[self]


def clock(ms: int, now_ms: int, tz: tzinfo | None = None) -> str:
    """``14:05`` today, ``Mar 3 14:05`` another day of this year, else with the year."""
    when = datetime.fromtimestamp(ms / 1000, tz)
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if when.year == now.year:
        return f"{when.strftime('%b')} {when.day} {when.strftime('%H:%M')}"
    return f"{when.strftime('%b')} {when.day} {when.year} {when.strftime('%H:%M')}"


def size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1000**2:
        return f"{round(n / 1000)} KB"
    if n < 1000**3:
        return f"{n / 1000**2:.1f} MB"
    return f"{n / 1000**3:.1f} GB"


def duration(ms: int) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def media_label(kind: int, media: common_pb2.MediaAttachment) -> str:
    """``[KIND WIDTH×HEIGHT or LENGTH or NAME, SIZE]``, e.g. ``[voice note 0:07, 12 KB]``."""  # noqa: RUF002
    parts = [_KIND_NAMES.get(kind, "file")]
    if media.width and media.height:
        parts.append(f"{media.width}×{media.height}")  # noqa: RUF001 (a multiplication sign)
    if media.duration_ms:
        parts.append(duration(media.duration_ms))
    if media.file_name:
        parts.append(media.file_name)
    return f"[{' '.join(parts)}, {size(media.size_bytes)}]"


def _names(user_ids: Sequence[str], me: str) -> str:
    names = ["you" if u == me else u for u in user_ids]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def system_text(event: common_pb2.SystemEvent, me: str) -> str:
    actor = "you" if event.actor_user_id == me else event.actor_user_id or "someone"
    which = event.WhichOneof("event")
    if which == "group_created":
        created = event.group_created
        members = [u for u in created.member_user_ids if u != event.actor_user_id]
        return f'{actor} created "{created.title}" with {_names(members, me)}'
    if which == "members_added":
        return f"{actor} added {_names(event.members_added.user_ids, me)}"
    if which == "member_removed":
        return f"{actor} removed {_names([event.member_removed.user_id], me)}"
    if which == "member_left":
        return f"{actor} left"
    if which == "title_changed":
        return f'{actor} renamed the group "{event.title_changed.title}"'
    if which == "role_changed":
        changed = event.role_changed
        role = "an admin" if changed.role == common_pb2.MEMBER_ROLE_ADMIN else "a member"
        return f"{actor} made {_names([changed.user_id], me)} {role}"
    return f"{actor} changed the group"


def body_text(message: common_pb2.Message, me: str) -> str:
    """What a message says, in one line: its text, its media, or its group change."""
    if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
        return system_text(message.system, me)
    text = " ".join(message.body.decode("utf-8", "replace").splitlines())
    if message.HasField("media"):
        label = media_label(message.kind, message.media)
        return f"{label} {text}" if text else label
    return text


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def message_line(
    message: common_pb2.Message,
    me: str,
    now_ms: int,
    tick: Tick | None = None,
    tz: tzinfo | None = None,
) -> str:
    """``14:05 bob: hello``; a group change ``14:05 · bob added carol``; own
    messages as ``you`` with their tick."""
    when = clock(message.created_at_ms, now_ms, tz) if message.created_at_ms else "--:--"
    if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
        return f"{when} · {body_text(message, me)}"
    who = "you" if message.sender_user_id == me else message.sender_user_id
    line = f"{when} {who}: {body_text(message, me)}"
    return f"{line}  {tick.mark}" if tick is not None else line


def conversation_name(
    kind: int, title: str, member_user_ids: Sequence[str], conversation_id: str, me: str
) -> str:
    """A group's title; a 1:1's other user."""
    if title:
        return title
    others = [u for u in member_user_ids if u != me]
    if others:
        return ", ".join(others)
    return conversation_id if kind != common_pb2.CONVERSATION_KIND_DIRECT else me


def list_line(
    number: int,
    name: str,
    unread: int,
    last: common_pb2.Message | None,
    me: str,
    now_ms: int,
    tz: tzinfo | None = None,
) -> str:
    """``2. bob (3 unread) — 14:05 bob: see you there``."""
    head = f"{number:>2}. {name}" + (f" ({unread} unread)" if unread else "")
    if last is None or not last.message_id:
        return head
    who = "you" if last.sender_user_id == me else last.sender_user_id
    said = body_text(last, me)
    if last.kind != common_pb2.MESSAGE_KIND_SYSTEM:
        said = f"{who}: {said}"
    return f"{head} — {clock(last.created_at_ms, now_ms, tz)} {preview(said)}"


def notice_line(name: str, message: common_pb2.Message, unread: int, me: str) -> str:
    """A message outside the open conversation: ``[bob] bob: hi (2 unread)``."""
    said = body_text(message, me)
    if message.kind != common_pb2.MESSAGE_KIND_SYSTEM:
        said = f"{message.sender_user_id}: {said}"
    suffix = f" ({unread} unread)" if unread else ""
    return f"[{name}] {preview(said, NOTICE_CHARS)}{suffix}"


def tick_line(tick: Tick, by: str, message: common_pb2.Message, me: str) -> str:
    """``✓✓ read by bob: "hello"``; ``by`` is a user or ``2 of 3``."""
    quoted = f'"{preview(body_text(message, me), 30)}"'
    if tick is Tick.READ:
        return f"✓✓ read by {by}: {quoted}"
    if tick is Tick.DELIVERED:
        return f"✓✓ delivered to {by}: {quoted}"
    return f"✓ sent: {quoted}"


def counts_tick(counts: common_pb2.ReceiptCounts) -> tuple[Tick, str]:
    """A group message's tick from its receipt counts, and how many of its
    recipients it names (``2 of 3``)."""
    if counts.read:
        return Tick.READ, f"{counts.read} of {counts.recipients}"
    if counts.delivered:
        return Tick.DELIVERED, f"{counts.delivered} of {counts.recipients}"
    return Tick.SENT, ""


def presence_line(presence: common_pb2.Presence, now_ms: int, tz: tzinfo | None = None) -> str:
    """``bob: online``, ``bob: last seen 5 min ago``, ``bob: offline``."""
    if presence.status == common_pb2.PRESENCE_STATUS_ONLINE:
        return f"{presence.user_id}: online"
    if not presence.last_seen_ms:
        return f"{presence.user_id}: offline"
    return f"{presence.user_id}: last seen {ago(presence.last_seen_ms, now_ms, tz)}"


def ago(ms: int, now_ms: int, tz: tzinfo | None = None) -> str:
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 24 * 3600:
        return f"{seconds // 3600} h ago"
    return f"on {clock(ms, now_ms, tz)}"


def typing_text(user_ids: Sequence[str]) -> str:
    """``bob is typing…``; ``bob and carol are typing…``; ``4 people are typing…``."""
    names = sorted(user_ids)
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing…"
    if len(names) <= 3:
        return f"{', '.join(names[:-1])} and {names[-1]} are typing…"
    return f"{len(names)} people are typing…"
