"""Alice, through Envoy on one gateway, messages Bob, through Envoy on the other."""

from __future__ import annotations

import asyncpg

from chatmesh import snowflake
from chatmesh.client import Connection
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import message_service_pb2, message_service_pb2_grpc
from msgsvc.storage.messages import CassandraMessageStore
from tests.conftest import add_users, unique


async def _on_other_gateway(open_client, user: str, avoid_gateway: str) -> Connection:  # type: ignore[no-untyped-def]
    # Envoy balances round robin, so a second connection lands on the other
    # gateway; retry a few times in case other tests' connections interleave.
    for _ in range(8):
        client: Connection = await open_client(user)
        if client.hello.gateway_id != avoid_gateway:
            return client
        await client.close()
    raise AssertionError("Envoy never routed to the second gateway")


async def test_message_crosses_gateways_and_is_stored(
    cluster: LocalCluster,
    open_client,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice)
    bob_ws = await _on_other_gateway(open_client, bob, alice_ws.hello.gateway_id)
    assert {alice_ws.hello.gateway_id, bob_ws.hello.gateway_id} == {
        cluster.gateway_id(1),
        cluster.gateway_id(2),
    }

    client_msg_id = await alice_ws.send_text(to_user=bob, body="hello Bob 👋")
    ack = (await alice_ws.recv_kind("ack")).ack
    assert ack.client_msg_id == client_msg_id
    assert ack.request_id == f"r-{client_msg_id}"
    assert ack.conversation_id == direct_conversation_id(alice, bob)
    assert snowflake.timestamp_ms(ack.message_id) == ack.created_at_ms

    delivered = (await bob_ws.recv_kind("deliver")).deliver.message
    assert delivered.message_id == ack.message_id
    assert delivered.sender_user_id == alice
    assert delivered.sender_device_id == "phone"
    assert delivered.body.decode() == "hello Bob 👋"

    stored = await message_store.get(ack.conversation_id, ack.message_id)
    assert stored is not None
    assert (stored.sender_user_id, stored.client_msg_id, stored.body) == (
        alice,
        client_msg_id,
        "hello Bob 👋".encode(),
    )


async def test_resend_with_the_same_client_msg_id_yields_the_same_message(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice)
    first = await alice_ws.send_text(to_user=bob, client_msg_id="same-id")
    ack1 = (await alice_ws.recv_kind("ack")).ack
    await alice_ws.send_text(to_user=bob, client_msg_id=first)
    ack2 = (await alice_ws.recv_kind("ack")).ack
    assert ack1.message_id == ack2.message_id


async def test_history_is_readable_over_grpc(
    cluster: LocalCluster,
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice)
    acked = []
    for i in range(5):
        await alice_ws.send_text(to_user=bob, body=f"m{i}")
        acked.append((await alice_ws.recv_kind("ack")).ack.message_id)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        seen: list[int] = []
        token = ""
        while True:
            page = await stub.ListMessages(
                message_service_pb2.ListMessagesRequest(
                    requester_user_id=bob,
                    conversation_id=direct_conversation_id(alice, bob),
                    page_size=2,
                    page_token=token,
                )
            )
            seen.extend(m.message_id for m in page.messages)
            token = page.next_page_token
            if not token:
                break
    assert seen == sorted(acked, reverse=True)


async def test_the_senders_other_devices_receive_the_message_too(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    phone: Connection = await open_client(alice, "phone")
    laptop: Connection = await open_client(alice, "laptop")
    bob_ws: Connection = await open_client(bob, "tablet")
    await phone.send_text(to_user=bob, body="from my phone")
    ack = (await phone.recv_kind("ack")).ack
    on_laptop = (await laptop.recv_kind("deliver")).deliver.message
    on_bob = (await bob_ws.recv_kind("deliver")).deliver.message
    assert on_laptop.message_id == on_bob.message_id == ack.message_id
    assert on_laptop.sender_device_id == "phone"
    # The sending device has the message already (its ack): no echo.
    await phone.send_raw('{"requestId": "p", "ping": {"clientTimeMs": "1"}}')
    assert (await phone.recv()).WhichOneof("kind") == "pong"
