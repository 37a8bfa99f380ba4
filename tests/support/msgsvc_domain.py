"""msgsvc's domain objects wired to the real stores, with a hand-set clock.

Two ``Instance``s built over the same stores behave like two msgsvc processes:
separate Snowflake workers, shared Redis, PostgreSQL and Cassandra.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import asyncpg
import redis.asyncio as redis

from chatmesh.snowflake import SnowflakeGenerator
from msgsvc.access import Access
from msgsvc.conversation_list import ConversationLister
from msgsvc.devices import DeviceCheck
from msgsvc.history import HistoryReader
from msgsvc.model import SendCommand, SendOutcome
from msgsvc.receipts import ReceiptTracker
from msgsvc.sending import MessageSender
from msgsvc.storage.accounts import PostgresAccountStore
from msgsvc.storage.claims import LegacyClaims, RedisClaimStore
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.messages import CassandraMessageStore
from msgsvc.storage.route_journal import RouteJournal
from msgsvc.summaries import Summarizer
from msgsvc.sync import MAX_SYNC_CONVERSATIONS, SyncReader


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


@dataclass
class Instance:
    ids: StagedIds
    sender: MessageSender
    sync: SyncReader
    receipts: ReceiptTracker
    history: HistoryReader
    conversations: ConversationLister

    async def send(
        self,
        sender: str,
        *,
        to_user: str | None = None,
        conversation: str | None = None,
        client_msg_id: str,
        body: bytes = b"hi",
        device: str = "phone",
    ) -> SendOutcome:
        return await self.sender.send(
            SendCommand(
                sender_user_id=sender,
                sender_device_id=device,
                client_msg_id=client_msg_id,
                conversation_id=conversation,
                to_user_id=to_user,
                kind=1,
                body=body,
            )
        )


def instance(
    *,
    worker_id: int,
    clock: ManualClock,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    messages: CassandraMessageStore,
    max_sync_conversations: int = MAX_SYNC_CONVERSATIONS,
    legacy_claims: LegacyClaims = LegacyClaims.READ,
) -> Instance:
    directory = PostgresDirectory(pg_pool)
    access = Access(directory)
    summarizer = Summarizer(directory, messages)
    ids = StagedIds(SnowflakeGenerator(worker_id, clock))
    return Instance(
        ids=ids,
        sender=MessageSender(
            directory=directory,
            claims=RedisClaimStore(redis_client, key_prefix, legacy=legacy_claims),
            messages=messages,
            ids=ids,
            clock=clock,
            devices=DeviceCheck(PostgresAccountStore(pg_pool), clock),
            journal=RouteJournal(redis_client, key_prefix, f"test-instance-{worker_id}"),
        ),
        sync=SyncReader(
            access=access,
            directory=directory,
            messages=messages,
            summarizer=summarizer,
            clock=clock,
            max_conversations=max_sync_conversations,
        ),
        receipts=ReceiptTracker(access, directory, messages),
        history=HistoryReader(access, messages, clock),
        conversations=ConversationLister(directory, summarizer),
    )


async def full_sync(node: Instance, user_id: str, cursor: str) -> tuple[list[int], str]:
    """What a device does: summary, then every listed conversation page by
    page. Returns the message ids received (in arrival order) and the next cursor."""
    summary = await node.sync.summary(user_id, cursor)
    assert not summary.gap
    received: list[int] = []
    for view in summary.conversations:
        token = ""
        while True:
            page = await node.sync.page(
                user_id, view.conversation_id, cursor=cursor, page_token=token, page_size=0
            )
            received.extend(m.message_id for m in page.messages)
            token = page.next_page_token
            if not token:
                break
    return received, summary.next_cursor
