"""Multi-device delivery, receipts, catch-up, history and the conversation list over WebSocket."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from chatmesh import snowflake
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, SyncResult, run_sync, text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.tokens import sync_cursor
from tests.conftest import add_users, unique

DELIVERED = common_pb2.RECEIPT_KIND_DELIVERED
READ = common_pb2.RECEIPT_KIND_READ


def _cursor_in(*, days: int) -> str:
    """A well-formed cursor from the future."""
    return sync_cursor(snowflake.lowest_id_at(int(time.time() * 1000) + days * 86_400_000))


def _rid() -> str:
    return uuid.uuid4().hex[:12]


async def _send(client: Connection, to_user: str, body: str) -> client_pb2.AckFrame:
    reply = await client.request(text_send(uuid.uuid4().hex, to_user, None, body))
    assert reply.WhichOneof("kind") == "ack", reply
    return reply.ack


async def _mark(
    client: Connection, conversation: str, kind: int, message_id: int
) -> client_pb2.ServerFrame:
    return await client.request(
        client_pb2.ClientFrame(
            request_id=_rid(),
            mark=client_pb2.MarkFrame(
                conversation_id=conversation, kind=kind, message_id=message_id
            ),  # type: ignore[arg-type]
        )
    )


async def _catch_up(client: Connection, cursor: str) -> SyncResult:
    """One sync from ``cursor``, every page at the server's default size."""
    return await run_sync(client.request, cursor, page_size=0)


