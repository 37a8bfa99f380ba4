"""Opaque cursors and page tokens.

Each kind carries its own prefix and version so a token of one kind (or an
older format) is refused as invalid rather than misread as another. They
hold positions only: every request is authorised afresh, so a forged token
reveals nothing a valid one would not.
"""

from __future__ import annotations

from chatmesh.errors import InvalidArgument
from msgsvc.storage.directory import ActivityKey

_SYNC_CURSOR = "s1."
_SYNC_PAGE = "p1."
_HISTORY_PAGE = "h1."
_LIST_PAGE = "l1."
_MAX_ID = (1 << 63) - 1  # Cassandra bigint


def sync_cursor(floor_id: int) -> str:
    return f"{_SYNC_CURSOR}{floor_id:x}"


def parse_sync_cursor(cursor: str) -> int:
    """The floor id of a sync cursor; 0 (everything) for the empty cursor."""
    if not cursor:
        return 0
    return _parse_id(cursor, _SYNC_CURSOR, "INVALID_CURSOR", "cursor")


def sync_page_token(after_id: int) -> str:
    return f"{_SYNC_PAGE}{after_id:x}"


def parse_sync_page_token(token: str) -> int | None:
    return _parse_id(token, _SYNC_PAGE, "INVALID_PAGE_TOKEN", "page_token") if token else None


def history_page_token(before_id: int) -> str:
    return f"{_HISTORY_PAGE}{before_id:x}"


def parse_history_page_token(token: str) -> int:
    """The id to read below; 0 for the newest page."""
    if not token:
        return 0
    before_id = _parse_id(token, _HISTORY_PAGE, "INVALID_PAGE_TOKEN", "page_token")
    if before_id == 0:
        raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one we issued")
    return before_id


def list_page_token(key: ActivityKey) -> str:
    return f"{_LIST_PAGE}{key.last_message_id:x}.{key.conversation_id}"


def parse_list_page_token(token: str) -> ActivityKey | None:
    if not token:
        return None
    head, _, conversation_id = token.partition(".")[2].partition(".")
    if not token.startswith(_LIST_PAGE) or not conversation_id:
        raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one we issued")
    return ActivityKey(
        _parse_id(_LIST_PAGE + head, _LIST_PAGE, "INVALID_PAGE_TOKEN", "page_token"),
        conversation_id,
    )


def _parse_id(token: str, prefix: str, reason: str, what: str) -> int:
    digits = token[len(prefix) :]
    if not token.startswith(prefix) or not 0 < len(digits) <= 16:
        raise InvalidArgument(reason, f"{what} is not one we issued")
    try:
        value = int(digits, 16)
    except ValueError as exc:
        raise InvalidArgument(reason, f"{what} is not one we issued") from exc
    if value > _MAX_ID or digits != f"{value:x}":
        raise InvalidArgument(reason, f"{what} is not one we issued")
    return value
