"""Multi-node stores in states short of whole: services start with a node of
each store down and serve; a Redis slot nobody serves and a message log
below its minimum of in-sync replicas refuse exactly the work that needs
them, as UNAVAILABLE with a reason clients retry on, and that work goes
through once the nodes are back. No service exits meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.client.connection import text_send
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.v1 import client_pb2, common_pb2
from tests.conftest import Stores, add_users, unique
from tests.multinode import nodes
from tests.support.chaos import create_group

pytestmark = pytest.mark.multinode

REPLY_TIMEOUT_S = 15.0  # past the message log's delivery timeout (5 s)
HEAL_TIMEOUT_S = 60.0
UNAVAILABLE = common_pb2.ERROR_CODE_UNAVAILABLE


@pytest.fixture(scope="module")
def started_degraded(
    stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalCluster, list[str]]]:
    """A cluster whose services started while a Cassandra node, a Kafka
    broker and a Redis primary were down (its replica promoted meanwhile)."""
    assert stores.redis_cluster, "run with the multi-node stores' environment (make test-multinode)"
    config = ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("degraded"), "degraded")
    # The services' Redis users go to every node while all are up (a
    # production cluster's nodes load them from their config).
    LocalCluster(config).prepare()
    down = [nodes.cassandra(2), nodes.kafka(3), nodes.redis_primary("anything")]
    for node in down:
        node.kill()
    try:
        with LocalCluster.running(config) as cluster:
            yield cluster, [n.name for n in down]
    finally:
        nodes.bring_back()


def _issuer(cluster: LocalCluster) -> TokenIssuer:
    return TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())


async def _open(cluster: LocalCluster, user: str) -> Connection:
    token = _issuer(cluster).mint(Identity(user, "phone"), ttl_s=600)
    return await Connection.open(cluster.edge_url, token)


async def _send(
    conn: Connection, client_msg_id: str, *, to_user: str = "", conversation: str = ""
) -> client_pb2.ServerFrame:
    frame = text_send(client_msg_id, to_user or None, conversation or None, "hello")
    # A request id per attempt: a late reply to one is not taken for the next's.
    frame.request_id = f"{frame.request_id}-{asyncio.get_running_loop().time()}"
    return await conn.request(frame, timeout_s=REPLY_TIMEOUT_S)


async def _send_until_acked(
    conn: Connection, client_msg_id: str, *, to_user: str = "", conversation: str = ""
) -> tuple[int, list[str]]:
    """Retries UNAVAILABLE as clients do: the acked message's id, and the
    reasons of the refusals on the way."""
    refusals: list[str] = []
    deadline = asyncio.get_running_loop().time() + HEAL_TIMEOUT_S
    while True:
        reply = await _send(conn, client_msg_id, to_user=to_user, conversation=conversation)
        if reply.WhichOneof("kind") == "ack":
            return int(reply.ack.message_id), refusals
        assert reply.error.code == UNAVAILABLE, reply
        refusals.append(reply.error.reason)
        assert asyncio.get_running_loop().time() < deadline, refusals
        await asyncio.sleep(0.5)


async def _delivered(conn: Connection, message_id: int) -> None:
    """The receiver gets the message as a client does: live, or, when its
    gateway lost its subscription meanwhile (the shard of its deliveries
    channel may be the one that died) and tells it to sync, by syncing."""
    while True:
        frame = await conn.recv(timeout_s=REPLY_TIMEOUT_S)
        kind = frame.WhichOneof("kind")
        if kind == "deliver" and frame.deliver.message.message_id == message_id:
            return
        if kind == "sync_required":
            assert message_id in await _synced_ids(conn), "not delivered, nor found by a sync"
            return


async def _synced_ids(conn: Connection) -> set[int]:
    summary = await conn.request(
        client_pb2.ClientFrame(sync=client_pb2.SyncFrame()), timeout_s=REPLY_TIMEOUT_S
    )
    ids: set[int] = set()
    for conversation in summary.sync_summary.conversations:
        page_token = ""
        while True:
            page = await conn.request(
                client_pb2.ClientFrame(
                    sync_conversation=client_pb2.SyncConversationFrame(
                        conversation_id=conversation.conversation_id, page_token=page_token
                    )
                ),
                timeout_s=REPLY_TIMEOUT_S,
            )
            ids.update(m.message_id for m in page.sync_page.messages)
            page_token = page.sync_page.next_page_token
            if not page_token:
                break
    return ids


async def _bring_back(cluster: LocalCluster) -> None:
    await asyncio.to_thread(nodes.bring_back)
    await asyncio.to_thread(cluster.ensure_redis_users)


def _exited(cluster: LocalCluster) -> list[str]:
    return [name for name, process in cluster.processes.items() if not process.running()]


async def test_services_started_with_a_node_of_each_store_down_serve_1to1_and_groups(
    started_degraded: tuple[LocalCluster, list[str]], pg_pool: asyncpg.Pool
) -> None:
    cluster, down = started_degraded
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    group = await create_group(cluster, ann, [ben, cat])
    sender, receiver = await _open(cluster, ann), await _open(cluster, ben)
    try:
        direct, _ = await _send_until_acked(sender, unique("m"), to_user=ben)
        await _delivered(receiver, direct)
        grouped, _ = await _send_until_acked(sender, unique("m"), conversation=group)
        await _delivered(receiver, grouped)
    finally:
        await sender.close()
        await receiver.close()
    assert _exited(cluster) == [], f"with {down} down"


async def test_a_slot_nobody_serves_refuses_its_sends_until_it_is_served_again(
    started_degraded: tuple[LocalCluster, list[str]], pg_pool: asyncpg.Pool
) -> None:
    cluster, _ = started_degraded
    await _bring_back(cluster)  # whole again after the first test
    ann, ben = unique("ann"), unique("ben")
    await add_users(pg_pool, ann, ben)
    sender, receiver = await _open(cluster, ann), await _open(cluster, ben)
    # The shard of ann's send claims: its primary and its replica both die.
    primary = nodes.redis_primary(f"{cluster.config.key_prefix}claim:d:{{{ann}}}:x")
    replica = nodes.redis_replica_of(primary)
    client_msg_id = unique("m")
    try:
        primary.kill()
        replica.kill()
        refused = await _send(sender, client_msg_id, to_user=ben)
        assert refused.WhichOneof("kind") == "error", refused
        assert refused.error.code == UNAVAILABLE, refused
        assert not sender.closed
        await _bring_back(cluster)
        message_id, _ = await _send_until_acked(sender, client_msg_id, to_user=ben)
        await _delivered(receiver, message_id)
    finally:
        await sender.close()
        await receiver.close()
        await _bring_back(cluster)
    assert _exited(cluster) == []


async def test_a_message_log_below_its_minimum_replicas_refuses_group_sends_until_healed(
    started_degraded: tuple[LocalCluster, list[str]], pg_pool: asyncpg.Pool
) -> None:
    cluster, _ = started_degraded
    await _bring_back(cluster)
    ann, ben, cat = unique("ann"), unique("ben"), unique("cat")
    await add_users(pg_pool, ann, ben, cat)
    group = await create_group(cluster, ann, [ben, cat])
    sender, receiver = await _open(cluster, ann), await _open(cluster, ben)
    client_msg_id = unique("m")
    try:
        # One broker of three left: below min.insync.replicas (2), and the
        # controllers have no quorum either.
        nodes.kafka(2).kill()
        nodes.kafka(3).kill()
        refused = await _send(sender, client_msg_id, conversation=group)
        assert refused.WhichOneof("kind") == "error", refused
        assert (refused.error.code, refused.error.reason) == (UNAVAILABLE, "LOG_UNAVAILABLE")
        await _bring_back(cluster)
        message_id, _ = await _send_until_acked(sender, client_msg_id, conversation=group)
        await _delivered(receiver, message_id)
    finally:
        await sender.close()
        await receiver.close()
        await _bring_back(cluster)
    assert _exited(cluster) == []
