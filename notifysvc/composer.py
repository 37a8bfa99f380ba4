"""What a device is shown for the messages it missed in one window.

One notification per conversation (its collapse key, so a newer one
replaces the older on the device): "Alice" / "3 new messages" for a 1:1
chat, the group's title / "3 new messages from Alice" for a group. Message
text appears only for a device that opted into previews; names are not
message text and always appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notifysvc.providers.message import PushMessage

MAX_PREVIEW_CHARS = 160  # a lock screen shows two lines; more only costs payload bytes


@dataclass(frozen=True, slots=True)
class Missed:
    """A message a device did not receive live."""

    conversation_id: str
    message_id: int
    sender_name: str
    group_title: str | None  # None: a 1:1 conversation
    text: str | None  # None unless the device shows previews (and it is text)


def compose(missed: Sequence[Missed], *, badge: int | None) -> list[PushMessage]:
    """Notifications for ``missed`` (in arrival order), one per conversation,
    in the order each conversation was first seen."""
    by_conversation: dict[str, list[Missed]] = {}
    for item in missed:
        by_conversation.setdefault(item.conversation_id, []).append(item)
    return [_one(items, badge) for items in by_conversation.values()]


def _one(items: list[Missed], badge: int | None) -> PushMessage:
    last = items[-1]
    senders = {i.sender_name for i in items}
    count = len(items)
    if last.group_title is None:
        title = last.sender_name
        body = _preview(last) or _count(count)
    else:
        title = last.group_title
        preview = _preview(last)
        if preview is not None:
            body = f"{last.sender_name}: {preview}"
        elif len(senders) == 1:
            body = f"{_count(count)} from {last.sender_name}"
        else:
            body = _count(count)
    if count > 1 and _preview(last) is not None:
        body = f"{body} (+{count - 1} more)"
    return PushMessage(
        conversation_id=last.conversation_id,
        message_ids=tuple(i.message_id for i in items),
        title=title,
        body=body,
        badge=badge,
        collapse_key=last.conversation_id,
    )


def _preview(item: Missed) -> str | None:
    if item.text is None:
        return None
    text = " ".join(item.text.split())
    return text if len(text) <= MAX_PREVIEW_CHARS else text[: MAX_PREVIEW_CHARS - 1] + "…"


def _count(count: int) -> str:
    return "New message" if count == 1 else f"{count} new messages"
