"""msgsvc's domain wired to the real stores by ``msgsvc.wiring``, with a hand-set clock.

Two ``Instance``s built over the same stores behave like two msgsvc processes:
separate Snowflake workers, shared Redis, PostgreSQL and Cassandra. Routing
is the real ``Router``, reaching sessions and push through the real Redis
stores sessionsvc and notifysvc keep.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import asyncpg
import redis.asyncio as redis

from chatmesh.client import run_sync
from chatmesh.push_jobs import PushJob
from chatmesh.ratelimit import Limit, RateLimiter
from chatmesh.snowflake import SnowflakeGenerator
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import client_pb2
from msgsvc import wiring
from msgsvc.budgets import RedisUserBudgets, UserBudgets
from msgsvc.conversation_list import ConversationLister
from msgsvc.groups import MAX_GROUP_MEMBERS, Groups
from msgsvc.history import HistoryReader
from msgsvc.media.objects import ObjectStore
from msgsvc.media.service import MediaService
from msgsvc.media.settings import MediaSettings
from msgsvc.message_log import MessageLog
from msgsvc.model import SendCommand, SendOutcome
from msgsvc.receipts import ReceiptTracker
from msgsvc.routing import DeviceSession, RedisDeliveryPublisher, Router
from msgsvc.sending import MessageSender
from msgsvc.storage.claims import LegacyClaims
from msgsvc.storage.messages import CassandraMessageStore
from msgsvc.sync import MAX_SYNC_CONVERSATIONS, SyncReader
from msgsvc.wiring import Msgsvc
from sessionsvc.store import RedisSessionStore


class ManualClock:
    """Wall-clock milliseconds that move only when a test moves them."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class StagedIds:
    """A worker's ids, where a test may stage one generated earlier: the
    send that takes it behaves like one that stalled after generating it."""

    def __init__(self, generator: SnowflakeGenerator) -> None:
        self._generator = generator
        self._staged: collections.deque[int] = collections.deque()

    def generate_now(self) -> int:
        return self._generator.next_id()

    def stage(self, message_id: int) -> None:
        self._staged.append(message_id)

    def next_id(self) -> int:
        return self._staged.popleft() if self._staged else self._generator.next_id()


class StoreSessions:
    """Session lookups read from sessionsvc's real Redis store, in process."""

    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        found = await self._store.lookup(user_ids)
        return [DeviceSession(s.user_id, s.device_id, s.gateway_id, s.connection_id) for s in found]


class HandedPushes:
    """The push jobs the router appends, kept in the test process: the
    in-process domain stops at the push job topic (tests/e2e go through it
    to the providers)."""

    def __init__(self) -> None:
        self.jobs: list[PushJob] = []

    async def append(self, job: PushJob) -> None:
        self.jobs.append(job)

    def offline(self, message_id: int) -> list[str]:
        """Recipients of the message none of whose devices got it live."""
        return [
            r.user_id
            for job in self.jobs
            if job.message_id == message_id
            for r in job.recipients
            if not r.live_device_ids
        ]

    def of(self, conversation_id: str) -> list[PushJob]:
        return [job for job in self.jobs if job.conversation_id == conversation_id]


def store_router(
    redis_client: redis.Redis, key_prefix: str, pushes: HandedPushes | None = None
) -> Router:
    """The real Router, reaching sessions through their real store."""
    return Router(
        StoreSessions(RedisSessionStore(redis_client, key_prefix)),
        RedisDeliveryPublisher(redis_client, key_prefix),
        pushes or HandedPushes(),
    )


