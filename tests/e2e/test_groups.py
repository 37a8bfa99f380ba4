"""Groups over WebSocket through Envoy, and over gRPC: changes are messages everyone sees."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from chatmesh.client import Connection, text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import client_pb2, common_pb2, group_service_pb2, group_service_pb2_grpc
from tests.conftest import add_users, unique

ADMIN = common_pb2.MEMBER_ROLE_ADMIN
MEMBER = common_pb2.MEMBER_ROLE_MEMBER
QUIET_S = 0.5  # long enough for a delivery that should not come


def _change(conversation_id: str, **change: object) -> client_pb2.ClientFrame:
    return client_pb2.ClientFrame(
        change_group=client_pb2.ChangeGroupFrame(conversation_id=conversation_id, **change)  # type: ignore[arg-type]
    )


async def _nothing_delivered(client: Connection) -> None:
    with pytest.raises(TimeoutError):
        await client.recv_kind("deliver", timeout_s=QUIET_S)


async def test_a_group_over_websocket_from_creation_to_removal(
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    ann_ws: Connection = await open_client(ann)
    ben_ws: Connection = await open_client(ben)
    cat_ws: Connection = await open_client(cat)

    reply = await ann_ws.request(
        client_pb2.ClientFrame(
            create_group=client_pb2.CreateGroupFrame(
                client_group_id="hike", title="Hikers", member_user_ids=[ben, cat]
            )
        )
    )
    assert reply.WhichOneof("kind") == "group", reply
    group = reply.group.group
    assert {(m.user_id, m.role) for m in group.members} == {
        (ann, ADMIN),
        (ben, MEMBER),
        (cat, MEMBER),
    }
    created = reply.group.event
    assert created.kind == common_pb2.MESSAGE_KIND_SYSTEM
    assert created.system.group_created.title == "Hikers"
    for member in (ben_ws, cat_ws):
        event = (await member.recv_kind("deliver")).deliver.message
        assert event.message_id == created.message_id
        assert list(event.system.group_created.member_user_ids) == sorted((ann, ben, cat))

    ack = await ann_ws.request(text_send("m1", None, group.conversation_id, "welcome"))
    assert ack.WhichOneof("kind") == "ack"
    for member in (ben_ws, cat_ws):
        assert (await member.recv_kind("deliver")).deliver.message.body == b"welcome"

    removed = await ann_ws.request(
        _change(group.conversation_id, remove_member=client_pb2.RemoveMemberChange(user_id=cat))
    )
    removal = removed.group.event
    assert removal.system.member_removed.user_id == cat
    told = (await cat_ws.recv_kind("deliver")).deliver.message
    assert told.message_id == removal.message_id  # she learns she was removed
    assert (await ben_ws.recv_kind("deliver")).deliver.message.message_id == removal.message_id

    await ann_ws.request(text_send("m2", None, group.conversation_id, "without cat"))
    assert (await ben_ws.recv_kind("deliver")).deliver.message.body == b"without cat"
    await _nothing_delivered(cat_ws)
    refused = await cat_ws.request(text_send("m3", None, group.conversation_id, "still here?"))
    assert refused.error.reason == "CONVERSATION_NOT_FOUND"
    history = await cat_ws.request(
        client_pb2.ClientFrame(
            history=client_pb2.HistoryFrame(conversation_id=group.conversation_id)
        )
    )
    assert history.error.reason == "CONVERSATION_NOT_FOUND"


async def test_bad_changes_get_typed_errors_and_the_connection_stays(
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    ann_ws: Connection = await open_client(ann)
    ben_ws: Connection = await open_client(ben)
    created = await ann_ws.request(
        client_pb2.ClientFrame(
            create_group=client_pb2.CreateGroupFrame(
                client_group_id="g", title="T", member_user_ids=[ben]
            )
        )
    )
    group_id = created.group.group.conversation_id
    attempts = [
        (ben_ws, {"rename": client_pb2.RenameGroupChange(title="Mine")}, "NOT_GROUP_ADMIN"),
        (ben_ws, {"remove_member": client_pb2.RemoveMemberChange(user_id=ann)}, "NOT_GROUP_ADMIN"),
        (ann_ws, {"add_members": client_pb2.AddMembersChange(user_ids=[ben])}, "ALREADY_MEMBER"),
        (ann_ws, {"rename": client_pb2.RenameGroupChange(title="t" * 101)}, "TITLE_TOO_LONG"),
        (
            ann_ws,
            {"add_members": client_pb2.AddMembersChange(user_ids=[unique("ghost")])},
            "USER_NOT_FOUND",
        ),
        (ann_ws, {}, "MISSING_CHANGE"),
    ]
    for client, change, reason in attempts:
        reply = await client.request(_change(group_id, **change))
        assert reply.WhichOneof("kind") == "error", reply
        assert reply.error.reason == reason
    codes = {
        "NOT_GROUP_ADMIN": common_pb2.ERROR_CODE_PERMISSION_DENIED,
        "ALREADY_MEMBER": common_pb2.ERROR_CODE_ALREADY_EXISTS,
    }
    reply = await ann_ws.request(
        _change(group_id, add_members=client_pb2.AddMembersChange(user_ids=[ben]))
    )
    assert reply.error.code == codes[reply.error.reason]
    # Nothing changed, and both connections still work.
    for client in (ann_ws, ben_ws):
        again = await client.request(
            client_pb2.ClientFrame(get_group=client_pb2.GetGroupFrame(conversation_id=group_id))
        )
        assert again.group.group.title == "T"
        assert [m.user_id for m in again.group.group.members] == sorted((ann, ben))


async def test_group_service_over_grpc(cluster: LocalCluster, pg_pool: asyncpg.Pool) -> None:
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    async with cluster.channel("msgsvc") as channel:
        stub = group_service_pb2_grpc.GroupServiceStub(channel)
        created = await stub.CreateGroup(
            group_service_pb2.CreateGroupRequest(
                actor_user_id=ann,
                group=client_pb2.CreateGroupFrame(
                    client_group_id="ops", title="Ops", member_user_ids=[ben]
                ),
            )
        )
        group_id = created.group.conversation_id
        added = await stub.ChangeGroup(
            group_service_pb2.ChangeGroupRequest(
                actor_user_id=ann,
                change=_change(
                    group_id, add_members=client_pb2.AddMembersChange(user_ids=[cat])
                ).change_group,
            )
        )
        assert list(added.event.system.members_added.user_ids) == [cat]
        assert [m.user_id for m in added.group.members] == sorted((ann, ben, cat))
        for request, status, reason in [
            (
                group_service_pb2.ChangeGroupRequest(
                    actor_user_id=ann,
                    change=_change(
                        group_id, add_members=client_pb2.AddMembersChange(user_ids=[cat])
                    ).change_group,
                ),
                grpc.StatusCode.ALREADY_EXISTS,
                "ALREADY_MEMBER",
            ),
            (
                group_service_pb2.ChangeGroupRequest(
                    actor_user_id=ann,
                    change=_change(
                        group_id, set_role=client_pb2.SetRoleChange(user_id=ann, role=MEMBER)
                    ).change_group,
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "LAST_ADMIN",
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.ChangeGroup(request)
            assert failed.value.code() == status
            assert reason_of(failed.value) == reason
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await stub.GetGroup(
                group_service_pb2.GetGroupRequest(
                    requester_user_id=unique("eve"), conversation_id=group_id
                )
            )
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        got = await stub.GetGroup(
            group_service_pb2.GetGroupRequest(requester_user_id=cat, conversation_id=group_id)
        )
        assert got.group.title == "Ops" and got.group.max_members == 500


async def test_after_leaving_a_member_can_neither_send_nor_read(
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    ann_ws: Connection = await open_client(ann)
    ben_ws: Connection = await open_client(ben)
    created = await ann_ws.request(
        client_pb2.ClientFrame(
            create_group=client_pb2.CreateGroupFrame(
                client_group_id="l", title="L", member_user_ids=[ben]
            )
        )
    )
    group_id = created.group.group.conversation_id
    left = await ben_ws.request(_change(group_id, leave=client_pb2.LeaveGroupChange()))
    assert left.group.event.system.WhichOneof("event") == "member_left"
    for frame in (
        text_send("after", None, group_id, "still here?"),
        client_pb2.ClientFrame(history=client_pb2.HistoryFrame(conversation_id=group_id)),
        client_pb2.ClientFrame(
            sync_conversation=client_pb2.SyncConversationFrame(conversation_id=group_id)
        ),
        client_pb2.ClientFrame(get_group=client_pb2.GetGroupFrame(conversation_id=group_id)),
    ):
        reply = await ben_ws.request(frame)
        assert reply.error.reason == "CONVERSATION_NOT_FOUND", reply
    # Ann's group goes on without him; his connection is fine.
    again = await ann_ws.request(
        client_pb2.ClientFrame(get_group=client_pb2.GetGroupFrame(conversation_id=group_id))
    )
    assert [m.user_id for m in again.group.group.members] == [ann]
    await ben_ws.send_raw('{"requestId": "p", "ping": {"clientTimeMs": "1"}}')
    assert (await ben_ws.recv_kind("pong")).pong.client_time_ms == 1
