"""Typing indicators through the edge: told live to the other members'
devices, never answered, throttled per device and coalesced in large groups."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from chatmesh.client import Connection, text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.v1 import client_pb2, common_pb2, group_service_pb2, group_service_pb2_grpc
from msgsvc.typing_activity import COALESCE_ABOVE_MEMBERS, TTL_MS
from tests.conftest import add_users, unique

OpenClient = Callable[..., Awaitable[Connection]]
QUIET_S = 0.8  # long enough for a frame that should not come


def typing(conversation_id: str, on: bool = True, request_id: str = "") -> client_pb2.ClientFrame:
    return client_pb2.ClientFrame(
        request_id=request_id,
        typing=client_pb2.TypingFrame(conversation_id=conversation_id, typing=on),
    )


async def activity(client: Connection) -> client_pb2.TypingActivityFrame:
    return (await client.recv_kind("typing_activity")).typing_activity


async def gathered(client: Connection, seconds: float) -> list[client_pb2.ServerFrame]:
    """Every unmatched frame that arrives within ``seconds``."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await client.recv(timeout_s=left))
        except TimeoutError:
            break
    return frames


def activities(frames: list[client_pb2.ServerFrame]) -> list[client_pb2.TypingActivityFrame]:
    return [f.typing_activity for f in frames if f.WhichOneof("kind") == "typing_activity"]


async def nothing_arrives(client: Connection) -> None:
    with pytest.raises(TimeoutError):
        frame = await client.recv(timeout_s=QUIET_S)
        print("unexpected frame:", frame)


async def no_typing_nor_error(client: Connection) -> None:
    """Whatever else arrives meanwhile (a channel's nudge), none of these."""
    kinds = [f.WhichOneof("kind") for f in await gathered(client, QUIET_S)]
    assert "typing_activity" not in kinds and "error" not in kinds, kinds


async def chat(client: Connection, to_user: str) -> str:
    """The 1:1 conversation with ``to_user``, made to exist by a message."""
    ack = await client.request(text_send(uuid.uuid4().hex, to_user, None, "hi"))
    assert ack.WhichOneof("kind") == "ack", ack
    return ack.ack.conversation_id


