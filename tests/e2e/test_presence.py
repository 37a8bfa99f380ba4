"""Presence end to end: gateways report their users in batches, presencesvc
turns comings and goings into events, watchers follow who shares a
conversation with them, and hidden users look offline.

The shared cluster runs with a 1.5 s flapping grace and 6 s gateway leases
(tests/e2e/conftest.py), so transitions happen within a test's patience.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import redis.asyncio as redis

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.channels import presence_channel
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import LocalCluster
from chatmesh.pubsub import subscriber_count
from chatmesh.v1 import client_pb2, common_pb2, presence_service_pb2, presence_service_pb2_grpc
from tests.conftest import add_users, unique

ONLINE = common_pb2.PRESENCE_STATUS_ONLINE
OFFLINE = common_pb2.PRESENCE_STATUS_OFFLINE
GRACE_S = 1.5
LEASE_S = 6.0
# A change reaches its watchers within: the gateway's report (1 s), the
# grace, the sweep (0.5 s), and slack for a busy machine.
CHANGE_TIMEOUT_S = 1.0 + GRACE_S + 0.5 + 5.0


async def connect(
    cluster: LocalCluster, issuer: TokenIssuer, user: str, device: str = "phone", gateway: int = 0
) -> Connection:
    token = issuer.mint(Identity(user, device), ttl_s=600)
    return await Connection.open(cluster.gateway_url(gateway), token)


async def befriend(a: Connection, b_user: str) -> None:
    """A 1:1 message: from now on they share a conversation."""
    reply = await a.request(
        client_pb2.ClientFrame(
            send=client_pb2.SendFrame(
                client_msg_id=unique("m"),
                to_user_id=b_user,
                kind=common_pb2.MESSAGE_KIND_TEXT,
                body=b"hi",
            )
        )
    )
    assert reply.WhichOneof("kind") == "ack", reply


async def watch(conn: Connection, *users: str) -> client_pb2.PresenceFrame:
    reply = await conn.request(
        client_pb2.ClientFrame(watch_presence=client_pb2.WatchPresenceFrame(user_ids=users))
    )
    assert reply.WhichOneof("kind") == "presence", reply
    return reply.presence


async def change(conn: Connection, timeout_s: float = CHANGE_TIMEOUT_S) -> common_pb2.Presence:
    frame = await conn.recv_kind("presence", timeout_s=timeout_s)
    assert not frame.presence.request_id
    (presence,) = frame.presence.presences
    return presence


async def no_change(conn: Connection, for_s: float) -> None:
    with pytest.raises(TimeoutError):
        frame = await conn.recv_kind("presence", timeout_s=for_s)
        pytest.fail(f"unexpected presence change: {frame}")


@pytest.fixture
async def pair(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> tuple[str, str]:
    """Two users who share a conversation; neither connected."""
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    conn = await connect(cluster, issuer, alice, "laptop")
    try:
        await befriend(conn, bob)
    finally:
        await conn.close()
    return alice, bob


async def test_internal_readers_see_online_users_and_never_seen_ones(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    online, never = unique("olive"), unique("nina")
    await add_users(pg_pool, online)
    before_ms = SystemClock().now_ms()
    conn = await connect(cluster, issuer, online)
    try:
        async with cluster.channel("presencesvc") as channel:
            stub = presence_service_pb2_grpc.PresenceServiceStub(channel)
            deadline = time.monotonic() + 5
            while True:
                reply = await stub.GetPresence(
                    presence_service_pb2.GetPresenceRequest(user_ids=[online, never])
                )
                if reply.presences[0].status == ONLINE or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    seen, unseen = reply.presences
    assert (seen.user_id, seen.status, seen.last_seen_ms) == (online, ONLINE, 0)
    assert seen.changed_at_ms >= before_ms - 1000
    assert (unseen.user_id, unseen.status, unseen.last_seen_ms) == (never, OFFLINE, 0)


async def test_a_watcher_sees_online_then_offline_with_last_seen(
    cluster: LocalCluster, issuer: TokenIssuer, pair: tuple[str, str]
) -> None:
    alice, bob = pair
    watcher = await connect(cluster, issuer, alice)
    try:
        snapshot = await watch(watcher, bob)
        assert [(p.user_id, p.status) for p in snapshot.presences] == [(bob, OFFLINE)]
        assert snapshot.watching == 1
        bob_phone = await connect(cluster, issuer, bob, gateway=1)
        came = await change(watcher)
        assert (came.user_id, came.status, came.last_seen_ms) == (bob, ONLINE, 0)
        left_ms = SystemClock().now_ms()
        await bob_phone.close()
        went = await change(watcher)
        assert (went.user_id, went.status) == (bob, OFFLINE)
        assert left_ms - 1500 <= went.last_seen_ms <= left_ms + 1500
        assert went.changed_at_ms == went.last_seen_ms
    finally:
        await watcher.close()


async def test_a_reconnect_within_the_grace_makes_no_offline_online_pair(
    cluster: LocalCluster, issuer: TokenIssuer, pair: tuple[str, str]
) -> None:
    alice, bob = pair
    bob_phone = await connect(cluster, issuer, bob)
    watcher = await connect(cluster, issuer, alice, gateway=1)
    try:
        (snapshot,) = (await watch(watcher, bob)).presences
        if snapshot.status != ONLINE:  # the connection was not reported yet
            assert (await change(watcher)).status == ONLINE
        for _ in range(3):  # a flaky network: drop and back, on either gateway
            await bob_phone.close()
            await asyncio.sleep(0.3)
            bob_phone = await connect(cluster, issuer, bob, gateway=1)
        await no_change(watcher, for_s=GRACE_S + 2.5)
    finally:
        await bob_phone.close()
        await watcher.close()


async def test_only_users_who_share_a_conversation_can_be_watched_within_a_limit(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool, pair: tuple[str, str]
) -> None:
    alice, bob = pair
    stranger = unique("stranger")
    await add_users(pg_pool, stranger)
    watcher = await connect(cluster, issuer, alice)
    try:
        nobody = unique("nobody")
        answer = await watch(watcher, bob, stranger, alice, nobody, bob)
        assert [p.user_id for p in answer.presences] == [bob]
        # Unknown and stranger alike: nothing tells whether a user exists.
        assert sorted(answer.refused_user_ids) == sorted([stranger, alice, nobody])
        assert answer.watching == 1
        # Beyond 200 the whole frame is refused, and the connection goes on.
        too_many = [f"{unique('x')}" for _ in range(200)]
        refused = await watcher.request(
            client_pb2.ClientFrame(watch_presence=client_pb2.WatchPresenceFrame(user_ids=too_many))
        )
        assert refused.WhichOneof("kind") == "error"
        assert refused.error.reason == "WATCH_LIMIT"
        unwatched = await watcher.request(
            client_pb2.ClientFrame(
                unwatch_presence=client_pb2.UnwatchPresenceFrame(user_ids=[bob, stranger])
            )
        )
        assert unwatched.presence.watching == 0
        assert (await watch(watcher, bob)).watching == 1  # still usable
    finally:
        await watcher.close()


async def test_a_hidden_user_looks_offline_and_makes_no_events(
    cluster: LocalCluster, issuer: TokenIssuer, pair: tuple[str, str]
) -> None:
    alice, bob = pair
    bob_phone = await connect(cluster, issuer, bob)
    watcher = await connect(cluster, issuer, alice, gateway=1)
    try:
        (snapshot,) = (await watch(watcher, bob)).presences
        if snapshot.status != ONLINE:
            assert (await change(watcher)).status == ONLINE
        hide = await bob_phone.request(
            client_pb2.ClientFrame(
                set_presence_visibility=client_pb2.SetPresenceVisibilityFrame(
                    visibility=common_pb2.PRESENCE_VISIBILITY_NOBODY
                )
            )
        )
        assert hide.presence_visibility.visibility == common_pb2.PRESENCE_VISIBILITY_NOBODY
        hidden = await change(watcher)
        assert (hidden.status, hidden.last_seen_ms, hidden.changed_at_ms) == (OFFLINE, 0, 0)
        # A new watcher sees the same: offline, never seen.
        other = await connect(cluster, issuer, alice, "tablet")
        try:
            (fresh,) = (await watch(other, bob)).presences
            assert (fresh.status, fresh.last_seen_ms) == (OFFLINE, 0)
        finally:
            await other.close()
        await bob_phone.close()
        await no_change(watcher, for_s=GRACE_S + 2.5)
        bob_phone = await connect(cluster, issuer, bob)
        shown = await bob_phone.request(
            client_pb2.ClientFrame(
                set_presence_visibility=client_pb2.SetPresenceVisibilityFrame(
                    visibility=common_pb2.PRESENCE_VISIBILITY_CONVERSATIONS
                )
            )
        )
        assert shown.presence_visibility.visibility == common_pb2.PRESENCE_VISIBILITY_CONVERSATIONS
        deadline = time.monotonic() + CHANGE_TIMEOUT_S
        while (seen := await change(watcher)).status != ONLINE:
            assert time.monotonic() < deadline
        assert seen.user_id == bob
        invalid = await bob_phone.request(
            client_pb2.ClientFrame(set_presence_visibility=client_pb2.SetPresenceVisibilityFrame())
        )
        assert invalid.error.reason == "INVALID_PRESENCE_VISIBILITY"
    finally:
        await bob_phone.close()
        await watcher.close()


async def test_a_gateway_subscribes_once_however_many_of_its_connections_watch(
    cluster: LocalCluster,
    issuer: TokenIssuer,
    pg_pool: asyncpg.Pool,
    redis_client: redis.Redis,
    pair: tuple[str, str],
) -> None:
    alice, bob = pair
    carol = unique("carol")
    await add_users(pg_pool, carol)
    carol_conn = await connect(cluster, issuer, carol)
    await befriend(carol_conn, bob)
    watchers = [
        carol_conn,
        await connect(cluster, issuer, alice, "phone"),
        await connect(cluster, issuer, alice, "laptop"),
    ]
    channel = presence_channel(cluster.config.key_prefix, bob)

    async def subscribers() -> int:
        return await subscriber_count(redis_client, channel)

    try:
        for conn in watchers:
            await watch(conn, bob)
        assert await subscribers() == 1  # three watchers, one gateway, one subscription
        bob_phone = await connect(cluster, issuer, bob, gateway=1)
        for conn in watchers:  # and each of them hears the change
            assert (await change(conn)).status == ONLINE
        await bob_phone.close()
        for conn in watchers[:2]:
            await conn.request(
                client_pb2.ClientFrame(
                    unwatch_presence=client_pb2.UnwatchPresenceFrame(user_ids=[bob])
                )
            )
        assert await subscribers() == 1
        await watchers[2].close()  # a closed connection watches nobody
        deadline = time.monotonic() + 5
        while await subscribers():
            assert time.monotonic() < deadline, "still subscribed with nobody watching"
            await asyncio.sleep(0.1)
    finally:
        for conn in watchers:
            await conn.close()


async def test_a_killed_gateway_takes_its_users_offline_when_its_lease_runs_out(
    cluster: LocalCluster, issuer: TokenIssuer, pair: tuple[str, str]
) -> None:
    alice, bob = pair
    watcher = await connect(cluster, issuer, alice, gateway=0)
    bob_phone = await connect(cluster, issuer, bob, gateway=1)
    try:
        (snapshot,) = (await watch(watcher, bob)).presences
        if snapshot.status != ONLINE:
            assert (await change(watcher)).status == ONLINE
        killed_ms = SystemClock().now_ms()
        cluster.processes["gateway-2"].kill()
        went = await change(watcher, timeout_s=LEASE_S + 5.0)
        offline_after_s = (SystemClock().now_ms() - killed_ms) / 1000
        assert (went.user_id, went.status) == (bob, OFFLINE)
        # Last seen: the gateway's last report, before it died.
        assert killed_ms - LEASE_S * 1000 <= went.last_seen_ms <= killed_ms
        assert offline_after_s <= LEASE_S + 2.0
    finally:
        await watcher.close()
        await bob_phone.close()
        await asyncio.to_thread(cluster.restart, "gateway-2")
