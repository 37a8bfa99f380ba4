"""What gateways receive on their Redis channels, for tests that route without gateways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chatmesh.channels import gateway_channel
from chatmesh.pubsub import Subscription
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import delivery_pb2

Inbox = asyncio.Queue[delivery_pb2.GatewayDelivery]


@asynccontextmanager
async def gateway_inboxes(
    client: RedisClient, key_prefix: str, *gateway_ids: str
) -> AsyncIterator[dict[str, Inbox]]:
    """A queue per gateway id, filled with every delivery published to it."""
    queues: dict[str, Inbox] = {gw: asyncio.Queue() for gw in gateway_ids}
    channels = {gateway_channel(key_prefix, gw): gw for gw in gateway_ids}
    subscription = Subscription(client)
    await subscription.subscribe(*channels)

    async def pump() -> None:
        while True:
            received = await subscription.next_message(timeout_s=1.0)
            if received is not None:
                channel, payload = received
                delivery = delivery_pb2.GatewayDelivery()
                delivery.ParseFromString(payload)
                queues[channels[channel]].put_nowait(delivery)

    task = asyncio.create_task(pump(), name="gateway-inboxes")
    try:
        yield queues
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await subscription.aclose()
