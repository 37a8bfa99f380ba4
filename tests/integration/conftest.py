"""Fixtures for tests that wire msgsvc's domain objects to the real stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh.tasks import TaskGroup
from msgsvc.media.objects import S3ObjectStore
from msgsvc.message_log import KafkaMessageLog
from msgsvc.storage.messages import CassandraMessageStore
from tests.support.msgsvc_domain import Instance, ManualClock, instance


class MakeInstance(Protocol):
    def __call__(self, worker_id: int, clock: ManualClock, **options: Any) -> Instance: ...


@pytest.fixture
async def make_instance(
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
    message_log: KafkaMessageLog,
    media_objects: S3ObjectStore,
) -> AsyncIterator[MakeInstance]:
    """Builds msgsvc instances over this test's stores: same stores, own worker id.
    Routing they started in the background is finished at teardown."""
    tasks = TaskGroup("test-instances")

    def make(worker_id: int, clock: ManualClock, **options: Any) -> Instance:
        return instance(
            worker_id=worker_id,
            clock=clock,
            pg_pool=pg_pool,
            redis_client=redis_client,
            key_prefix=key_prefix,
            messages=message_store,
            tasks=tasks,
            **{"log": message_log, "objects": media_objects, **options},
        )

    yield make
    await tasks.join_then_close(timeout_s=5.0)
