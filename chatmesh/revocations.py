"""Removed devices, known to every gateway and msgsvc instance within seconds.

Removing a device writes a record ``revoked:{user}:{device}`` holding the
removal time and publishes it on one channel every gateway and msgsvc
instance subscribes to: gateways close the device's connections, msgsvc
drops its cached "registered" answer. The record outlives every token
issued before the removal (tokens live at most ``MAX_TOKEN_LIFETIME_S``), so
a gateway refuses such a token at the handshake even if it missed the
publish, or if the device id has been registered again since.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from chatmesh.auth import LEEWAY_S, MAX_TOKEN_LIFETIME_S
from chatmesh.pubsub import queue_publish
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import delivery_pb2

RECORD_TTL_S = MAX_TOKEN_LIFETIME_S + 2 * LEEWAY_S


def revocations_channel(key_prefix: str) -> str:
    return f"{key_prefix}revocations"


def _record_key(key_prefix: str, user_id: str, device_id: str) -> str:
    return f"{key_prefix}revoked:{{{user_id}}}:{device_id}"


class Revocations:
    def __init__(self, client: RedisClient, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix

    async def revoke(self, user_id: str, device_id: str, at_ms: int) -> None:
        """Records and announces the removal. Idempotent: a retry after a
        failure records the later time, which refuses no more tokens that
        matter (the device was already removed)."""
        revocation = delivery_pb2.DeviceRevocation(
            user_id=user_id, device_id=device_id, revoked_at_ms=at_ms
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_record_key(self._prefix, user_id, device_id), at_ms, ex=RECORD_TTL_S)
            queue_publish(pipe, revocations_channel(self._prefix), revocation.SerializeToString())
            await pipe.execute()

    async def revoked_at_ms(self, user_id: str, device_id: str) -> int | None:
        """When the device was last removed, if within a token's lifetime."""
        raw = await self._redis.get(_record_key(self._prefix, user_id, device_id))
        return int(raw) if raw is not None else None


def decode(payload: bytes) -> delivery_pb2.DeviceRevocation | None:
    revocation = delivery_pb2.DeviceRevocation()
    try:
        revocation.ParseFromString(payload)
    except DecodeError:
        return None
    return revocation if revocation.user_id and revocation.device_id else None
