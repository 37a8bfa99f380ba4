"""Deliveries from msgsvc to this gateway's connections, over Redis pub/sub.

Pub/sub is at-most-once: while the subscription is down, deliveries are lost.
The subscriber reconnects by itself and then reports the interruption, so the
gateway can tell its clients to sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as redis
from google.protobuf.message import DecodeError

from chatmesh.channels import gateway_channel
from chatmesh.v1 import delivery_pb2

log = logging.getLogger(__name__)

RESUBSCRIBE_BACKOFF_S = 0.5


class DeliverySubscriber:
    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        on_delivery: Callable[[delivery_pb2.GatewayDelivery], None],
        on_interrupted: Callable[[], None],
    ) -> None:
        self._redis = client
        self._channel = channel
        self._on_delivery = on_delivery
        self._on_interrupted = on_interrupted
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        interrupted = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.subscribed.set()
                log.info("subscribed", extra={"fields": {"channel": self._channel}})
                if interrupted:
                    # Told only once subscribed again, so that a sync the
                    # clients start now cannot miss what follows it.
                    self._on_interrupted()
                    interrupted = False
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message["type"] != "message":
                        continue
                    self._dispatch(message["data"])
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.subscribed.clear()
                interrupted = True
                log.warning("delivery subscription lost", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RESUBSCRIBE_BACKOFF_S)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, payload: bytes) -> None:
        delivery = delivery_pb2.GatewayDelivery()
        try:
            delivery.ParseFromString(payload)
        except DecodeError:
            log.error("undecodable delivery dropped", extra={"fields": {"bytes": len(payload)}})
            return
        self._on_delivery(delivery)


class DisconnectPublisher:
    """Asks another gateway to close connections a newer one replaced."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix

    async def publish(self, gateway_id: str, targets: list[delivery_pb2.DeliveryTarget]) -> None:
        # At most once, like every publish: if it is lost, the replaced
        # connection only lingers until its client or gateway closes it; it
        # no longer receives deliveries either way.
        await self._redis.publish(
            gateway_channel(self._prefix, gateway_id),
            delivery_pb2.GatewayDelivery(disconnect=targets).SerializeToString(),
        )
