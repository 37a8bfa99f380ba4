"""Push jobs on their Kafka topic: one record per routed message, naming its
recipients and the devices that got it live (``push.proto``, ``PushJob``).

Whoever routes a message appends its job (msgsvc for 1:1, the fan-out
workers for groups); notifysvc reads the topic and pushes every other device
of the recipients that has a push credential. The topic is keyed by
conversation, so one notifysvc instance holds a conversation's jobs and
coalesces them per device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from chatmesh.kafka_io import KafkaSettings, LogProducer, topic_name
from chatmesh.settings import env_int, env_str
from chatmesh.v1 import push_pb2

DEFAULT_PARTITIONS = 8


@dataclass(frozen=True, slots=True)
class PushRecipient:
    user_id: str
    live_device_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class PushJob:
    conversation_id: str
    message_id: int
    sender_user_id: str
    recipients: tuple[PushRecipient, ...]


def push_topic(env: Mapping[str, str], key_prefix: str, log: KafkaSettings) -> KafkaSettings:
    """The job topic's settings: the message log's brokers and security,
    ``CHATMESH_PUSH_TOPIC`` (``<prefix>push-jobs``), its partitions and
    replication (the message log's unless given)."""
    return dataclasses.replace(
        log,
        topic=env_str(env, "PUSH_TOPIC", topic_name(key_prefix, "push-jobs")),
        partitions=env_int(env, "PUSH_TOPIC_PARTITIONS", DEFAULT_PARTITIONS),
        replication=env_int(env, "PUSH_TOPIC_REPLICATION", log.replication),
    )


def encode(job: PushJob) -> bytes:
    return push_pb2.PushJob(
        conversation_id=job.conversation_id,
        message_id=job.message_id,
        sender_user_id=job.sender_user_id,
        recipients=[
            push_pb2.PushRecipient(user_id=r.user_id, live_device_ids=sorted(r.live_device_ids))
            for r in job.recipients
        ],
    ).SerializeToString()


def decode(value: bytes) -> PushJob:
    """Raises ``google.protobuf.message.DecodeError`` for bytes that are no job."""
    record = push_pb2.PushJob()
    record.ParseFromString(value)
    return PushJob(
        record.conversation_id,
        record.message_id,
        record.sender_user_id,
        tuple(PushRecipient(r.user_id, frozenset(r.live_device_ids)) for r in record.recipients),
    )


class KafkaPushJobs:
    def __init__(self, producer: LogProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def append(self, job: PushJob) -> None:
        """Returns once the job is durable; raises ``Unavailable`` otherwise."""
        await self._producer.append(self._topic, job.conversation_id.encode(), encode(job))
