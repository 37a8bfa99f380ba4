"""Every line the terminal client prints: readable text from protobuf values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatmesh.chat import render
from chatmesh.chat.render import Tick
from chatmesh.v1 import common_pb2

NOW = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def text(sender: str, body: str, at_ms: int = NOW_MS, message_id: int = 1) -> common_pb2.Message:
    return common_pb2.Message(
        message_id=message_id,
        conversation_id="dabc",
        sender_user_id=sender,
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=body.encode(),
        created_at_ms=at_ms,
    )


def test_times_are_short_today_and_dated_otherwise() -> None:
    assert render.clock(ms(2026, 11, 30, 9, 5), NOW_MS, UTC) == "09:05"
    assert render.clock(ms(2026, 3, 3, 14, 5), NOW_MS, UTC) == "Mar 3 14:05"
    assert render.clock(ms(2025, 12, 31, 23, 59), NOW_MS, UTC) == "Dec 31 2025 23:59"


def test_message_lines_name_the_sender_and_show_own_ticks() -> None:
    bob_said = text("bob", "hello\nthere", ms(2026, 11, 30, 14, 5))
    assert render.message_line(bob_said, "alice", NOW_MS, tz=UTC) == "14:05 bob: hello there"
    mine = text("alice", "hi", ms(2026, 11, 30, 14, 6))
    assert render.message_line(mine, "alice", NOW_MS, Tick.SENT, UTC) == "14:06 you: hi  ✓"
    assert render.message_line(mine, "alice", NOW_MS, Tick.DELIVERED, UTC).endswith("hi  ✓✓")
    assert render.message_line(mine, "alice", NOW_MS, Tick.READ, UTC).endswith("✓✓ read")


@pytest.mark.parametrize(
    ("kind", "media", "label"),
    [
        (
            common_pb2.MESSAGE_KIND_IMAGE,
            common_pb2.MediaAttachment(width=640, height=480, size_bytes=23_400),
            "[image 640×480, 23 KB]",  # noqa: RUF001
        ),
        (
            common_pb2.MESSAGE_KIND_VOICE,
            common_pb2.MediaAttachment(duration_ms=7_400, size_bytes=12_000),
            "[voice note 0:07, 12 KB]",
        ),
        (
            common_pb2.MESSAGE_KIND_VIDEO,
            common_pb2.MediaAttachment(duration_ms=75_000, size_bytes=4_200_000),
            "[video 1:15, 4.2 MB]",
        ),
        (
            common_pb2.MESSAGE_KIND_DOCUMENT,
            common_pb2.MediaAttachment(file_name="a.pdf", size_bytes=900),
            "[document a.pdf, 900 B]",
        ),
    ],
)
def test_media_shows_kind_shape_and_size(
    kind: int, media: common_pb2.MediaAttachment, label: str
) -> None:
    message = common_pb2.Message(sender_user_id="bob", kind=kind, media=media)  # type: ignore[arg-type]
    assert render.body_text(message, "alice") == label
    message.body = b"look"
    assert render.body_text(message, "alice") == f"{label} look"


def test_group_changes_read_as_sentences() -> None:
    created = common_pb2.Message(
        kind=common_pb2.MESSAGE_KIND_SYSTEM,
        created_at_ms=ms(2026, 11, 30, 8, 0),
        system=common_pb2.SystemEvent(
            actor_user_id="bob",
            group_created=common_pb2.GroupCreated(title="Trip", member_user_ids=["alice", "carol"]),
        ),
    )
    assert render.message_line(created, "alice", NOW_MS, tz=UTC) == (
        '08:00 · bob created "Trip" with you and carol'
    )
    removed = common_pb2.SystemEvent(
        actor_user_id="alice", member_removed=common_pb2.MemberRemoved(user_id="carol")
    )
    assert render.system_text(removed, "alice") == "you removed carol"


def test_list_lines_show_name_unread_and_preview() -> None:
    last = text("bob", "see you at the station by the big clock, ok?", ms(2026, 11, 30, 14, 5))
    line = render.list_line(2, "bob", 3, last, "alice", NOW_MS, UTC)
    assert line == " 2. bob (3 unread) — 14:05 bob: see you at the station by the big…"
    assert render.list_line(1, "Trip", 0, None, "alice", NOW_MS, UTC) == " 1. Trip"


def test_conversation_names_are_titles_or_the_other_user() -> None:
    direct = common_pb2.CONVERSATION_KIND_DIRECT
    assert render.conversation_name(direct, "", ["alice", "bob"], "d1", "alice") == "bob"
    group = common_pb2.CONVERSATION_KIND_GROUP
    assert render.conversation_name(group, "Trip", ["alice", "bob"], "g1", "alice") == "Trip"


def test_notices_and_tick_lines() -> None:
    hello = text("bob", "hello")
    assert render.notice_line("bob", hello, 2, "alice") == "[bob] bob: hello (2 unread)"
    assert render.tick_line(Tick.READ, "bob", hello, "alice") == '✓✓ read by bob: "hello"'
    assert render.tick_line(Tick.DELIVERED, "2 of 3", hello, "alice") == (
        '✓✓ delivered to 2 of 3: "hello"'
    )


@pytest.mark.parametrize(
    ("delivered", "read", "tick", "by"),
    [
        (0, 0, Tick.SENT, ""),
        (1, 0, Tick.DELIVERED, "1 of 3"),
        (3, 0, Tick.DELIVERED, "3 of 3"),
        (3, 2, Tick.READ, "2 of 3"),
        (3, 3, Tick.READ, "3 of 3"),
    ],
)
def test_group_ticks_come_from_receipt_counts(
    delivered: int, read: int, tick: Tick, by: str
) -> None:
    counts = common_pb2.ReceiptCounts(message_id=1, recipients=3, delivered=delivered, read=read)
    assert render.counts_tick(counts) == (tick, by)


def test_presence_says_online_or_when_last_seen() -> None:
    online = common_pb2.Presence(user_id="bob", status=common_pb2.PRESENCE_STATUS_ONLINE)
    assert render.presence_line(online, NOW_MS) == "bob: online"
    seen = common_pb2.Presence(
        user_id="bob", status=common_pb2.PRESENCE_STATUS_OFFLINE, last_seen_ms=NOW_MS - 5 * 60_000
    )
    assert render.presence_line(seen, NOW_MS) == "bob: last seen 5 min ago"
    never = common_pb2.Presence(user_id="bob", status=common_pb2.PRESENCE_STATUS_OFFLINE)
    assert render.presence_line(never, NOW_MS) == "bob: offline"


def test_typing_text() -> None:
    assert render.typing_text([]) == ""
    assert render.typing_text(["bob"]) == "bob is typing…"
    assert render.typing_text(["carol", "bob"]) == "bob and carol are typing…"
    assert render.typing_text(["a", "b", "c", "d"]) == "4 people are typing…"
