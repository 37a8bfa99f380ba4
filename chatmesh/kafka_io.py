"""Kafka from asyncio, through librdkafka (``confluent-kafka``; decision 0012).

``LogProducer`` is an idempotent producer (acks from every in-sync replica)
whose deliveries resolve futures in the event loop: ``append`` returns once
the record is durable in the log, and raises ``Unavailable`` otherwise.
``LogConsumer`` reads batches in a consumer group and commits offsets only
when told, so a record whose processing died with the process is read again
by the next owner of its partition.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from chatmesh.errors import Unavailable
from chatmesh.kafka_security import PLAINTEXT, KafkaSecurity, client_config
from chatmesh.kafka_trouble import ConnectionTrouble
from chatmesh.settings import env_int, env_str

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
# A record not durable within this is reported failed (and its send fails as
# retryable): long enough to ride out a leader election, short enough that
# the sender hears back well inside its ack timeout.
DELIVERY_TIMEOUT_MS = 5_000
POLL_INTERVAL_S = 0.05  # how long the delivery thread blocks between checks
# A consumer that stops heartbeating loses its partitions after this: a
# killed fan-out worker's share moves to the others within seconds.
SESSION_TIMEOUT_MS = 10_000
# Creating a topic waits for the controller; a broker that cannot be reached
# or refuses us fails it after this instead.
TOPIC_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str
    topic: str  # the message log
    partitions: int  # for creating the topic; scale fan-out workers up to this
    replication: int  # 1 on one broker; 3 with min.insync.replicas=2 in production
    # How every client (producer, consumer, admin) reaches and logs in to the brokers.
    security: KafkaSecurity = PLAINTEXT

    @classmethod
    def from_env(cls, env: Mapping[str, str], key_prefix: str) -> KafkaSettings:
        return cls(
            bootstrap=env_str(env, "KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP),
            topic=env_str(env, "MESSAGE_TOPIC", topic_name(key_prefix, "messages")),
            partitions=env_int(env, "MESSAGE_TOPIC_PARTITIONS", 8),
            replication=env_int(env, "MESSAGE_TOPIC_REPLICATION", 1),
            security=KafkaSecurity.from_env(env),
        )


def topic_name(key_prefix: str, name: str) -> str:
    """A topic under the deployment's key prefix (Kafka allows [A-Za-z0-9._-])."""
    return re.sub(r"[^A-Za-z0-9._-]", ".", key_prefix) + name


def _admin(bootstrap: str, security: KafkaSecurity, trouble: ConnectionTrouble) -> AdminClient:
    return AdminClient({**client_config(bootstrap, security), **trouble.client_config()})


async def ensure_topic(settings: KafkaSettings, *, timeout_s: float = TOPIC_TIMEOUT_S) -> None:
    """Creates the message log topic unless it exists. Raises ``Unavailable``,
    naming what the brokers said, when it is not created within ``timeout_s``."""
    trouble = ConnectionTrouble("admin")
    admin = _admin(settings.bootstrap, settings.security, trouble)
    config = {"min.insync.replicas": str(min(2, settings.replication))}
    futures = admin.create_topics(
        [NewTopic(settings.topic, settings.partitions, settings.replication, config=config)],
        request_timeout=timeout_s,
    )
    try:
        # A little longer than librdkafka's own deadline, which fails it first.
        await asyncio.to_thread(futures[settings.topic].result, timeout_s + 1)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        admin.poll(0)  # serves the callbacks that carry the cause
        raise Unavailable(
            "LOG_UNAVAILABLE",
            f"topic {settings.topic} not created: {exc.args[0].str()}{trouble.explain()}",
        ) from exc


async def delete_topics_with_prefix(
    bootstrap: str, prefix: str, *, security: KafkaSecurity
) -> list[str]:
    """Deletes the topics a run created (tests and benchmarks clean up)."""
    admin = _admin(bootstrap, security, ConnectionTrouble("admin"))
    metadata = await asyncio.to_thread(admin.list_topics, timeout=10)
    doomed = [t for t in metadata.topics if t.startswith(prefix)]
    if doomed:
        for future in admin.delete_topics(doomed).values():
            await asyncio.to_thread(future.result, 30)
    return doomed


