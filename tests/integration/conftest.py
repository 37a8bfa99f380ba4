"""Fixtures for tests that wire msgsvc's domain objects to the real stores."""

from __future__ import annotations

from typing import Any, Protocol

import asyncpg
import pytest
import redis.asyncio as redis

from msgsvc.storage.messages import CassandraMessageStore
from tests.support.msgsvc_domain import Instance, ManualClock, instance


class MakeInstance(Protocol):
    def __call__(self, worker_id: int, clock: ManualClock, **options: Any) -> Instance: ...


@pytest.fixture
def make_instance(
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    key_prefix: str,
    message_store: CassandraMessageStore,
) -> MakeInstance:
    """Builds msgsvc instances over this test's stores: same stores, own worker id."""

    def make(worker_id: int, clock: ManualClock, **options: Any) -> Instance:
        return instance(
            worker_id=worker_id,
            clock=clock,
            pg_pool=pg_pool,
            redis_client=redis_client,
            key_prefix=key_prefix,
            messages=message_store,
            **options,
        )

    return make
