"""The message log: group messages and group changes, appended once written.

Appending is part of accepting a group message: it is acknowledged only once
its record is in the log, from which fan-out workers route it
(``msgsvc.fanout``). A record names a message; see ``MessageLogRecord``.
When tracing, its headers carry the trace of the send that appended it
(W3C ``traceparent``), so the fan-out's routing joins that trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatmesh.kafka_io import LogProducer
from chatmesh.tracing import NO_TRACING, Tracing, carrier_of
from chatmesh.v1 import message_log_pb2


@dataclass(frozen=True, slots=True)
class LogEntry:
    conversation_id: str
    message_id: int
    kind: int


class MessageLog(Protocol):
    async def append(self, entry: LogEntry) -> None:
        """Returns once the entry is durable in the log; raises ``Unavailable``
        otherwise. Appending an entry twice is allowed: readers deliver at
        least once."""
        ...


class KafkaMessageLog:
    def __init__(self, producer: LogProducer, topic: str, tracing: Tracing = NO_TRACING) -> None:
        self._producer = producer
        self._topic = topic
        self._tracing = tracing

    async def append(self, entry: LogEntry) -> None:
        record = message_log_pb2.MessageLogRecord(
            conversation_id=entry.conversation_id,
            message_id=entry.message_id,
            kind=entry.kind,  # type: ignore[arg-type]
        )
        # Keyed by conversation: one conversation's records share a partition
        # and keep their append order.
        await self._producer.append(
            self._topic,
            entry.conversation_id.encode(),
            record.SerializeToString(),
            [(k, v.encode()) for k, v in carrier_of().items()] if self._tracing.enabled else (),
        )


def decode_entry(value: bytes) -> LogEntry:
    record = message_log_pb2.MessageLogRecord()
    record.ParseFromString(value)
    return LogEntry(record.conversation_id, record.message_id, record.kind)
