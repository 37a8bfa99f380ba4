"""The internal gRPC API of msgsvc: typed statuses with machine-readable reasons."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import common_pb2, message_service_pb2, message_service_pb2_grpc
from tests.conftest import add_users, unique


def _send(sender: str, **target: str) -> message_service_pb2.SendMessageRequest:
    return message_service_pb2.SendMessageRequest(
        sender_user_id=sender,
        sender_device_id="",
        client_msg_id="api-1",
        kind=common_pb2.MESSAGE_KIND_TEXT,
        body=b"from an internal team",
        **target,
    )


async def test_send_is_idempotent_and_readable(
    cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        first = await stub.SendMessage(_send(alice, to_user_id=bob))
        again = await stub.SendMessage(_send(alice, to_user_id=bob))
        assert not first.duplicate and again.duplicate
        assert again.message == first.message
        assert first.message.conversation_id == direct_conversation_id(alice, bob)
        page = await stub.ListMessages(
            message_service_pb2.ListMessagesRequest(
                requester_user_id=bob, conversation_id=first.message.conversation_id
            )
        )
        assert list(page.messages) == [first.message]
        assert page.next_page_token == ""


@pytest.mark.parametrize(
    ("request_for", "code", "reason"),
    [
        (
            lambda a, b: _send(a, to_user_id=unique("ghost")),
            grpc.StatusCode.NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            lambda a, b: _send(a, conversation_id="dnope"),
            grpc.StatusCode.NOT_FOUND,
            "CONVERSATION_NOT_FOUND",
        ),
        (lambda a, b: _send("", to_user_id=b), grpc.StatusCode.INVALID_ARGUMENT, "MISSING_SENDER"),
        (lambda a, b: _send(a), grpc.StatusCode.INVALID_ARGUMENT, "MISSING_TARGET"),
    ],
)
async def test_failures_carry_a_status_and_a_reason(
    cluster: LocalCluster,
    pg_pool: asyncpg.Pool,
    request_for,
    code: grpc.StatusCode,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.SendMessage(request_for(alice, bob))
        assert failed.value.code() == code
        assert reason_of(failed.value) == reason


async def test_history_of_someone_elses_conversation_is_not_found(
    cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        sent = await stub.SendMessage(_send(alice, to_user_id=bob))
        for page_token, reason in (
            ("", "CONVERSATION_NOT_FOUND"),
            ("not-a-token", "INVALID_PAGE_TOKEN"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.ListMessages(
                    message_service_pb2.ListMessagesRequest(
                        requester_user_id=eve if not page_token else bob,
                        conversation_id=sent.message.conversation_id,
                        page_token=page_token,
                    )
                )
            assert reason_of(failed.value) == reason


async def test_sync_receipts_and_conversation_list_over_grpc(
    cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    async with cluster.channel("msgsvc") as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        sent = [
            (
                await stub.SendMessage(
                    message_service_pb2.SendMessageRequest(
                        sender_user_id=alice,
                        client_msg_id=f"api-{i}",
                        to_user_id=bob,
                        kind=common_pb2.MESSAGE_KIND_TEXT,
                        body=b"x",
                    )
                )
            ).message
            for i in range(3)
        ]
        conversation = sent[0].conversation_id
        summary = await stub.Sync(message_service_pb2.SyncRequest(user_id=bob))
        [changed] = summary.conversations
        assert (changed.conversation_id, changed.unread_count) == (conversation, 3)
        page = await stub.SyncConversation(
            message_service_pb2.SyncConversationRequest(
                user_id=bob, conversation_id=conversation, page_size=2
            )
        )
        rest = await stub.SyncConversation(
            message_service_pb2.SyncConversationRequest(
                user_id=bob, conversation_id=conversation, page_token=page.next_page_token
            )
        )
        assert [m.message_id for m in [*page.messages, *rest.messages]] == [
            m.message_id for m in sent
        ]
        assert rest.next_page_token == ""

        marked = await stub.MarkReceipt(
            message_service_pb2.MarkReceiptRequest(
                user_id=bob,
                device_id="phone",
                conversation_id=conversation,
                kind=common_pb2.RECEIPT_KIND_READ,
                message_id=sent[1].message_id,
            )
        )
        assert marked.advanced and marked.watermark.read_message_id == sent[1].message_id
        listed = await stub.ListConversations(
            message_service_pb2.ListConversationsRequest(user_id=bob)
        )
        assert [c.unread_count for c in listed.conversations] == [1]

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.MarkReceipt(
                message_service_pb2.MarkReceiptRequest(
                    user_id=eve,
                    conversation_id=conversation,
                    kind=common_pb2.RECEIPT_KIND_READ,
                    message_id=sent[1].message_id,
                )
            )
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert reason_of(refused.value) == "CONVERSATION_NOT_FOUND"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Sync(message_service_pb2.SyncRequest(user_id=bob, cursor="nonsense"))
        assert reason_of(refused.value) == "INVALID_CURSOR"
