from __future__ import annotations

from msgsvc.direct_conversations import DirectConversations
from msgsvc.storage.directory import DIRECT, GROUP, Conversation


def _conversation(conversation_id: str, kind: int = DIRECT) -> Conversation:
    return Conversation(
        conversation_id=conversation_id,
        kind=kind,
        created_at_ms=1,
        member_ids=("ann", "bob"),
        last_message_id=42,
    )


def test_remembers_direct_conversations_without_their_activity_mark() -> None:
    known = DirectConversations()
    known.remember(_conversation("d1"))
    remembered = known.get("d1")
    assert remembered is not None
    assert remembered.member_ids == ("ann", "bob") and remembered.last_message_id == 0


def test_never_remembers_a_conversation_whose_members_can_change() -> None:
    known = DirectConversations()
    known.remember(_conversation("g1", kind=GROUP))
    assert known.get("g1") is None


def test_forgets_the_least_recently_used_beyond_its_bound() -> None:
    known = DirectConversations(max_entries=2)
    for conversation_id in ("d1", "d2"):
        known.remember(_conversation(conversation_id))
    assert known.get("d1") is not None  # d2 is now the least recently used
    known.remember(_conversation("d3"))
    assert known.get("d2") is None
    assert known.get("d1") is not None and known.get("d3") is not None
