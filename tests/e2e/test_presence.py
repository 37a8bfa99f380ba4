"""Connections mark users online."""

from __future__ import annotations

import asyncio

from chatmesh.clock import SystemClock
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import common_pb2, presence_service_pb2, presence_service_pb2_grpc
from tests.conftest import unique


async def test_a_connected_user_is_online_and_others_are_not(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
) -> None:
    online, never = unique("olive"), unique("nina")
    before_ms = SystemClock().now_ms()
    await open_client(online)
    async with cluster.channel("presencesvc") as channel:
        stub = presence_service_pb2_grpc.PresenceServiceStub(channel)
        for _ in range(50):  # the gateway reports new users within a second
            reply = await stub.GetPresence(
                presence_service_pb2.GetPresenceRequest(user_ids=[online, never])
            )
            if reply.presences[0].status == common_pb2.PRESENCE_STATUS_ONLINE:
                break
            await asyncio.sleep(0.1)
    seen, unseen = reply.presences
    assert (seen.user_id, seen.status) == (online, common_pb2.PRESENCE_STATUS_ONLINE)
    assert seen.last_seen_ms >= before_ms - 1000
    assert (unseen.user_id, unseen.status, unseen.last_seen_ms) == (
        never,
        common_pb2.PRESENCE_STATUS_OFFLINE,
        0,
    )
