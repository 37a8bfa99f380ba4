"""What the terminal client knows: unread counts, list order, ticks."""

from __future__ import annotations

from chatmesh.chat.model import Conversations, Ticks
from chatmesh.chat.render import Tick
from chatmesh.conversation import direct_conversation_id
from chatmesh.v1 import common_pb2

DM = direct_conversation_id("alice", "bob")


def message(sender: str, message_id: int, conversation_id: str = DM) -> common_pb2.Message:
    return common_pb2.Message(
        message_id=message_id,
        conversation_id=conversation_id,
        sender_user_id=sender,
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=f"m{message_id}".encode(),
    )


def test_unread_counts_only_others_messages_outside_the_open_conversation() -> None:
    conversations = Conversations("alice")
    conversations.on_message(message("bob", 1), open_id=None)
    conversations.on_message(message("alice", 2), open_id=None)
    assert conversations.direct("bob").unread == 1
    conversations.on_message(message("bob", 3), open_id=DM)
    assert conversations.direct("bob").unread == 1
    assert conversations.direct("bob").peer("alice") == "bob"


def test_the_list_is_newest_first_and_found_by_number_title_or_id() -> None:
    conversations = Conversations("alice")
    conversations.apply_summary(
        common_pb2.ConversationSummary(
            conversation_id="g1",
            kind=common_pb2.CONVERSATION_KIND_GROUP,
            title="Trip",
            member_user_ids=["alice", "bob", "carol"],
            last_message=message("carol", 5, "g1"),
            unread_count=2,
        )
    )
    conversations.on_message(message("bob", 9), open_id=None)
    ordered = [c.conversation_id for c in conversations.ordered()]
    assert ordered == [DM, "g1"]
    assert conversations.find("2", ordered) is conversations.get("g1")
    assert conversations.find("trip", ordered) is conversations.get("g1")
    assert conversations.find(DM, ordered) is conversations.get(DM)
    assert conversations.find("7", ordered) is None


def test_one_to_one_ticks_rise_with_the_peers_watermark_once() -> None:
    conversations = Conversations("alice")
    ticks = Ticks("alice")
    conversation = conversations.direct("bob")
    first, second = message("alice", 10), message("alice", 11)
    ticks.sent(first)
    ticks.sent(second)
    conversation.watermarks["bob"] = (11, 0)
    changes = ticks.on_watermark(conversation)
    assert [(c.message.message_id, c.tick, c.by) for c in changes] == [(11, Tick.DELIVERED, "bob")]
    conversation.watermarks["bob"] = (11, 10)
    assert [(c.message.message_id, c.tick) for c in ticks.on_watermark(conversation)] == [
        (10, Tick.READ)
    ]
    assert ticks.on_watermark(conversation) == []
    assert ticks.tick(11) is Tick.DELIVERED


def test_group_ticks_follow_receipt_counts_and_ignore_stale_ones() -> None:
    ticks = Ticks("alice")
    mine = message("alice", 20, "g1")
    ticks.sent(mine)
    counts = common_pb2.ReceiptCounts(message_id=20, recipients=2, delivered=2, read=1)
    (change,) = ticks.on_counts("g1", [counts])
    assert (change.tick, change.by) == (Tick.READ, "1 of 2")
    assert ticks.on_counts("g1", [counts]) == []
    stale = common_pb2.ReceiptCounts(message_id=20, recipients=2, delivered=1, read=0)
    assert ticks.on_counts("g1", [stale]) == []
    someone_elses = common_pb2.ReceiptCounts(message_id=21, recipients=2, delivered=2, read=2)
    assert ticks.on_counts("g1", [someone_elses]) == []


def test_login_derives_the_token_url_from_the_edge() -> None:
    from chatmesh.chat.login import token_url

    assert token_url("ws://127.0.0.1:8080/") == "http://127.0.0.1:8080/dev/token"
    assert token_url("wss://chat.example:8443/ws?x=1") == "https://chat.example:8443/dev/token"


def test_a_group_is_named_by_its_changes() -> None:
    conversations = Conversations("bob")
    created = common_pb2.Message(
        message_id=1,
        conversation_id="g9",
        kind=common_pb2.MESSAGE_KIND_SYSTEM,
        system=common_pb2.SystemEvent(
            actor_user_id="alice",
            group_created=common_pb2.GroupCreated(title="Trip", member_user_ids=["bob"]),
        ),
    )
    group = conversations.on_message(created, open_id=None)
    assert (group.name("bob"), group.member_user_ids) == ("Trip", ("alice", "bob"))
    added = common_pb2.Message(
        message_id=2,
        conversation_id="g9",
        kind=common_pb2.MESSAGE_KIND_SYSTEM,
        system=common_pb2.SystemEvent(
            actor_user_id="alice",
            members_added=common_pb2.MembersAdded(user_ids=["carol"]),
        ),
    )
    conversations.on_message(added, open_id=None)
    assert group.member_user_ids == ("alice", "bob", "carol")
