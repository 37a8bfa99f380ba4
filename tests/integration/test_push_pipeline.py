"""The push pipeline over real Kafka, PostgreSQL and session store: what it
does when a check fails, a send blows up, or a device is live; and that a
job is committed only once every device it named is done with it.

The providers are the one stand-in (``Recording``): third-party services.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.kafka_io import KafkaSettings, LogConsumer, LogProducer, ensure_topic, topic_name
from chatmesh.push_jobs import KafkaPushJobs, PushJob, PushRecipient
from msgsvc.model import StoredMessage
from notifysvc.devices import PushDevice
from notifysvc.directory import PostgresPushDirectory
from notifysvc.pipeline import PushPipeline
from notifysvc.providers.message import Delivered, Outcome, PushMessage
from sessionsvc.store import DeviceSession, RedisSessionStore
from tests.conftest import Stores, add_users, unique

WINDOW_S = 0.3
SETTLE_S = 20.0


@dataclass
class Recording:
    """The providers: what was sent to which credential."""

    sent: list[tuple[str, PushMessage]] = field(default_factory=list)
    explode_for: set[str] = field(default_factory=set)

    async def send(self, device: PushDevice, message: PushMessage) -> Outcome:
        if device.token in self.explode_for:
            raise KeyError("topic")  # a stored credential the client cannot use
        self.sent.append((device.token, message))
        return Delivered()

    def to(self, token: str) -> list[PushMessage]:
        return [m for t, m in self.sent if t == token]


class NoPreviews:
    """Message text is read only for devices with previews: none here."""

    async def get(self, conversation_id: str, message_id: int) -> StoredMessage | None:
        raise AssertionError("text read for a device without previews")


class FailingOnce:
    """The real directory, whose read marks fail the first time (PostgreSQL
    restarting, say)."""

    def __init__(self, inner: PostgresPushDirectory) -> None:
        self._inner = inner
        self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def read_marks(
        self, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int | None]:
        if not self.failed:
            self.failed = True
            raise ConnectionResetError("connection lost")
        return await self._inner.read_marks(pairs)


class StoreLiveDevices:
    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store

    async def live(self, user_ids: Collection[str]) -> set[tuple[str, str]]:
        return {(s.user_id, s.device_id) for s in await self._store.lookup(list(user_ids))}


@dataclass
class Rig:
    topic: KafkaSettings
    consumer: LogConsumer
    jobs: KafkaPushJobs
    sessions: RedisSessionStore
    pg_pool: asyncpg.Pool

    async def conversation(self, *members: str) -> str:
        conversation = unique("conv")
        await self.pg_pool.execute(
            "INSERT INTO conversations (conversation_id, kind, created_at_ms) VALUES ($1, 1, 0)",
            conversation,
        )
        await self.pg_pool.executemany(
            "INSERT INTO members (conversation_id, user_id) VALUES ($1, $2)",
            [(conversation, m) for m in members],
        )
        return conversation

    async def phone(self, user: str, device: str = "phone") -> str:
        token = secrets.token_hex(16)
        await self.pg_pool.execute(
            "UPDATE devices SET push_platform = 'fcm', push_token = $3"
            " WHERE user_id = $1 AND device_id = $2",
            user,
            device,
            token,
        )
        return token


@pytest.fixture
async def rig(
    stores: Stores, key_prefix: str, pg_pool: asyncpg.Pool, redis_client: redis.Redis
) -> AsyncIterator[Rig]:
    topic = KafkaSettings(
        stores.kafka_bootstrap, topic_name(key_prefix, "push-jobs"), 2, 1, stores.kafka_security
    )
    await ensure_topic(topic)
    consumer = LogConsumer(topic, topic_name(key_prefix, "notifysvc"), client_id="t")
    await consumer.start()
    producer = LogProducer(topic, client_id="router")
    try:
        yield Rig(
            topic,
            consumer,
            KafkaPushJobs(producer, topic.topic),
            RedisSessionStore(redis_client, key_prefix),
            pg_pool,
        )
    finally:
        await producer.close()
        await consumer.close()


@contextlib.asynccontextmanager
async def running(pipeline: PushPipeline) -> AsyncIterator[None]:
    task = asyncio.create_task(pipeline.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: object, what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def committed_everything(rig: Rig, pipeline: PushPipeline) -> bool:
    await pipeline.commit()
    lags = await asyncio.to_thread(rig.consumer.lag)
    return bool(lags) and not any(lags.values())


def message_id() -> int:
    return snowflake.compose(int(time.time() * 1000), 1000, secrets.randbelow(4096))


async def test_a_failed_check_holds_the_pushes_then_sends_each_once_and_commits(
    rig: Rig, pg_pool: asyncpg.Pool
) -> None:
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    phone, laptop = await rig.phone(ben), await rig.phone(ben, "laptop")
    conversation = await rig.conversation(ann, ben)
    # Ben's laptop is connected: it gets the message live, not a push.
    await rig.sessions.heartbeat("gw", 60)
    await rig.sessions.register([DeviceSession(ben, "laptop", "gw", "c1")])
    directory = FailingOnce(PostgresPushDirectory(pg_pool))
    providers = Recording()
    pipeline = PushPipeline(
        source=rig.consumer,
        directory=directory,  # type: ignore[arg-type]
        live=StoreLiveDevices(rig.sessions),
        messages=NoPreviews(),
        sender=providers,
        window_s=WINDOW_S,
    )
    sent = [message_id(), message_id()]
    async with running(pipeline):
        for mid in sorted(sent):
            await rig.jobs.append(
                PushJob(conversation, mid, ann, (PushRecipient(ben, frozenset({"laptop"})),))
            )
        await until(lambda: providers.to(phone), "no push after the failed check")
        await asyncio.sleep(WINDOW_S * 3)
        await until_async(lambda: committed_everything(rig, pipeline), "not committed")
    assert directory.failed
    (push,) = providers.to(phone)
    assert push.message_ids == tuple(sorted(sent))
    assert providers.to(laptop) == []


async def test_a_send_that_blows_up_is_dropped_and_the_rest_goes_on(
    rig: Rig, pg_pool: asyncpg.Pool
) -> None:
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    broken, fine = await rig.phone(ben), await rig.phone(cat)
    group = await rig.conversation(ann, ben, cat)
    providers = Recording(explode_for={broken})
    pipeline = PushPipeline(
        source=rig.consumer,
        directory=PostgresPushDirectory(pg_pool),
        live=StoreLiveDevices(rig.sessions),
        messages=NoPreviews(),
        sender=providers,
        window_s=WINDOW_S,
    )
    async with running(pipeline):
        await rig.jobs.append(
            PushJob(
                group,
                message_id(),
                ann,
                (PushRecipient(ben, frozenset()), PushRecipient(cat, frozenset())),
            )
        )
        await until(lambda: providers.to(fine), "the other member was not pushed")
        await until_async(lambda: committed_everything(rig, pipeline), "a failed send stalled")
    assert providers.to(broken) == []


async def until_async(check: object, what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)
