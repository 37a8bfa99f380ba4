"""A client_msg_id is scoped to the sending device, through Envoy and over gRPC.

The scenario of a client that numbers its sends per device (``m1``, ``m2``,
...): two devices of one user both send ``m1``. Both messages are stored,
delivered and in history, each with its own id.
"""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from chatmesh.client import Connection
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import client_pb2, common_pb2, message_service_pb2, message_service_pb2_grpc
from msgsvc.model import MAX_CLIENT_MSG_ID_CHARS
from msgsvc.storage.messages import CassandraMessageStore
from tests.conftest import add_users, unique


async def _history(client: Connection, conversation_id: str) -> list[common_pb2.Message]:
    reply = await client.request(
        client_pb2.ClientFrame(
            request_id="h", history=client_pb2.HistoryFrame(conversation_id=conversation_id)
        )
    )
    assert reply.WhichOneof("kind") == "history_page", reply
    return list(reply.history_page.messages)


async def _deliveries(client: Connection, count: int) -> dict[int, common_pb2.Message]:
    found: dict[int, common_pb2.Message] = {}
    while len(found) < count:
        message = (await client.recv_kind("deliver")).deliver.message
        found[message.message_id] = message
    return found


async def test_two_devices_sending_m1_both_have_their_message_stored_and_delivered(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    phone: Connection = await open_client(alice, "phone")
    laptop: Connection = await open_client(alice, "laptop")
    bob_ws: Connection = await open_client(bob, "tablet")
    assert cluster.edge_url.startswith("ws://")  # the clients go through Envoy

    await phone.send_text(to_user=bob, client_msg_id="m1", body="from phone")
    from_phone = (await phone.recv_kind("ack")).ack
    # Each of Alice's devices receives the other's message.
    assert (await laptop.recv_kind("deliver")).deliver.message.message_id == from_phone.message_id
    await laptop.send_text(to_user=bob, client_msg_id="m1", body="from laptop")
    from_laptop = (await laptop.recv_kind("ack")).ack
    assert (await phone.recv_kind("deliver")).deliver.message.message_id == from_laptop.message_id
    assert from_phone.client_msg_id == from_laptop.client_msg_id == "m1"
    assert from_phone.message_id != from_laptop.message_id
    conversation_id = from_phone.conversation_id

    on_bob = await _deliveries(bob_ws, 2)
    assert {(m.sender_device_id, m.body) for m in on_bob.values()} == {
        ("phone", b"from phone"),
        ("laptop", b"from laptop"),
    }
    assert set(on_bob) == {from_phone.message_id, from_laptop.message_id}

    history = await _history(bob_ws, conversation_id)
    assert [(m.message_id, m.sender_device_id, m.body) for m in history] == [
        (from_laptop.message_id, "laptop", b"from laptop"),
        (from_phone.message_id, "phone", b"from phone"),
    ]

    # A resend from the same device is the same message.
    await phone.send_text(to_user=bob, client_msg_id="m1", body="from phone")
    assert (await phone.recv_kind("ack")).ack.message_id == from_phone.message_id
    for ack in (from_phone, from_laptop):
        stored = await message_store.get(conversation_id, ack.message_id)
        assert stored is not None and stored.client_msg_id == "m1"
    assert len(await _history(bob_ws, conversation_id)) == 2


async def test_the_same_id_with_other_content_is_refused_and_nothing_changes(
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    await add_users(pg_pool, alice, bob, carol)
    phone: Connection = await open_client(alice, "phone")
    await phone.send_text(to_user=bob, client_msg_id="m1", body="original")
    first = (await phone.recv_kind("ack")).ack

    for target, body in ((bob, "edited"), (carol, "original")):
        await phone.send_text(to_user=target, client_msg_id="m1", body=body)
        error = (await phone.recv_kind("error")).error
        assert error.code == common_pb2.ERROR_CODE_INVALID_ARGUMENT
        assert (error.reason, error.client_msg_id) == ("CLIENT_MSG_ID_REUSED", "m1")

    history = await _history(phone, first.conversation_id)
    assert [(m.message_id, m.body) for m in history] == [(first.message_id, b"original")]
    listed = await phone.request(
        client_pb2.ClientFrame(
            request_id="l", list_conversations=client_pb2.ListConversationsFrame()
        )
    )
    assert [c.conversation_id for c in listed.conversation_list.conversations] == [
        first.conversation_id
    ]


async def test_ids_at_the_length_limit_work_and_longer_ones_are_refused(
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    phone: Connection = await open_client(alice, "phone")
    longest = "💬" * MAX_CLIENT_MSG_ID_CHARS
    await phone.send_text(to_user=bob, client_msg_id=longest)
    first = (await phone.recv_kind("ack")).ack
    await phone.send_text(to_user=bob, client_msg_id=longest)
    assert (await phone.recv_kind("ack")).ack.message_id == first.message_id
    await phone.send_text(to_user=bob, client_msg_id=longest + "x")
    error = (await phone.recv_kind("error")).error
    assert error.reason == "CLIENT_MSG_ID_TOO_LONG"
    assert [m.message_id for m in await _history(phone, first.conversation_id)] == [
        first.message_id
    ]


def _service_send(sender: str, to: str, body: bytes) -> message_service_pb2.SendMessageRequest:
    return message_service_pb2.SendMessageRequest(
        sender_user_id=sender,
        sender_device_id="",
        client_msg_id="m1",
        to_user_id=to,
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=body,
    )


async def test_a_send_without_a_device_has_the_service_scope(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    phone: Connection = await open_client(alice, "phone")
    await phone.send_text(to_user=bob, client_msg_id="m1", body="from phone")
    from_phone = (await phone.recv_kind("ack")).ack
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        first = await stub.SendMessage(_service_send(alice, bob, b"reminder"))
        again = await stub.SendMessage(_service_send(alice, bob, b"reminder"))
        assert not first.duplicate and again.duplicate and again.message == first.message
        assert first.message.message_id != from_phone.message_id
        assert first.message.sender_device_id == ""
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SendMessage(_service_send(alice, bob, b"another reminder"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason_of(refused.value) == "CLIENT_MSG_ID_REUSED"
        page = await stub.ListMessages(
            message_service_pb2.ListMessagesRequest(
                requester_user_id=bob, conversation_id=from_phone.conversation_id
            )
        )
    assert [(m.sender_device_id, m.body) for m in page.messages] == [
        ("", b"reminder"),
        ("phone", b"from phone"),
    ]
