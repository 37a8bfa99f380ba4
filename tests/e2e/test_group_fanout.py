"""Big audiences through Envoy: a 500-member group, and a broadcast channel beyond it.

450 members are connected, spread over both gateways by Envoy; 50 are
offline. A member sends ten messages; the fan-out worker routes them from the
message log. Every online member's connection must receive all ten (repeats
are allowed and dropped by id, as clients do), and every offline member's
phone is pushed each of them (coalesced, at the local FCM). Then every
connected member reads the last message, and the sender's phone hears the
counts converge, about once a second.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable

import asyncpg
import grpc
import httpx
import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, run_sync, text_send
from chatmesh.devcluster import LocalCluster
from chatmesh.errors import reason_of
from chatmesh.v1 import (
    client_pb2,
    common_pb2,
    group_service_pb2,
    group_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
)
from tests.conftest import add_users, unique

MEMBERS = 500
ONLINE = 450
MESSAGES = 10
CONNECT_CONCURRENCY = 25
DELIVERY_TIMEOUT_S = 60.0
RECEIPTS_TIMEOUT_S = 30.0
CHANNEL_MEMBERS = 600  # beyond a group's limit
CHANNEL_ONLINE = 40


async def test_every_online_member_of_a_500_member_group_gets_every_message(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    tag = unique("big")
    users = [f"{tag}-{i:03d}" for i in range(MEMBERS)]
    await pg_pool.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
    sender, online, offline = users[0], users[:ONLINE], users[ONLINE:]
    # Devices of the members who connect: every request from a device
    # (their read marks too) must come from a registered one.
    await add_users(pg_pool, *online)
    push_tokens = {u: hashlib.sha256(u.encode()).hexdigest() for u in offline}
    await pg_pool.executemany(
        "INSERT INTO devices (user_id, device_id, push_platform, push_token)"
        " VALUES ($1, 'phone', 'fcm', $2)",
        list(push_tokens.items()),
    )

    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_service_pb2.CreateGroupRequest(
                actor_user_id=sender,
                group=client_pb2.CreateGroupFrame(
                    client_group_id=tag, title="Everyone", member_user_ids=users[1:]
                ),
            )
        )
    group = created.group.conversation_id
    assert len(created.group.members) == MEMBERS
    extra = f"{tag}-extra"
    await pg_pool.execute("INSERT INTO users (user_id) VALUES ($1)", extra)
    async with cluster.channel("msgsvc") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await group_service_pb2_grpc.GroupServiceStub(channel).ChangeGroup(
                group_service_pb2.ChangeGroupRequest(
                    actor_user_id=sender,
                    change=client_pb2.ChangeGroupFrame(
                        conversation_id=group,
                        add_members=client_pb2.AddMembersChange(user_ids=[extra]),
                    ),
                )
            )
    assert full.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(full.value) == "GROUP_FULL"  # the 501st member

    received: dict[str, Counter[int]] = defaultdict(Counter)

    def collector(user: str) -> Callable[[client_pb2.ServerFrame], None]:
        def on_frame(frame: client_pb2.ServerFrame) -> None:
            if frame.WhichOneof("kind") == "deliver":
                received[user][frame.deliver.message.message_id] += 1

        return on_frame

    slots = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(user: str, device: str, *, listen: bool = True) -> Connection:
        async with slots:
            token = issuer.mint(Identity(user, device), ttl_s=600)
            dispatch = collector(user) if listen else None  # else frames queue for recv
            return await Connection.open(cluster.edge_url, token, dispatch=dispatch)

    # The sender's phone sends; every online member (the sender's laptop
    # included) listens, spread over both gateways by Envoy's round robin.
    listeners = await asyncio.gather(
        *(connect(u, "laptop" if u == sender else "phone") for u in online)
    )
    phone = await connect(sender, "phone", listen=False)
    try:
        gateways = Counter(c.hello.gateway_id for c in listeners)
        assert set(gateways) == {cluster.gateway_id(1), cluster.gateway_id(2)}
        assert min(gateways.values()) >= ONLINE // 3

        acked = []
        for i in range(MESSAGES):
            reply = await phone.request(text_send(f"{tag}-m{i}", None, group, f"to all #{i}"))
            assert reply.WhichOneof("kind") == "ack", reply
            acked.append(reply.ack.message_id)
        # The creation went out before anyone connected: devices get it by sync.
        expected = set(acked)

        deadline = asyncio.get_running_loop().time() + DELIVERY_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            if all(expected <= set(received[u]) for u in online):
                break
            await asyncio.sleep(0.2)
        missing = {u: sorted(expected - set(received[u])) for u in online}
        missing = {u: ids for u, ids in missing.items() if ids}
        assert not missing, (
            f"{len(missing)} members lack messages, e.g. {list(missing.items())[:3]}"
        )
        assert all(set(received[u]) - {created.event.message_id} == expected for u in online)
        repeats = sum(n - 1 for u in online for n in received[u].values())
        print(f"\n{ONLINE} members x {len(expected)} messages, {repeats} repeats dropped by id")

        # Every connected member reads the last message; the sender's phone
        # hears counts, not 449 watermark events, and they converge.
        last = acked[-1]
        readers = [c for c in listeners if c.hello.user_id != sender]
        marks = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def read(member: Connection) -> None:
            async with marks:
                reply = await member.request(
                    client_pb2.ClientFrame(
                        mark=client_pb2.MarkFrame(
                            conversation_id=group,
                            kind=common_pb2.RECEIPT_KIND_READ,
                            message_id=last,
                        )
                    )
                )
                assert reply.WhichOneof("kind") == "watermark", reply

        await asyncio.gather(*(read(m) for m in readers))
        final = common_pb2.ReceiptCounts(
            message_id=last, recipients=MEMBERS - 1, delivered=len(readers), read=len(readers)
        )
        counts_seen = 0
        while True:
            frame = await phone.recv_kind("receipt_counts", timeout_s=RECEIPTS_TIMEOUT_S)
            counts_seen += 1
            newest = {c.message_id: c for c in frame.receipt_counts.counts}.get(last)
            if newest == final:
                break
        assert counts_seen <= 2 * RECEIPTS_TIMEOUT_S  # about one a second, not one a receipt
        details = await phone.request(
            client_pb2.ClientFrame(
                get_receipts=client_pb2.GetReceiptsFrame(conversation_id=group, message_id=last)
            )
        )
        assert details.receipt_details.counts == final
        read_by = {m.user_id for m in details.receipt_details.members if m.read}
        assert read_by == {c.hello.user_id for c in readers}
        assert len(details.receipt_details.members) == MEMBERS - 1
    finally:
        await asyncio.gather(*(c.close() for c in [*listeners, phone]))

    by_token = {token: user for user, token in push_tokens.items()}
    pushed: dict[str, set[int]] = defaultdict(set)
    async with httpx.AsyncClient(base_url=cluster.push_control_url) as providers:
        for _ in range(int(DELIVERY_TIMEOUT_S * 10)):
            pushed.clear()
            for p in (await providers.get("/pushes")).json()["pushes"]:
                if p["key"] in by_token and p["data"]["conversation_id"] == group:
                    ids = p["data"]["message_ids"].split(",")
                    pushed[by_token[p["key"]]].update(int(m) for m in ids)
            if all(pushed[u] == set(acked) for u in offline):
                break
            await asyncio.sleep(0.1)
    assert {u: pushed[u] for u in offline} == {u: set(acked) for u in offline}


async def test_a_broadcast_channel_beyond_500_nudges_its_members_who_read_on_open(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    tag = unique("chan")
    users = [f"{tag}-{i:03d}" for i in range(CHANNEL_MEMBERS)]
    await pg_pool.executemany("INSERT INTO users (user_id) VALUES ($1)", [(u,) for u in users])
    owner, online = users[0], users[1 : 1 + CHANNEL_ONLINE]
    await add_users(pg_pool, online[0])  # registers its devices: it tries to post
    async with cluster.channel("msgsvc") as channel:
        created = await group_service_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_service_pb2.CreateGroupRequest(
                actor_user_id=owner,
                group=client_pb2.CreateGroupFrame(
                    client_group_id=tag,
                    title="Announcements",
                    member_user_ids=users[1:],
                    kind=common_pb2.CONVERSATION_KIND_CHANNEL,
                ),
            )
        )
    channel_id = created.group.conversation_id
    assert created.group.kind == common_pb2.CONVERSATION_KIND_CHANNEL
    assert len(created.group.members) == CHANNEL_MEMBERS

    def token(user: str) -> str:
        return issuer.mint(Identity(user, "phone"), ttl_s=600)

    readers = await asyncio.gather(*(Connection.open(cluster.edge_url, token(u)) for u in online))
    try:
        posts = []
        async with cluster.channel("msgsvc") as channel:
            stub = message_service_pb2_grpc.MessageServiceStub(channel)
            for i in range(5):
                sent = await stub.SendMessage(
                    message_service_pb2.SendMessageRequest(
                        sender_user_id=owner,
                        client_msg_id=f"{tag}-p{i}",
                        conversation_id=channel_id,
                        kind=common_pb2.MESSAGE_KIND_TEXT,
                        body=f"announcement {i}".encode(),
                    )
                )
                posts.append(sent.message.message_id)
        # Each online member is nudged (not delivered each post) and reaches
        # the newest post within a couple of nudges.
        for reader in readers:
            newest = 0
            while newest < posts[-1]:
                frame = await reader.recv_kind("channel_activity", timeout_s=15)
                (activity,) = frame.channel_activity.channels
                assert activity.conversation_id == channel_id
                newest = activity.last_message_id
        # A member reads the channel on opening it.
        opened = await run_sync(readers[0].request, "")
        assert set(posts) <= {m.message_id for m in opened.messages}
        refused = await readers[0].request(text_send(f"{tag}-x", None, channel_id, "me too"))
        assert refused.error.reason == "NOT_CHANNEL_ADMIN"
        for reader in readers:
            kinds = {f.WhichOneof("kind") for f in await _queued(reader)}
            assert "deliver" not in kinds, "a channel post was delivered instead of nudged"
    finally:
        await asyncio.gather(*(r.close() for r in readers))


async def _queued(connection: Connection) -> list[client_pb2.ServerFrame]:
    """Frames that arrived and were not read yet, without waiting for more."""
    frames = []
    while True:
        try:
            frames.append(await connection.recv(timeout_s=0.05))
        except TimeoutError:
            return frames
