"""Sync that leaves out what the device holds, over WebSocket through Envoy and
the gateways to msgsvc, every service its own process."""

from __future__ import annotations

import json
import uuid

import asyncpg

from chatmesh.client import Connection, run_sync
from chatmesh.client.store import MessageStore
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.sync import MAX_HELD_IDS
from tests.conftest import add_users, unique


async def _still_usable(client: Connection) -> None:
    await client.send_raw('{"requestId": "p", "ping": {"clientTimeMs": "42"}}')
    assert (await client.recv_kind("pong")).pong.client_time_ms == 42


async def test_a_reconnecting_device_is_not_sent_what_it_holds_but_gets_what_it_missed(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice, "phone")
    bob_ws: Connection = await open_client(bob, "phone")
    held = MessageStore()
    cursor = (await run_sync(bob_ws.request, "", held=held.held_ids)).next_cursor
    live = []
    for i in range(5):
        await alice_ws.send_text(to_user=bob, body=f"live {i}")
        delivered = (await bob_ws.recv_kind("deliver")).deliver.message
        held.add(delivered)
        live.append(delivered.message_id)
    await bob_ws.close()
    missed = [(await alice_ws.request(_text(bob, "while away"))).ack.message_id]

    bob_again: Connection = await open_client(bob, "phone")
    named = await run_sync(bob_again.request, cursor, held=held.held_ids)
    assert [m.message_id for m in named.messages] == missed
    # The same sync without naming them: the window sends everything again.
    unnamed = await run_sync(bob_again.request, cursor)
    assert [m.message_id for m in unnamed.messages] == live + missed


async def test_bad_held_ids_get_typed_errors_and_the_connection_stays(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    await add_users(pg_pool, alice, bob, carol)
    alice_ws: Connection = await open_client(alice, "phone")
    ack = (await alice_ws.request(_text(bob, "hi"))).ack
    bob_ws: Connection = await open_client(bob, "phone")

    def page(held: object) -> str:
        frame = {"conversationId": ack.conversation_id, "heldMessageIds": held}
        return json.dumps({"requestId": uuid.uuid4().hex, "syncConversation": frame})

    for garbage in (["abc"], ["-1"], "12", [{"id": 1}], [str(2**64)]):
        await bob_ws.send_raw(page(garbage))
        error = (await bob_ws.recv_kind("error")).error
        assert (error.code, error.reason) == (
            common_pb2.ERROR_CODE_INVALID_ARGUMENT,
            "MALFORMED_FRAME",
        ), garbage
        await _still_usable(bob_ws)

    too_many = client_pb2.ClientFrame(
        sync_conversation=client_pb2.SyncConversationFrame(
            conversation_id=ack.conversation_id,
            held_message_ids=range(1, MAX_HELD_IDS + 2),
        )
    )
    error = (await bob_ws.request(too_many)).error
    assert (error.code, error.reason) == (
        common_pb2.ERROR_CODE_INVALID_ARGUMENT,
        "TOO_MANY_HELD_IDS",
    )
    await _still_usable(bob_ws)
    # Ids of a conversation bob is not in, and ids that are no message, match nothing.
    other = (await alice_ws.request(_text(carol, "elsewhere"))).ack
    assert other.message_id > ack.message_id
    odd = client_pb2.ClientFrame(
        sync_conversation=client_pb2.SyncConversationFrame(
            conversation_id=ack.conversation_id, held_message_ids=[other.message_id, 0, 2**64 - 1]
        )
    )
    assert [m.message_id for m in (await bob_ws.request(odd)).sync_page.messages] == [
        ack.message_id
    ]


def _text(to_user: str, body: str) -> client_pb2.ClientFrame:
    return client_pb2.ClientFrame(
        send=client_pb2.SendFrame(
            client_msg_id=uuid.uuid4().hex,
            to_user_id=to_user,
            kind=common_pb2.MESSAGE_KIND_TEXT,
            body=body.encode(),
        )
    )
