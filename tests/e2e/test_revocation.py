"""Sessions that end when they should: at the token's expiry, and within
seconds of the device's removal, on every gateway, whatever a client does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatmesh.auth import ALGORITHM, AUDIENCE, DEVICE_CLAIM, ISSUER, Identity, TokenIssuer
from chatmesh.client import Connection, Device
from chatmesh.client.connection import text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.frames import CLOSE_DEVICE_REVOKED, CLOSE_TOKEN_EXPIRED
from chatmesh.v1 import client_pb2, directory_service_pb2, directory_service_pb2_grpc
from tests.conftest import add_users, unique

CUT_OFF_S = 5.0  # "within seconds"


async def _closed_with(client: Connection, timeout_s: float) -> int | None:
    await asyncio.wait_for(client.ws.wait_closed(), timeout_s)
    return client.close_code


async def _eventually(condition: Callable[[], bool], timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def _remove(cluster: LocalCluster, user: str, device: str) -> None:
    async with cluster.channel("msgsvc") as channel:
        await directory_service_pb2_grpc.DirectoryServiceStub(channel).RemoveDevice(
            directory_service_pb2.RemoveDeviceRequest(user_id=user, device_id=device),
            timeout=10,
        )


async def test_a_connection_closes_when_its_token_expires(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    user = unique("brief")
    await add_users(pg_pool, user)
    client = await Connection.open(cluster.edge_url, issuer.mint(Identity(user, "phone"), ttl_s=2))
    # The close code says why: the token's end, not an idle timeout.
    assert await _closed_with(client, 10.0) == CLOSE_TOKEN_EXPIRED


async def test_a_removed_device_is_cut_off_on_every_gateway_and_refused_after(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    alice = unique("alice")
    await add_users(pg_pool, alice)
    phone_token = issuer.mint(Identity(alice, "phone"), ttl_s=600)
    phone = await Connection.open(cluster.gateway_url(0), phone_token)
    laptop = await Connection.open(
        cluster.gateway_url(1), issuer.mint(Identity(alice, "laptop"), ttl_s=600)
    )
    tablet = await Connection.open(
        cluster.gateway_url(1), issuer.mint(Identity(alice, "tablet"), ttl_s=600)
    )
    try:
        await _remove(cluster, alice, "phone")
        await _remove(cluster, alice, "laptop")
        assert await _closed_with(phone, CUT_OFF_S) == CLOSE_DEVICE_REVOKED
        assert await _closed_with(laptop, CUT_OFF_S) == CLOSE_DEVICE_REVOKED
        # The other device of the same user is untouched.
        assert not tablet.closed
        await tablet.request(client_pb2.ClientFrame(sync=client_pb2.SyncFrame()), timeout_s=10.0)
        # Its token, on any gateway, is refused from now on.
        for url in (cluster.edge_url, cluster.gateway_url(1)):
            with pytest.raises(InvalidStatus) as refused:
                await Connection.open(url, phone_token)
            assert refused.value.response.status_code == 403
        # Registered again, the device needs a token issued after the removal.
        await add_users(pg_pool, alice)
        with pytest.raises(InvalidStatus):
            await Connection.open(cluster.edge_url, phone_token)
        await asyncio.sleep(1.1)  # token times have one-second resolution
        fresh = await Connection.open(
            cluster.edge_url, issuer.mint(Identity(alice, "phone"), ttl_s=600)
        )
        await fresh.close()
    finally:
        for client in (phone, laptop, tablet):
            await client.close()


async def test_a_device_removed_behind_the_gateways_back_cannot_sync(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    """No announcement at all (the row deleted directly): msgsvc's check on
    every request refuses the sync, and the gateway closes the connection."""
    bob = unique("bob")
    await add_users(pg_pool, bob)
    client = await Connection.open(cluster.edge_url, issuer.mint(Identity(bob, "web"), ttl_s=600))
    await pg_pool.execute("DELETE FROM devices WHERE user_id = $1 AND device_id = 'web'", bob)
    reply = await client.request(
        client_pb2.ClientFrame(sync=client_pb2.SyncFrame()), timeout_s=10.0
    )
    assert reply.error.reason == "DEVICE_NOT_REGISTERED"
    assert await _closed_with(client, CUT_OFF_S) == CLOSE_DEVICE_REVOKED


async def test_a_token_living_longer_than_the_cap_is_refused(
    cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    user = unique("forever")
    await add_users(pg_pool, user)
    key = serialization.load_pem_private_key(
        (cluster.keys_dir / "jwt-private.pem").read_bytes(), password=None
    )
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        DEVICE_CLAIM: "phone",
        "iat": now,
        "exp": now + 30 * 24 * 3600,
    }
    token = jwt.encode(claims, key, algorithm=ALGORITHM)  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus) as refused:
        await Connection.open(cluster.edge_url, token)
    assert refused.value.response.status_code == 401
    assert b"at most" in refused.value.response.body


async def test_the_client_library_stops_reconnecting_a_removed_device(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    carol = unique("carol")
    await add_users(pg_pool, carol)
    device = Device(
        carol,
        "iot",
        url=cluster.edge_url,
        token_factory=lambda: issuer.mint(Identity(carol, "iot"), ttl_s=600),
    )
    device.start()
    try:
        assert await _eventually(lambda: device.connected, 10.0)
        await _remove(cluster, carol, "iot")
        assert await _eventually(lambda: device.revoked, CUT_OFF_S)
        await asyncio.sleep(1.0)  # it would have reconnected by now
        assert not device.connected
    finally:
        await device.stop()


async def test_a_device_removed_mid_sync_gets_no_further_page(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    dave, erin = unique("dave"), unique("erin")
    await add_users(pg_pool, dave, erin)
    sender = await Connection.open(
        cluster.edge_url, issuer.mint(Identity(erin, "phone"), ttl_s=600)
    )
    syncing = await Connection.open(
        cluster.edge_url, issuer.mint(Identity(dave, "tablet"), ttl_s=600)
    )
    try:
        acked = await sender.request(text_send("m1", dave, None, "before the removal"))
        assert acked.WhichOneof("kind") == "ack"
        summary = await syncing.request(client_pb2.ClientFrame(sync=client_pb2.SyncFrame()))
        (conversation,) = summary.sync_summary.conversations
        await _remove(cluster, dave, "tablet")
        try:
            page = await syncing.request(
                client_pb2.ClientFrame(
                    sync_conversation=client_pb2.SyncConversationFrame(
                        conversation_id=conversation.conversation_id
                    )
                ),
                timeout_s=5.0,
            )
        except ConnectionClosed:
            pass  # closed by the announcement before the page was asked for
        else:
            assert page.error.reason == "DEVICE_NOT_REGISTERED", page
        assert await _closed_with(syncing, CUT_OFF_S) == CLOSE_DEVICE_REVOKED
    finally:
        await sender.close()
        await syncing.close()
