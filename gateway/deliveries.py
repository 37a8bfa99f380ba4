"""Deliveries from msgsvc to this gateway's connections, over Redis pub/sub
(``chatmesh.pubsub``): at most once, so the gateway tells its clients to sync
after an interrupted subscription."""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from chatmesh.channels import gateway_channel
from chatmesh.pubsub import publish
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import delivery_pb2

log = logging.getLogger(__name__)


def parse_delivery(payload: bytes) -> delivery_pb2.GatewayDelivery | None:
    delivery = delivery_pb2.GatewayDelivery()
    try:
        delivery.ParseFromString(payload)
    except DecodeError:
        log.error("undecodable delivery dropped", extra={"fields": {"bytes": len(payload)}})
        return None
    return delivery


class DisconnectPublisher:
    """Asks another gateway to close connections a newer one replaced."""

    def __init__(self, client: RedisClient, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix

    async def publish(self, gateway_id: str, targets: list[delivery_pb2.DeliveryTarget]) -> None:
        # At most once, like every publish: if it is lost, the replaced
        # connection only lingers until its client or gateway closes it; it
        # no longer receives deliveries either way.
        await publish(
            self._redis,
            gateway_channel(self._prefix, gateway_id),
            delivery_pb2.GatewayDelivery(disconnect=targets).SerializeToString(),
        )
