"""Conversation and user identifiers."""

from __future__ import annotations

import base64
import hashlib
import re

# Opaque, URL- and key-safe; long enough for UUIDs and handles alike.
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
DIRECT_PREFIX = "d"
GROUP_PREFIX = "g"
_DIRECT_DIGEST_BYTES = 20  # 160 bits: collisions are not a practical concern.


def is_valid_user_id(user_id: str) -> bool:
    return bool(USER_ID_PATTERN.fullmatch(user_id))  # fullmatch: '$' would admit a final newline


def direct_conversation_id(user_a: str, user_b: str) -> str:
    """The 1:1 conversation of two users: the same whichever of them asks.

    Derived from the sorted pair, so no lookup is needed to find it and two
    first messages sent at once land in the same conversation. A NUL separator
    keeps ("ab", "c") and ("a", "bc") apart.
    """
    first, second = sorted((user_a, user_b))
    digest = hashlib.sha256(f"direct\0{first}\0{second}".encode()).digest()
    encoded = base64.b32encode(digest[:_DIRECT_DIGEST_BYTES]).decode().lower()
    return DIRECT_PREFIX + encoded


def is_direct(conversation_id: str) -> bool:
    return conversation_id.startswith(DIRECT_PREFIX)


def group_conversation_id(creator: str, device_id: str, client_group_id: str) -> str:
    """A group's id, derived from who created it and their idempotency key,
    so a retried creation names the group the first attempt created."""
    digest = hashlib.sha256(f"group\0{creator}\0{device_id}\0{client_group_id}".encode()).digest()
    return GROUP_PREFIX + base64.b32encode(digest[:_DIRECT_DIGEST_BYTES]).decode().lower()
