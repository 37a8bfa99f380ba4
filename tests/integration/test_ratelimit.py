"""The shared rate limiter against real Redis: a burst, then the rate."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from chatmesh.errors import ResourceExhausted
from chatmesh.ratelimit import Limit, RateLimiter


async def test_a_burst_passes_then_the_rate_holds(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    limiter = RateLimiter(redis_client, key_prefix)
    limit = Limit("test", rate_per_s=20.0, burst=5)
    waits = [await limiter.allow(limit, "ann") for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 0.05  # one emission interval
    assert await limiter.allow(limit, "bob") == 0.0  # subjects are apart
    await asyncio.sleep(waits[5] + 0.01)
    assert await limiter.allow(limit, "ann") == 0.0  # refilled at the rate
    with pytest.raises(ResourceExhausted) as refused:
        await limiter.require(limit, "ann")
    assert refused.value.reason == "RATE_LIMITED"


async def test_instances_share_one_budget(redis_client: redis.Redis, key_prefix: str) -> None:
    """Two limiters (two processes' worth) over one Redis: one budget."""
    one, two = RateLimiter(redis_client, key_prefix), RateLimiter(redis_client, key_prefix)
    limit = Limit("shared", rate_per_s=1.0, burst=4)
    allowed = [await (one if i % 2 else two).allow(limit, "ann") == 0.0 for i in range(10)]
    assert allowed.count(True) == 4
