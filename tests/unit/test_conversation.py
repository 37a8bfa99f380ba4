from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatmesh.conversation import direct_conversation_id, is_direct, is_valid_user_id

user_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)


@given(user_ids, user_ids)
def test_direct_id_is_the_same_whoever_asks(a: str, b: str) -> None:
    assert direct_conversation_id(a, b) == direct_conversation_id(b, a)
    assert is_direct(direct_conversation_id(a, b))


@given(user_ids, user_ids, user_ids)
def test_direct_ids_of_different_pairs_differ(a: str, b: str, c: str) -> None:
    if {a, b} != {a, c}:
        assert direct_conversation_id(a, b) != direct_conversation_id(a, c)


def test_separator_keeps_concatenations_apart() -> None:
    assert direct_conversation_id("ab", "c") != direct_conversation_id("a", "bc")


def test_direct_id_is_stable_across_releases() -> None:
    # Stored rows are keyed by this value: it must never change.
    assert direct_conversation_id("alice", "bob") == direct_conversation_id("bob", "alice")
    assert direct_conversation_id("alice", "bob") == "d" + _expected_alice_bob()


def _expected_alice_bob() -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(b"direct\0alice\0bob").digest()[:20]
    return base64.b32encode(digest).decode().lower()


def test_user_id_validation() -> None:
    assert is_valid_user_id("alice")
    assert is_valid_user_id("3f2b9c1e-aaaa-4bbb-8ccc-0123456789ab")
    assert not is_valid_user_id("")
    assert not is_valid_user_id("-alice")
    assert not is_valid_user_id("a" * 65)
    assert not is_valid_user_id("al ice")
    assert not is_valid_user_id("alice\0")
