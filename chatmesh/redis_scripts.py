"""Lua scripts run inside Redis pipelines by their SHA alone.

redis-py's ``Script`` makes every pipeline that holds one ask Redis ``SCRIPT
EXISTS`` first: a whole extra round trip before each batch, on the hottest
path (every send passes a rate-limit script and a claim). Here a pipeline
carries ``EVALSHA`` only. Redis answers ``NOSCRIPT`` when its script cache is
empty (a restart, ``SCRIPT FLUSH``, a failover to a replica that never ran
it); a command refused that way was not run, so the script is loaded and
exactly those commands are sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import NoScriptError

from chatmesh.redis_client import RedisClient

# Queues one command on a pipeline; called again for a command to resend.
Queue = Callable[[Pipeline | ClusterPipeline], object]


class PipelineScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(
        self, pipe: Pipeline | ClusterPipeline, keys: Sequence[str], args: Sequence[Any]
    ) -> None:
        # As a raw command: a cluster pipeline refuses ``evalsha()`` by name,
        # but sends EVALSHA to the primary of its first key's slot.
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


async def run_pipeline(
    client: RedisClient, commands: Sequence[Queue], scripts: Iterable[PipelineScript]
) -> list[Any]:
    """The replies of ``commands``, sent in one round trip (two after a lost
    script cache). Raises the first command error, as a pipeline does."""
    replies = await _send(client, commands)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in scripts:
            await client.script_load(script.source)
        again = await _send(client, [commands[i] for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _send(client: RedisClient, commands: Sequence[Queue]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            command(pipe)
        return list(await pipe.execute(raise_on_error=False))
