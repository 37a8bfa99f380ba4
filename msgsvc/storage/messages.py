"""Messages in Cassandra, partitioned by (conversation, time bucket)."""

from __future__ import annotations

from typing import Protocol

from cassandra.cluster import Session

from chatmesh import snowflake
from chatmesh.cassandra_io import execute
from msgsvc.model import StoredMessage
from msgsvc.visibility import STORE_WRITE_TIMEOUT_S

# Ten days of messages per partition (Discord's choice): even a busy
# conversation's partition stays far below the sizes where Cassandra suffers,
# and a page of recent history touches one or two partitions.
BUCKET_SPAN_MS = 10 * 24 * 3600 * 1000


def bucket_of(message_id: int) -> int:
    return (snowflake.timestamp_ms(message_id) - snowflake.EPOCH_MS) // BUCKET_SPAN_MS


def bucket_at(timestamp_ms: int) -> int:
    return (timestamp_ms - snowflake.EPOCH_MS) // BUCKET_SPAN_MS


class MessageStore(Protocol):
    """Durable message rows.

    ``write`` is idempotent: writing the same message twice leaves one row.
    When it returns the row is durable at the configured consistency.
    """

    async def write(self, message: StoredMessage) -> None: ...

    async def get(self, conversation_id: str, message_id: int) -> StoredMessage | None: ...

    async def page(
        self, conversation_id: str, *, before_id: int, limit: int, oldest_bucket: int
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages with ids below ``before_id``, newest first,
        looking no further back than ``oldest_bucket``."""
        ...

    async def after(
        self, conversation_id: str, *, after_id: int, limit: int, buckets: range
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages with ids above ``after_id``, oldest first,
        reading only the given buckets."""
        ...

    async def senders_after(
        self, conversation_id: str, *, after_id: int, limit: int, buckets: range
    ) -> list[str]:
        """The senders of up to ``limit`` messages with ids above ``after_id``,
        newest first, reading only the given buckets (bodies are not read)."""
        ...


_COLUMNS = "message_id, sender_user_id, sender_device_id, client_msg_id, kind, body, media"


class CassandraMessageStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        table = f"{keyspace}.messages"  # qualified: prepared statements must not rely on USE
        self._insert = session.prepare(
            f"INSERT INTO {table} (conversation_id, bucket, message_id, sender_user_id,"
            " sender_device_id, client_msg_id, kind, body, media)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._get = session.prepare(
            f"SELECT {_COLUMNS} FROM {table}"
            " WHERE conversation_id = ? AND bucket = ? AND message_id = ?"
        )
        self._page = session.prepare(
            f"SELECT {_COLUMNS} FROM {table}"
            " WHERE conversation_id = ? AND bucket = ? AND message_id < ? LIMIT ?"
        )
        self._after = session.prepare(
            f"SELECT {_COLUMNS} FROM {table}"
            " WHERE conversation_id = ? AND bucket = ? AND message_id > ?"
            " ORDER BY message_id ASC LIMIT ?"
        )
        self._senders_after = session.prepare(
            f"SELECT sender_user_id FROM {table}"
            " WHERE conversation_id = ? AND bucket = ? AND message_id > ? LIMIT ?"
        )

    async def write(self, message: StoredMessage) -> None:
        await execute(
            self._session,
            self._insert,
            (
                message.conversation_id,
                bucket_of(message.message_id),
                message.message_id,
                message.sender_user_id,
                message.sender_device_id,
                message.client_msg_id,
                message.kind,
                message.body,
                message.media or None,  # no cell at all for a message without media
            ),
            timeout_s=STORE_WRITE_TIMEOUT_S,
        )

    async def get(self, conversation_id: str, message_id: int) -> StoredMessage | None:
        rows = await execute(
            self._session, self._get, (conversation_id, bucket_of(message_id), message_id)
        )
        return _message(conversation_id, rows[0]) if rows else None

    async def page(
        self, conversation_id: str, *, before_id: int, limit: int, oldest_bucket: int
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages with ids below ``before_id``, newest first,
        walking buckets down to ``oldest_bucket``."""
        found: list[StoredMessage] = []
        bucket = bucket_of(before_id)
        while bucket >= oldest_bucket and len(found) < limit:
            rows = await execute(
                self._session, self._page, (conversation_id, bucket, before_id, limit - len(found))
            )
            found.extend(_message(conversation_id, row) for row in rows)
            bucket -= 1
        return found

    async def after(
        self, conversation_id: str, *, after_id: int, limit: int, buckets: range
    ) -> list[StoredMessage]:
        found: list[StoredMessage] = []
        for bucket in buckets:
            if len(found) >= limit:
                break
            rows = await execute(
                self._session, self._after, (conversation_id, bucket, after_id, limit - len(found))
            )
            found.extend(_message(conversation_id, row) for row in rows)
        return found

    async def senders_after(
        self, conversation_id: str, *, after_id: int, limit: int, buckets: range
    ) -> list[str]:
        found: list[str] = []
        for bucket in reversed(buckets):
            if len(found) >= limit:
                break
            rows = await execute(
                self._session,
                self._senders_after,
                (conversation_id, bucket, after_id, limit - len(found)),
            )
            found.extend(row.sender_user_id for row in rows)
        return found


def _message(conversation_id: str, row: object) -> StoredMessage:
    message_id: int = row.message_id  # type: ignore[attr-defined]
    return StoredMessage(
        message_id=message_id,
        conversation_id=conversation_id,
        sender_user_id=row.sender_user_id,  # type: ignore[attr-defined]
        sender_device_id=row.sender_device_id,  # type: ignore[attr-defined]
        client_msg_id=row.client_msg_id,  # type: ignore[attr-defined]
        kind=row.kind,  # type: ignore[attr-defined]
        body=bytes(row.body or b""),  # type: ignore[attr-defined]
        media=bytes(row.media or b""),  # type: ignore[attr-defined]
        created_at_ms=snowflake.timestamp_ms(message_id),
    )
