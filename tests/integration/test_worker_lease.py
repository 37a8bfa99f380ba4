from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from chatmesh import snowflake
from chatmesh.clock import SystemClock
from chatmesh.errors import Unavailable
from chatmesh.snowflake import SnowflakeGenerator
from msgsvc.ids import LeasedIdSource, WorkerLease


async def test_live_instances_never_share_a_worker_id(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    leases = [WorkerLease(redis_client, key_prefix) for _ in range(50)]
    acquired = await asyncio.gather(*(lease.acquire() for lease in leases))
    assert len({worker for worker, _ in acquired}) == 50


async def test_released_worker_id_hands_over_its_high_water_mark(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    first = WorkerLease(redis_client, key_prefix)
    worker, mark = await first.acquire()
    assert mark == 0
    future_ms = SystemClock().now_ms() + 5_000
    await first.release(future_ms)
    # Force the next instance onto the same worker id by occupying every other.
    others = []
    while True:
        lease = WorkerLease(redis_client, key_prefix)
        got, got_mark = await lease.acquire()
        if got == worker:
            assert got_mark == future_ms
            clock = SystemClock()
            ids = LeasedIdSource(
                lease, SnowflakeGenerator(got, clock, issued_through_ms=got_mark), clock
            )
            assert snowflake.timestamp_ms(ids.next_id()) > future_ms
            break
        others.append(lease)
        assert len(others) <= snowflake.MAX_WORKER_ID


async def test_a_lost_lease_stops_ids_until_a_new_worker_id_is_leased(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    lease = WorkerLease(redis_client, key_prefix)
    ids = await LeasedIdSource.start(lease, SystemClock())
    before = ids.next_id()
    lost_worker = ids.worker_id
    # Another party took the key over (e.g. after a long pause let it expire).
    await redis_client.set(f"{{{key_prefix}worker:{lost_worker}}}:lease", "someone-else")
    await lease.renew(0)
    with pytest.raises(Unavailable) as refused:
        ids.next_id()
    assert refused.value.reason == "ID_LEASE_LOST"
    # The next renewal finds the lease gone and leases another worker id.
    await ids.renew()
    after = ids.next_id()
    assert ids.worker_id != lost_worker
    assert snowflake.parse(after).worker_id == ids.worker_id
    assert after > before