@dataclass
class Instance:
    """One msgsvc instance as ``msgsvc.wiring`` builds it, minus its gRPC edge."""

    ids: StagedIds
    service: Msgsvc

    @property
    def sender(self) -> MessageSender:
        return self.service.messaging.sender

    @property
    def sync(self) -> SyncReader:
        return self.service.messaging.sync

    @property
    def receipts(self) -> ReceiptTracker:
        return self.service.messaging.receipts

    @property
    def history(self) -> HistoryReader:
        return self.service.messaging.history

    @property
    def conversations(self) -> ConversationLister:
        return self.service.messaging.conversations

    @property
    def groups(self) -> Groups:
        return self.service.messaging.groups

    @property
    def media(self) -> MediaService:
        return self.service.messaging.media

    async def send(
        self,
        sender: str,
        *,
        to_user: str | None = None,
        conversation: str | None = None,
        client_msg_id: str,
        body: bytes = b"hi",
        device: str = "phone",
        on_behalf_of: str = "",
    ) -> SendOutcome:
        """A send from ``device``; with ``device=""``, by an internal client
        (``client/tests`` unless ``on_behalf_of`` names another)."""
        return await self.sender.send(
            SendCommand(
                sender_user_id=sender,
                sender_device_id=device,
                client_msg_id=client_msg_id,
                conversation_id=conversation,
                to_user_id=to_user,
                kind=1,
                body=body,
                on_behalf_of=on_behalf_of or ("" if device else "client/tests"),
            )
        )

    async def request(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        """A client frame through the handler gateway streams reach."""
        return await self.service.frames.handle(user_id, device_id, frame)


def instance(
    *,
    worker_id: int,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    messages: CassandraMessageStore,
    tasks: TaskGroup,
    log: MessageLog,
    max_sync_conversations: int = MAX_SYNC_CONVERSATIONS,
    legacy_claims: LegacyClaims = LegacyClaims.READ,
    objects: ObjectStore,
    max_group_members: int = MAX_GROUP_MEMBERS,
    budgets: UserBudgets | None = None,
    media_settings: MediaSettings | None = None,
) -> Instance:
    """A msgsvc domain over the real stores. Its per-user budgets are the
    real Redis ones, only generous enough for tests that write in bulk,
    unless ``budgets`` says otherwise."""
    ids = StagedIds(SnowflakeGenerator(worker_id, clock))
    service = wiring.build(
        pg_pool=pg_pool,
        redis_client=redis_client,
        key_prefix=key_prefix,
        messages=messages,
        ids=ids,
        clock=clock,
        instance_id=f"test-instance-{worker_id}",
        router=store_router(redis_client, key_prefix),
        tasks=tasks,
        log=log,
        legacy_claims=legacy_claims,
        max_sync_conversations=max_sync_conversations,
        max_group_members=max_group_members,
        budgets=budgets or bulk_budgets(redis_client, key_prefix),
        objects=objects,
        media_settings=media_settings,
    )
    return Instance(ids, service)


def bulk_budgets(redis_client: redis.Redis, key_prefix: str) -> UserBudgets:
    return RedisUserBudgets(
        RateLimiter(redis_client, key_prefix),
        writes=Limit("user-writes", rate_per_s=100_000, burst=100_000),
        requests=Limit("user-requests", rate_per_s=100_000, burst=100_000),
    )


async def full_sync(
    node: Instance, user_id: str, cursor: str, *, held: Collection[int] | None = None
) -> tuple[list[int], str]:
    """What a device does, through the client library's sync and msgsvc's
    frame handler: the summary, then every listed conversation page by page,
    naming the ids in ``held`` (of any conversation) as held if given.
    Returns the message ids received (in arrival order) and the next cursor."""

    async def request(frame: client_pb2.ClientFrame) -> client_pb2.ServerFrame:
        return await node.request(user_id, "sync-device", frame)

    def held_ids(_conversation_id: str, lowest: int, at_most: int) -> list[int]:
        assert held is not None
        return sorted(i for i in held if i >= lowest)[:at_most]

    result = await run_sync(
        request, cursor, page_size=0, held=held_ids if held is not None else None
    )
    assert not result.outcome.gap
    return [m.message_id for m in result.messages], result.next_cursor
