"""Pipelined scripts against real Redis: EVALSHA alone, and a script cache
that lost the script costs one load and one resend of exactly what was
refused."""

from __future__ import annotations

import pytest
import redis.asyncio as redis
from redis.exceptions import ResponseError

from chatmesh.redis_scripts import PipelineScript, run_pipeline
from tests.conftest import unique


def counting_script() -> PipelineScript:
    # A source no Redis has seen (the marker), so its first run meets NOSCRIPT.
    return PipelineScript(f"-- {unique('script')}\nreturn redis.call('INCR', KEYS[1])")


async def script_loads(client: redis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script|load", {}).get("calls", 0))


async def test_a_script_unknown_to_redis_is_loaded_and_only_it_is_sent_again(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    script = counting_script()
    counter, plain = f"{key_prefix}{unique('n')}", f"{key_prefix}{unique('p')}"
    assert await redis_client.script_exists(script.sha) == [False]
    replies = await run_pipeline(
        redis_client,
        [
            lambda pipe: pipe.incr(plain),
            lambda pipe: script.queue(pipe, [counter], []),
            lambda pipe: pipe.incr(plain),
        ],
        [script],
    )
    # The plain commands ran once each, the script once after its load.
    assert replies == [1, 1, 2]
    assert await redis_client.get(counter) == b"1"
    assert await redis_client.script_exists(script.sha) == [True]


async def test_a_known_script_needs_no_round_trip_but_its_own(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    script = counting_script()
    counter = f"{key_prefix}{unique('n')}"
    await redis_client.script_load(script.source)
    loads = await script_loads(redis_client)
    for expected in (1, 2, 3):
        assert await run_pipeline(
            redis_client, [lambda pipe: script.queue(pipe, [counter], [])], [script]
        ) == [expected]
    assert await script_loads(redis_client) == loads


async def test_an_error_is_raised_after_the_other_commands_ran(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    script = counting_script()
    text, counter = f"{key_prefix}{unique('t')}", f"{key_prefix}{unique('n')}"
    await redis_client.set(text, "not a number")
    with pytest.raises(ResponseError):
        await run_pipeline(
            redis_client,
            [lambda pipe: script.queue(pipe, [text], []), lambda pipe: pipe.incr(counter)],
            [script],
        )
    assert await redis_client.get(counter) == b"1"
