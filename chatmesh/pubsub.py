"""Subscribing to Redis pub/sub channels, for as long as the process runs.

Pub/sub is at-most-once: while the subscription is down, messages are lost.
The subscriber reconnects by itself and then reports the interruption, so
its owner can make up for what it missed (gateways tell their clients to
sync; msgsvc forgets every cached device registration).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import redis.asyncio as redis

log = logging.getLogger(__name__)

RESUBSCRIBE_BACKOFF_S = 0.5

Handler = Callable[[bytes], None]


class ChannelSubscriber:
    def __init__(
        self,
        client: redis.Redis,
        handlers: Mapping[str, Handler],
        on_interrupted: Callable[[], None],
    ) -> None:
        self._redis = client
        self._handlers = dict(handlers)
        self._on_interrupted = on_interrupted
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        interrupted = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._handlers)
                self.subscribed.set()
                log.info("subscribed", extra={"fields": {"channels": list(self._handlers)}})
                if interrupted:
                    # Told only once subscribed again, so that whatever the
                    # owner does about it cannot miss what follows.
                    self._on_interrupted()
                    interrupted = False
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message["type"] != "message":
                        continue
                    channel = message["channel"]
                    handler = self._handlers.get(
                        channel.decode() if isinstance(channel, bytes) else channel
                    )
                    if handler is not None:
                        handler(message["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.subscribed.clear()
                interrupted = True
                log.warning("subscription lost", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RESUBSCRIBE_BACKOFF_S)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
