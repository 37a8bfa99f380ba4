"""A subscriber must notice every lost subscription, however quickly Redis
comes back: messages published while it was away are gone, and only the
report (gateways then tell their clients to sync) makes up for them.

Runs against a private redis-server that the test kills with SIGKILL and
starts again on the same port.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from chatmesh import redis_client
from chatmesh.devcluster import free_port
from chatmesh.pubsub import ChannelSubscriber, publish

CHANNEL = "gw:g1:deliveries"


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            cwd=self._workdir,
            stdout=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    s.start()
    yield s
    s.kill()


async def _until_answers(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                await client.ping()
                return
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError("redis-server did not start")
    finally:
        await client.aclose()


async def test_a_restart_within_a_blink_is_reported_and_delivery_resumes(server: Server) -> None:
    await _until_answers(server.url)
    received: list[bytes] = []
    arrived = asyncio.Event()
    reported = asyncio.Event()
    interruptions = 0

    def on_message(payload: bytes) -> None:
        received.append(payload)
        arrived.set()

    def interrupted() -> None:
        nonlocal interruptions
        interruptions += 1
        reported.set()

    # The services' client for subscriptions: no retries of its own.
    subscriptions = redis_client.connect(server.url, retries=0)
    publisher = redis_client.connect(server.url)
    subscriber = ChannelSubscriber(subscriptions, {CHANNEL: on_message}, interrupted)
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.subscribed.wait(), 5)
        assert await publish(publisher, CHANNEL, b"before") == 1
        server.kill()
        server.start()  # back on the same port at once, nothing subscribed
        await _until_answers(server.url)
        await asyncio.wait_for(reported.wait(), 10)
        # Reported only once subscribed again: what follows arrives.
        arrived.clear()
        assert await publish(publisher, CHANNEL, b"after") == 1
        await asyncio.wait_for(arrived.wait(), 10)
        assert received == [b"before", b"after"]
        assert interruptions == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await subscriptions.aclose()
        await publisher.aclose()