class LogProducer:
    def __init__(self, settings: KafkaSettings, *, client_id: str = "chatmesh") -> None:
        self._producer = Producer(
            {
                **client_config(settings.bootstrap, settings.security),
                # Served by the delivery thread: the cause of a failed
                # delivery is in the log before the failure.
                **ConnectionTrouble(client_id).client_config(),
                "client.id": client_id,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 0,  # send at once; records queue up behind in-flight ones anyway
                "message.timeout.ms": DELIVERY_TIMEOUT_MS,
            }
        )
        self._loop = asyncio.get_running_loop()
        self._running = True
        # librdkafka calls delivery callbacks from poll(): a thread of our own
        # polls, and hands the outcomes to the event loop. Outcomes that
        # arrive together are handed over together: one wake-up of the loop
        # per bunch, not one per record (under load a few percent of a core).
        self._outcomes: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._outcomes_lock = threading.Lock()
        self._poller = threading.Thread(target=self._poll, name="kafka-deliveries", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(POLL_INTERVAL_S)

    async def append(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        delivered: asyncio.Future[None] = self._loop.create_future()

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            self._hand_over(delivered, error)

        try:
            self._producer.produce(
                topic, value, key, on_delivery=on_delivery, headers=list(headers) or None
            )
        except BufferError as exc:  # the local queue is full: Kafka is far behind
            raise Unavailable("LOG_UNAVAILABLE", "the message log is not keeping up") from exc
        except KafkaException as exc:
            raise Unavailable("LOG_UNAVAILABLE", f"the message log refused: {exc}") from exc
        await delivered

    def _hand_over(self, delivered: asyncio.Future[None], error: KafkaError | None) -> None:
        """On the polling thread."""
        with self._outcomes_lock:
            self._outcomes.append((delivered, error))
            first = len(self._outcomes) == 1
        if first:  # otherwise a wake-up is already on its way and takes this one too
            self._loop.call_soon_threadsafe(self._settle_outcomes)

    def _settle_outcomes(self) -> None:
        with self._outcomes_lock:
            outcomes, self._outcomes = self._outcomes, []
        for delivered, error in outcomes:
            _settle(delivered, error)

    async def close(self, timeout_s: float = 5.0) -> None:
        await asyncio.to_thread(self._producer.flush, timeout_s)
        self._running = False
        await asyncio.to_thread(self._poller.join)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(
            Unavailable("LOG_UNAVAILABLE", f"the message log did not take the record: {error}")
        )


@dataclass(frozen=True, slots=True)
class LogRecord:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


PING_TIMEOUT_S = 1.5
LAG_TIMEOUT_S = 5.0  # each broker query of a lag report


GATHER_BYTES = 64 * 1024


class LogConsumer:
    """Reads ``settings.topic``, the message log."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        *,
        client_id: str,
        static_member: bool = False,
        gather_ms: int = 0,
    ) -> None:
        """With ``static_member`` the consumer joins as ``client_id`` for
        good (KIP-345): restarted under the same id, it takes its partitions
        back at once instead of after the session timeout of its previous
        life. ``client_id`` must then be unique in the group and stable
        across restarts (a pod name).

        With ``gather_ms`` the broker holds a fetch until it has
        ``GATHER_BYTES`` or that long has passed: a reader for which that
        much delay does not matter then costs the broker a few fetches a
        second under load instead of one per record appended."""
        self._topic = settings.topic
        # Served by ``batch``: it names the cause of failed pings once the
        # consumer has been reading.
        self._trouble = ConnectionTrouble(client_id)
        membership = {"group.instance.id": client_id} if static_member else {}
        self._consumer = Consumer(
            {
                **membership,
                **client_config(settings.bootstrap, settings.security),
                **self._trouble.client_config(),
                "group.id": group_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                # A new group starts at the beginning: nothing appended since
                # the topic was created may be skipped.
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 4,
                "partition.assignment.strategy": "cooperative-sticky",
                **(
                    {"fetch.wait.max.ms": gather_ms, "fetch.min.bytes": GATHER_BYTES}
                    if gather_ms
                    else {}
                ),
            }
        )

    async def start(self) -> None:
        await asyncio.to_thread(self._consumer.subscribe, [self._topic])

    async def ping(self) -> None:
        """Raises ``Unavailable`` unless a broker answers a metadata request for the topic."""
        try:
            await asyncio.to_thread(self._consumer.list_topics, self._topic, PING_TIMEOUT_S)
        except KafkaException as exc:
            raise Unavailable(
                "LOG_UNAVAILABLE",
                f"no broker answered: {exc.args[0].str()}{self._trouble.explain()}",
            ) from exc

    async def batch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first."""
        # librdkafka's consume waits until it has ``max_records`` or the time
        # is up: wait for the first record only, then take what is already
        # fetched, so a quiet topic does not hold back the record at hand.
        messages: Sequence[Any] = await asyncio.to_thread(self._consumer.consume, 1, timeout_s)
        if messages and max_records > 1:
            messages = [*messages, *self._consumer.consume(max_records - 1, 0)]
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("log read error", extra={"fields": {"error": str(error)}})
                continue
            records.append(
                LogRecord(
                    message.partition(),
                    message.offset(),
                    message.key() or b"",
                    message.value(),
                    tuple(message.headers() or ()),
                )
            )
        return records

    async def commit(self, records: Sequence[LogRecord]) -> None:
        """Commits past the given records: they will not be read again."""
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, -1), record.offset + 1)
        await self.commit_positions(ends)

    async def commit_positions(self, positions: Mapping[int, int]) -> None:
        """Commits, per partition, the offset the group reads next."""
        if positions:
            offsets = [TopicPartition(self._topic, p, o) for p, o in positions.items()]
            await asyncio.to_thread(self._consumer.commit, offsets=offsets, asynchronous=False)

    def lag(self) -> dict[int, int]:
        """Per assigned partition, the records not yet committed: the high
        watermark minus the committed offset (minus the low watermark when
        the group has committed nothing). Blocks on the broker: call it from
        a thread; librdkafka allows that alongside ``batch``."""
        assigned = self._consumer.assignment()
        if not assigned:
            return {}
        lags = {}
        for tp in self._consumer.committed(assigned, timeout=LAG_TIMEOUT_S):
            low, high = self._consumer.get_watermark_offsets(
                tp, timeout=LAG_TIMEOUT_S, cached=False
            )
            start = tp.offset if tp.offset >= 0 else low
            lags[tp.partition] = max(0, high - start)
        return lags

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)
