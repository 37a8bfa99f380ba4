"""Push jobs on their Kafka topic: one record per (recipient, message),
keyed by recipient so one notifysvc instance holds all of a user's jobs.

A job is appended once the router has delivered the message live; it names
the devices that got it then, and the consumer pushes the recipient's other
devices. Records may repeat (a retried route appends again); the consumer's
windows drop a repeat of a message a device already has pending, and the
provider collapses a repeat that was already sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from chatmesh.kafka_io import LogProducer
from chatmesh.v1 import notification_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class PushJob:
    user_id: str
    conversation_id: str
    message_id: int
    sender_user_id: str
    live_device_ids: frozenset[str]


def encode(job: PushJob) -> bytes:
    return pb.PushJob(
        user_id=job.user_id,
        conversation_id=job.conversation_id,
        message_id=job.message_id,
        sender_user_id=job.sender_user_id,
        live_device_ids=sorted(job.live_device_ids),
    ).SerializeToString()


def decode(value: bytes) -> PushJob:
    """Raises ``google.protobuf.message.DecodeError`` for bytes that are no job."""
    record = pb.PushJob()
    record.ParseFromString(value)
    return PushJob(
        record.user_id,
        record.conversation_id,
        record.message_id,
        record.sender_user_id,
        frozenset(record.live_device_ids),
    )


class KafkaPushJobs:
    def __init__(self, producer: LogProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def append(self, jobs: Sequence[PushJob]) -> None:
        """Returns once every job is durable; raises ``Unavailable`` otherwise."""
        # Side by side: the producer pipelines them to the brokers.
        await asyncio.gather(
            *(self._producer.append(self._topic, j.user_id.encode(), encode(j)) for j in jobs)
        )
