"""Connections mark users online; recipients with no live device get a push job."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as redis

from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import presence_service_pb2, presence_service_pb2_grpc
from tests.conftest import add_users, unique


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
            if reply.presences[0].status == presence_service_pb2.PRESENCE_STATUS_ONLINE:
                break
            await asyncio.sleep(0.1)
    seen, unseen = reply.presences
    assert (seen.user_id, seen.status) == (online, presence_service_pb2.PRESENCE_STATUS_ONLINE)
    assert seen.last_seen_ms >= before_ms - 1000
    assert (unseen.user_id, unseen.status, unseen.last_seen_ms) == (
        never,
        presence_service_pb2.PRESENCE_STATUS_OFFLINE,
        0,
    )


async def test_an_offline_recipient_gets_a_push_job_without_content(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
) -> None:
    alice, offline = unique("alice"), unique("oscar")
    await add_users(pg_pool, alice, offline)
    alice_ws: Connection = await open_client(alice)
    await alice_ws.send_text(to_user=offline, body="secret words")
    ack = (await alice_ws.recv_kind("ack")).ack
    stream = f"{cluster.config.key_prefix}push-jobs"
    for _ in range(50):
        jobs = [
            {k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in await redis_client.xrange(stream)
        ]
        mine = [j for j in jobs if j["user_id"] == offline]
        if mine:
            break
        await asyncio.sleep(0.1)
    assert mine == [
        {
            "user_id": offline,
            "conversation_id": ack.conversation_id,
            "message_id": str(ack.message_id),
            "sender_user_id": alice,
        }
    ]
    assert not [j for j in jobs if j["user_id"] == alice]  # the sender is online