async def test_typing_in_a_chat_reaches_the_other_users_devices_only(
    open_client: OpenClient, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_phone = await open_client(alice, "phone")
    alice_laptop = await open_client(alice, "laptop")
    bob_phone = await open_client(bob, "phone")
    bob_tablet = await open_client(bob, "tablet")
    conversation = await chat(alice_phone, bob)
    for device in (alice_laptop, bob_phone, bob_tablet):
        await device.recv_kind("deliver")

    await alice_phone.send(typing(conversation, request_id="t1"))
    for device in (bob_phone, bob_tablet):
        started = await activity(device)
        assert started.conversation_id == conversation
        assert list(started.typing_user_ids) == [alice]
        assert list(started.stopped_user_ids) == []
        assert started.ttl_ms == TTL_MS
    # No answer to the typist, and nothing to her other device.
    await nothing_arrives(alice_phone)
    await nothing_arrives(alice_laptop)

    await alice_phone.send(typing(conversation, on=False))
    for device in (bob_phone, bob_tablet):
        stopped = await activity(device)
        assert stopped.conversation_id == conversation
        assert (list(stopped.typing_user_ids), list(stopped.stopped_user_ids)) == ([], [alice])
        assert stopped.ttl_ms == TTL_MS
    # Bob types back from his tablet: Alice's devices hear it, his phone does not.
    await bob_tablet.send(typing(conversation))
    for device in (alice_phone, alice_laptop):
        assert list((await activity(device)).typing_user_ids) == [bob]
    await nothing_arrives(bob_phone)
    await nothing_arrives(bob_tablet)


async def test_typing_where_one_is_not_a_member_is_refused_and_the_connection_carries_on(
    open_client: OpenClient, pg_pool: asyncpg.Pool
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    alice_ws = await open_client(alice)
    bob_ws = await open_client(bob)
    eve_ws = await open_client(eve)
    conversation = await chat(alice_ws, bob)
    await bob_ws.recv_kind("deliver")

    for target in (conversation, "no-such-conversation"):
        refused = await eve_ws.request(typing(target))
        assert refused.WhichOneof("kind") == "error", refused
        assert refused.error.code == common_pb2.ERROR_CODE_NOT_FOUND
        assert refused.error.reason == "CONVERSATION_NOT_FOUND"
    missing = await eve_ws.request(typing(""))
    assert missing.error.reason == "MISSING_CONVERSATION_ID"
    await nothing_arrives(bob_ws)
    await nothing_arrives(alice_ws)
    # Eve's connection is as good as before.
    ack = await eve_ws.request(text_send(uuid.uuid4().hex, alice, None, "hello?"))
    assert ack.WhichOneof("kind") == "ack", ack
    await eve_ws.send(typing(ack.ack.conversation_id))
    assert list((await activity(alice_ws)).typing_user_ids) == [eve]


async def test_a_burst_of_typing_from_one_device_is_told_once(
    open_client: OpenClient, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws = await open_client(alice)
    bob_ws = await open_client(bob)
    conversation = await chat(alice_ws, bob)
    await bob_ws.recv_kind("deliver")

    started = time.monotonic()
    for _ in range(20):
        await alice_ws.send(typing(conversation))
        await asyncio.sleep(0.04)
    assert time.monotonic() - started < 1.0
    told = activities(await gathered(bob_ws, 2.0))
    assert 1 <= len(told) <= 2, told
    assert all(list(t.typing_user_ids) == [alice] for t in told)
    # Dropped silently: the typist heard nothing, and still sends.
    await nothing_arrives(alice_ws)
    ack = await alice_ws.request(text_send(uuid.uuid4().hex, bob, None, "done typing"))
    assert ack.WhichOneof("kind") == "ack", ack


async def test_typing_in_a_large_group_is_gathered_into_few_frames(
    open_client: OpenClient, pg_pool: asyncpg.Pool
) -> None:
    users = [unique(f"m{i:02}") for i in range(COALESCE_ABOVE_MEMBERS + 5)]
    await add_users(pg_pool, *users)
    owner, watcher, typists = users[0], users[1], users[2:7]
    owner_ws = await open_client(owner)
    created = await owner_ws.request(
        client_pb2.ClientFrame(
            create_group=client_pb2.CreateGroupFrame(
                client_group_id=unique("big"), title="Big", member_user_ids=users[1:]
            )
        )
    )
    assert created.WhichOneof("kind") == "group", created
    group = created.group.group.conversation_id
    watcher_ws = await open_client(watcher)
    typist_ws = [await open_client(u) for u in typists]

    await asyncio.gather(*(ws.send(typing(group)) for ws in typist_ws))
    seen = activities(await gathered(watcher_ws, 3.0))
    assert {u for a in seen for u in a.typing_user_ids} == set(typists)
    assert 1 <= len(seen) <= 2, seen  # one frame a window, not one a typist
    assert all(a.conversation_id == group and a.ttl_ms == TTL_MS for a in seen)
    assert all(not a.stopped_user_ids for a in seen)
    # A typist hears the others, never itself.
    heard = activities(await gathered(typist_ws[0], 0.5))
    assert {u for a in heard for u in a.typing_user_ids} == set(typists[1:])
    owner_heard = activities(await gathered(owner_ws, 0.5))
    assert {u for a in owner_heard for u in a.typing_user_ids} == set(typists)

    await asyncio.gather(*(ws.send(typing(group, on=False)) for ws in typist_ws[:3]))
    stopped = activities(await gathered(watcher_ws, 3.0))
    assert 1 <= len(stopped) <= 2, stopped
    assert {u for a in stopped for u in a.stopped_user_ids} == set(typists[:3])
    assert not any(a.typing_user_ids for a in stopped)


async def test_in_a_channel_only_the_admins_typing_is_told(
    cluster: LocalCluster, open_client: OpenClient, pg_pool: asyncpg.Pool
) -> None:
    admin, reader, other = unique("admin"), unique("reader"), unique("other")
    await add_users(pg_pool, admin, reader, other)
    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_service_pb2.CreateGroupRequest(
                actor_user_id=admin,
                group=client_pb2.CreateGroupFrame(
                    client_group_id=unique("news"),
                    title="News",
                    member_user_ids=[reader, other],
                    kind=common_pb2.CONVERSATION_KIND_CHANNEL,
                ),
            )
        )
    channel_id = created.group.conversation_id
    admin_ws = await open_client(admin)
    reader_ws = await open_client(reader)
    other_ws = await open_client(other)

    # A reader cannot post, so its typing means nothing: dropped, not refused.
    await reader_ws.send(typing(channel_id, request_id="r1"))
    for member in (reader_ws, admin_ws, other_ws):
        await no_typing_nor_error(member)

    await admin_ws.send(typing(channel_id))
    for member in (reader_ws, other_ws):
        told = await activity(member)
        assert (told.conversation_id, list(told.typing_user_ids)) == (channel_id, [admin])
