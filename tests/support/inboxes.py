"""What gateways receive on their Redis channels, for tests that route without gateways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis

from chatmesh.channels import gateway_channel
from chatmesh.v1 import delivery_pb2

Inbox = asyncio.Queue[delivery_pb2.GatewayDelivery]


@asynccontextmanager
async def gateway_inboxes(
    client: redis.Redis, key_prefix: str, *gateway_ids: str
) -> AsyncIterator[dict[str, Inbox]]:
    """A queue per gateway id, filled with every delivery published to it."""
    queues: dict[str, Inbox] = {gw: asyncio.Queue() for gw in gateway_ids}
    channels = {gateway_channel(key_prefix, gw): gw for gw in gateway_ids}
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*channels)

    async def pump() -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                delivery = delivery_pb2.GatewayDelivery()
                delivery.ParseFromString(message["data"])
                queues[channels[message["channel"].decode()]].put_nowait(delivery)

    task = asyncio.create_task(pump(), name="gateway-inboxes")
    try:
        yield queues
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
