"""Messages in Cassandra, partitioned by (conversation, time bucket).

Every send writes one row. Written one request each, Cassandra spends most
of its CPU on per-request work (about 0.75 ms a write when requests come one
at a time, against 0.16 ms when 50 are in flight) and the driver's per
request bookkeeping is most of msgsvc's share. Writes that arrive while a
batch is in flight therefore go out together as the next one, an UNLOGGED
batch: no batch log, each row applied on its own exactly as a lone insert
would be, and under load the batch grows with the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from chatmesh import snowflake
from chatmesh.cassandra_io import execute
from chatmesh.coalescer import Coalescer
from msgsvc.model import StoredMessage
from msgsvc.visibility import STORE_WRITE_TIMEOUT_S, send_in_doubt

# Ten days of messages per partition (Discord's choice): even a busy
# conversation's partition stays far below the sizes where Cassandra suffers,
# and a page of recent history touches one or two partitions.
BUCKET_SPAN_MS = 10 * 24 * 3600 * 1000

MAX_WRITES_PER_BATCH = 64
# Cassandra logs a warning for every batch above batch_size_warn_threshold
# (5 KiB by default) and refuses one above 50 KiB: batches stay below the
# warning with default settings, and a row bigger than that goes alone.
MAX_BATCH_PAYLOAD_BYTES = 4 * 1024
_ROW_OVERHEAD_BYTES = 160  # bucket, id, kind, cell headers and timestamps (measured)


def bucket_of(message_id: int) -> int:
    return (snowflake.timestamp_ms(message_id) - snowflake.EPOCH_MS) // BUCKET_SPAN_MS


def bucket_at(timestamp_ms: int) -> int:
    return (timestamp_ms - snowflake.EPOCH_MS) // BUCKET_SPAN_MS


class MessageStore(Protocol):
    """Durable message rows.

    ``write`` is idempotent: writing the same message twice leaves one row.
    When it returns the row is durable at the configured consistency.
    Writes of the send path pass ``may_start``, asked right before the row
    is sent to the store: if it says no (``msgsvc.visibility``: the id may
    no longer start a write), the write raises SEND_IN_DOUBT, retryable.
    """

    async def write(
        self, message: StoredMessage, *, may_start: Callable[[], bool] | None = None
    ) -> None: ...

    async def get(
        self, conversation_id: str, message_id: int, *, every_replica: bool = False
    ) -> StoredMessage | None:
        """The row, or None. ``every_replica`` reads at consistency ALL: a
        miss then means no replica holds the row (a write that failed may
        have landed on fewer replicas than a quorum read consults), and a
        replica that cannot answer fails the read as unavailable."""
        ...

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
        self._writes: Coalescer[_Write, BaseException | None] = Coalescer(
            self._write_many, max_batch=4 * MAX_WRITES_PER_BATCH, name="message-writes"
        )
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

    async def write(
        self, message: StoredMessage, *, may_start: Callable[[], bool] | None = None
    ) -> None:
        failure = await self._writes.submit((message, may_start))
        if failure is not None:
            raise failure

    async def _write_many(self, writes: Sequence[_Write]) -> list[BaseException | None]:
        """One outcome per write: None once its row is durable."""
        messages = [message for message, _ in writes]
        outcomes: list[BaseException | None] = [None] * len(writes)
        # The sender checked its deadline, but a write may have waited here
        # behind a batch since: asked again now, the late ones fail as
        # retryable instead of starting after it.
        startable = []
        for index, (_, may_start) in enumerate(writes):
            if may_start is None or may_start():
                startable.append(index)
            else:
                outcomes[index] = send_in_doubt()
        groups = _groups([messages[i] for i in startable], startable)
        results = await asyncio.gather(
            *(self._write_group([messages[i] for i in group]) for group in groups),
            return_exceptions=True,
        )
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, BaseException):
                for index in group:
                    outcomes[index] = result
        return outcomes

    async def _write_group(self, messages: Sequence[StoredMessage]) -> None:
        if len(messages) == 1:
            statement: object = self._insert
            params: object = _row(messages[0])
        else:
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for message in messages:
                batch.add(self._insert, _row(message))
            statement, params = batch, None
        await execute(self._session, statement, params, timeout_s=STORE_WRITE_TIMEOUT_S)

    async def get(
        self, conversation_id: str, message_id: int, *, every_replica: bool = False
    ) -> StoredMessage | None:
        bound = self._get.bind((conversation_id, bucket_of(message_id), message_id))
        if every_replica:
            bound.consistency_level = ConsistencyLevel.ALL
        rows = await execute(self._session, bound)
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


_Write = tuple[StoredMessage, Callable[[], bool] | None]


def _row(message: StoredMessage) -> tuple[object, ...]:
    return (
        message.conversation_id,
        bucket_of(message.message_id),
        message.message_id,
        message.sender_user_id,
        message.sender_device_id,
        message.client_msg_id,
        message.kind,
        message.body,
        message.media or None,  # no cell at all for a message without media
    )


def _payload_bytes(message: StoredMessage) -> int:
    return (
        len(message.conversation_id)
        + len(message.sender_user_id)
        + len(message.sender_device_id)
        + len(message.client_msg_id)
        + len(message.body)
        + len(message.media)
        + _ROW_OVERHEAD_BYTES
    )


def _groups(messages: Sequence[StoredMessage], indexes: Sequence[int]) -> list[list[int]]:
    """Splits the writes into batches within the row and payload bounds."""
    groups: list[list[int]] = []
    size = 0
    for message, index in zip(messages, indexes, strict=True):
        payload = _payload_bytes(message)
        if (
            not groups
            or len(groups[-1]) >= MAX_WRITES_PER_BATCH
            or size + payload > MAX_BATCH_PAYLOAD_BYTES
        ):
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += payload
    return groups


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
