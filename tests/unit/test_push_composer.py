"""Composing notifications and their windows."""

from __future__ import annotations

from chatmesh.v1 import common_pb2
from msgsvc.model import StoredMessage
from notifysvc.composer import MAX_PREVIEW_CHARS, Missed, compose
from notifysvc.pipeline import media_preview
from notifysvc.windows import DeviceWindows


def _missed(n: int, conv: str = "c1", sender: str = "Alice", **kw: object) -> Missed:
    fields: dict[str, object] = {"group_title": None, "text": None}
    fields.update(kw)
    return Missed(conv, n, sender, **fields)  # type: ignore[arg-type]


def test_without_previews_a_notification_never_carries_text() -> None:
    (one,) = compose([_missed(1), _missed(2), _missed(3)], badge=7)
    assert (one.title, one.body, one.badge) == ("Alice", "3 new messages", 7)
    assert one.message_ids == (1, 2, 3) and one.collapse_key == "c1"
    (group,) = compose(
        [_missed(1, "g", group_title="Team"), _missed(2, "g", group_title="Team")], badge=None
    )
    assert (group.title, group.body) == ("Team", "2 new messages from Alice")
    (mixed,) = compose(
        [_missed(1, "g", group_title="Team"), _missed(2, "g", "Bob", group_title="Team")],
        badge=None,
    )
    assert mixed.body == "2 new messages"


def test_with_previews_the_latest_text_shows_bounded() -> None:
    (one,) = compose([_missed(1, text="hi"), _missed(2, text="how are\n you?")], badge=None)
    assert one.body == "how are you? (+1 more)"
    (group,) = compose([_missed(1, "g", group_title="Team", text="x" * 500)], badge=None)
    assert group.body is not None and group.body.startswith("Alice: ")
    assert len(group.body) == len("Alice: ") + MAX_PREVIEW_CHARS


def test_one_notification_per_conversation_in_first_seen_order() -> None:
    notifications = compose([_missed(1, "a"), _missed(2, "b"), _missed(3, "a")], badge=None)
    assert [(n.conversation_id, n.message_ids) for n in notifications] == [
        ("a", (1, 3)),
        ("b", (2,)),
    ]


def test_a_window_closes_a_fixed_time_after_it_opens() -> None:
    windows: DeviceWindows[str, int] = DeviceWindows(window_s=2.0)
    windows.add("phone", 1, now=10.0)
    windows.add("tablet", 2, now=10.5)
    windows.add("phone", 3, now=11.9)  # joins the open window
    assert windows.next_close() == 12.0
    assert windows.due(11.99) == []
    assert windows.due(12.0) == [("phone", [1, 3])]
    windows.add("phone", 4, now=12.1)  # a new window
    assert windows.cancel("tablet") == [2]
    assert windows.due(20.0) == [("phone", [4])]
    assert len(windows) == 0 and windows.next_close() is None


def test_media_is_previewed_by_what_it_is_and_its_caption_never_its_bytes() -> None:
    def row(kind: int, caption: bytes) -> StoredMessage:
        return StoredMessage(1, "c", "u", "d", "m", kind, caption, 0, media=b"\x0a\x02id")

    assert media_preview(row(common_pb2.MESSAGE_KIND_IMAGE, b"")) == "📷 Photo"
    assert media_preview(row(common_pb2.MESSAGE_KIND_VOICE, b"  ")) == "🎤 Voice message"
    document = row(common_pb2.MESSAGE_KIND_DOCUMENT, b"Q3 plan")
    assert media_preview(document) == "📄 Document: Q3 plan"
    assert media_preview(row(common_pb2.MESSAGE_KIND_TEXT, b"hi")) == "hi"