async def test_every_device_of_both_users_hears_messages_and_receipts(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_phone: Connection = await open_client(alice, "phone")
    alice_laptop: Connection = await open_client(alice, "laptop")
    bob_phone: Connection = await open_client(bob, "phone")
    bob_tablet: Connection = await open_client(bob, "tablet")

    ack = await _send(alice_phone, bob, "hello")  # ✓ on alice's phone
    for device in (alice_laptop, bob_phone, bob_tablet):
        assert (await device.recv_kind("deliver")).deliver.message.message_id == ack.message_id

    delivered = await _mark(bob_phone, ack.conversation_id, DELIVERED, ack.message_id)
    assert delivered.watermark.watermark.delivered_message_id == ack.message_id
    for device in (alice_phone, alice_laptop, bob_tablet):  # ✓✓ for alice; bob's other device
        event = (await device.recv_kind("watermark")).watermark
        assert event.request_id == ""
        assert (event.watermark.user_id, event.watermark.delivered_message_id) == (
            bob,
            ack.message_id,
        )
        assert event.watermark.read_message_id == 0

    await _mark(bob_tablet, ack.conversation_id, READ, ack.message_id)
    for device in (alice_phone, alice_laptop, bob_phone):  # blue ticks; read everywhere
        event = (await device.recv_kind("watermark")).watermark.watermark
        assert (event.user_id, event.read_message_id) == (bob, ack.message_id)

    # Reporting it again changes nothing and tells nobody.
    again = await _mark(bob_phone, ack.conversation_id, DELIVERED, ack.message_id)
    assert again.watermark.watermark.read_message_id == ack.message_id
    listed = (
        await bob_phone.request(
            client_pb2.ClientFrame(
                request_id=_rid(), list_conversations=client_pb2.ListConversationsFrame()
            )
        )
    ).conversation_list
    [summary] = listed.conversations
    assert summary.unread_count == 0
    assert summary.last_message.message_id == ack.message_id
    assert summary.kind == common_pb2.CONVERSATION_KIND_DIRECT


async def test_a_device_that_was_offline_catches_up_in_order_and_by_page(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    await add_users(pg_pool, alice, bob, carol)
    alice_ws: Connection = await open_client(alice, "phone")
    carol_ws: Connection = await open_client(carol, "phone")
    from_alice = [(await _send(alice_ws, bob, f"a{i}")).message_id for i in range(55)]
    from_carol = [(await _send(carol_ws, bob, f"c{i}")).message_id for i in range(3)]

    bob_ws: Connection = await open_client(bob, "laptop")
    synced = await _catch_up(bob_ws, "")
    summary, received = synced.summary, [m.message_id for m in synced.messages]
    assert not summary.gap
    assert synced.outcome.pages == 3  # pages hold at most 50: 55 from alice, 3 from carol
    # Newest activity first: carol wrote last.
    assert [c.last_message.sender_user_id for c in summary.conversations] == [carol, alice]
    assert [c.unread_count for c in summary.conversations] == [3, 55]
    assert received == from_carol + from_alice
    await bob_ws.close()

    more = [(await _send(alice_ws, bob, f"later{i}")).message_id for i in range(2)]
    bob_again: Connection = await open_client(bob, "laptop")
    caught_up = [m.message_id for m in (await _catch_up(bob_again, summary.next_cursor)).messages]
    # The window below the cursor may repeat recent messages; nothing is missing.
    assert set(more) <= set(caught_up)
    assert set(caught_up) <= set(from_alice + from_carol + more)

    history = (
        await bob_again.request(
            client_pb2.ClientFrame(
                request_id=_rid(),
                history=client_pb2.HistoryFrame(
                    conversation_id=summary.conversations[1].conversation_id, page_size=40
                ),
            )
        )
    ).history_page
    assert [m.message_id for m in history.messages] == (from_alice + more)[::-1][:40]
    assert history.next_page_token


async def test_nobody_acts_on_a_conversation_that_is_not_theirs(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    alice_ws: Connection = await open_client(alice, "phone")
    ack = await _send(alice_ws, bob, "private")
    eve_ws: Connection = await open_client(eve, "phone")
    conversation = ack.conversation_id
    attempts = [
        client_pb2.ClientFrame(
            send=client_pb2.SendFrame(
                client_msg_id="x",
                conversation_id=conversation,
                kind=common_pb2.MESSAGE_KIND_TEXT,
                body=b"let me in",
            )
        ),
        client_pb2.ClientFrame(history=client_pb2.HistoryFrame(conversation_id=conversation)),
        client_pb2.ClientFrame(
            sync_conversation=client_pb2.SyncConversationFrame(conversation_id=conversation)
        ),
        client_pb2.ClientFrame(
            mark=client_pb2.MarkFrame(
                conversation_id=conversation, kind=READ, message_id=ack.message_id
            )
        ),
    ]
    for attempt in attempts:
        attempt.request_id = _rid()
        reply = await eve_ws.request(attempt)
        assert reply.error.reason == "CONVERSATION_NOT_FOUND", attempt
        assert reply.error.code == common_pb2.ERROR_CODE_NOT_FOUND
    synced = await _catch_up(eve_ws, "")
    summary, received = synced.summary, [m.message_id for m in synced.messages]
    assert list(summary.conversations) == [] and received == []
    # Nothing changed for the members.
    bob_ws: Connection = await open_client(bob, "phone")
    [listed] = (await _catch_up(bob_ws, "")).summary.conversations
    assert listed.unread_count == 1
    assert {w.user_id: w.read_message_id for w in listed.member_watermarks}[bob] == 0


async def test_a_device_not_registered_to_the_user_cannot_send(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    stranger: Connection = await open_client(alice, "unregistered-device")
    cid = await stranger.send_text(to_user=bob, body="hi")
    error = (await stranger.recv_kind("error")).error
    assert (error.reason, error.client_msg_id) == ("DEVICE_NOT_REGISTERED", cid)
    assert error.code == common_pb2.ERROR_CODE_PERMISSION_DENIED


async def test_bad_sync_and_receipt_requests_get_typed_errors_and_change_nothing(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice, "phone")
    bob_ws: Connection = await open_client(bob, "phone")
    first = await _send(alice_ws, bob, "one")
    second = await _send(alice_ws, bob, "two")
    conversation = first.conversation_id
    await _mark(bob_ws, conversation, READ, second.message_id)
    cases = [
        (
            client_pb2.ClientFrame(sync=client_pb2.SyncFrame(cursor=_cursor_in(days=1))),
            "INVALID_CURSOR",
        ),
        (client_pb2.ClientFrame(sync=client_pb2.SyncFrame(cursor="bogus")), "INVALID_CURSOR"),
        (
            client_pb2.ClientFrame(
                sync_conversation=client_pb2.SyncConversationFrame(
                    conversation_id=conversation, page_size=51
                )
            ),
            "INVALID_PAGE_SIZE",
        ),
        (
            client_pb2.ClientFrame(
                history=client_pb2.HistoryFrame(
                    conversation_id=conversation, page_size=4_000_000_000
                )
            ),
            "INVALID_PAGE_SIZE",
        ),
        (
            client_pb2.ClientFrame(
                history=client_pb2.HistoryFrame(conversation_id=conversation, page_token="h1.zz")
            ),
            "INVALID_PAGE_TOKEN",
        ),
        (
            client_pb2.ClientFrame(
                mark=client_pb2.MarkFrame(
                    conversation_id=conversation, kind=READ, message_id=second.message_id + 1
                )
            ),
            "MESSAGE_NOT_FOUND",
        ),
        (
            client_pb2.ClientFrame(
                mark=client_pb2.MarkFrame(conversation_id=conversation, message_id=first.message_id)
            ),
            "UNKNOWN_RECEIPT_KIND",
        ),
    ]
    for frame, reason in cases:
        frame.request_id = _rid()
        reply = await bob_ws.request(frame)
        assert reply.error.reason == reason, frame
    # Negative sizes cannot even be encoded (uint32): the frame is malformed.
    await bob_ws.send_raw(
        f'{{"requestId": "neg", "history": {{"conversationId": "{conversation}", "pageSize": -1}}}}'
    )
    assert (await bob_ws.recv_kind("error")).error.reason == "MALFORMED_FRAME"
    # A watermark moved backwards is a no-op answered with the current state.
    back = await _mark(bob_ws, conversation, READ, first.message_id)
    assert back.watermark.watermark.read_message_id == second.message_id
    # The connection is still fine.
    await bob_ws.send_raw('{"requestId": "p", "ping": {"clientTimeMs": "1"}}')
    assert (await bob_ws.recv_kind("pong")).pong.client_time_ms == 1


async def test_a_device_connecting_again_closes_its_older_connection(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    token = issuer.mint(Identity(bob, "phone"), ttl_s=600)
    for old_gateway, new_gateway in ((0, 1), (1, 1)):  # across gateways, then on the same one
        old = await Connection.open(cluster.gateway_url(old_gateway), token)
        new = await Connection.open(cluster.gateway_url(new_gateway), token)
        await asyncio.wait_for(old.ws.wait_closed(), 10)
        assert old.ws.close_code == 4001
        # The newer connection is the device now: it receives.
        sender = await Connection.open(
            cluster.gateway_url(0), issuer.mint(Identity(alice, "phone"), ttl_s=600)
        )
        ack = await _send(sender, bob, "to the current connection")
        assert (await new.recv_kind("deliver")).deliver.message.message_id == ack.message_id
        await sender.close()
        await new.close()


async def test_a_burst_of_sends_is_ordered_as_the_device_sent_it(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws: Connection = await open_client(alice, "tablet")  # its first sends: nothing cached yet
    sent = [await alice_ws.send_text(to_user=bob, body=f"#{i}") for i in range(30)]
    acked: dict[str, int] = {}
    while len(acked) < len(sent):
        ack = (await alice_ws.recv_kind("ack")).ack
        acked[ack.client_msg_id] = ack.message_id
    ids = [acked[c] for c in sent]
    assert ids == sorted(ids)
