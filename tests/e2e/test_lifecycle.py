"""Crashes and restarts of real processes: nothing acked is lost, nothing is shown twice."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, NoHello
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import CLOSE_TRY_AGAIN_LATER
from chatmesh.v1 import client_pb2, common_pb2
from msgsvc.storage.messages import CassandraMessageStore
from tests.conftest import Stores, add_users, unique

MAX_SEND_ATTEMPTS = 40


@pytest.fixture(scope="module")
def own_cluster(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: these tests kill and stop its processes."""
    config = ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("lifecycle"), "life")
    with LocalCluster.running(config) as cluster:
        yield cluster


async def _connect(cluster: LocalCluster, user: str, device: str, gateway: int) -> Connection:
    key = (cluster.keys_dir / "jwt-private.pem").read_bytes()
    token = TokenIssuer(key, SystemClock()).mint(Identity(user, device), ttl_s=600)
    return await Connection.open(cluster.gateway_url(gateway), token)


async def _send_until_acked(client: Connection, to_user: str, body: str) -> client_pb2.AckFrame:
    """What a client does: resend with the same client_msg_id until acked."""
    client_msg_id = uuid.uuid4().hex
    for _ in range(MAX_SEND_ATTEMPTS):
        await client.send_text(to_user=to_user, body=body, client_msg_id=client_msg_id)
        try:
            while True:
                frame = await client.recv(timeout_s=3.0)
                kind = frame.WhichOneof("kind")
                if kind == "ack" and frame.ack.client_msg_id == client_msg_id:
                    return frame.ack
                if kind == "error" and frame.error.client_msg_id == client_msg_id:
                    assert frame.error.code == common_pb2.ERROR_CODE_UNAVAILABLE, frame
                    break
        except TimeoutError:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"{body!r} never acked")


async def test_msgsvc_crash_loses_nothing_and_duplicates_nothing(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool, message_store: CassandraMessageStore
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws = await _connect(own_cluster, alice, "phone", 0)
    bob_ws = await _connect(own_cluster, bob, "laptop", 1)
    try:
        live = [await _send_until_acked(alice_ws, bob, "before the crash")]
        received = {(await bob_ws.recv_kind("deliver")).deliver.message.message_id}
        # Acked, then msgsvc dies at once: the ack promised durability, so the
        # row must be in Cassandra. (Its live delivery may die with the
        # process; devices recover such messages from history.)
        last_words = await _send_until_acked(alice_ws, bob, "acked just before the kill")
        own_cluster.processes["msgsvc"].kill()  # SIGKILL: no drain, no cleanup
        # Sent while msgsvc is down: the gateway holds or fails it; the client resends.
        during = asyncio.create_task(_send_until_acked(alice_ws, bob, "during the outage"))
        await asyncio.sleep(0.5)
        own_cluster.restart("msgsvc")
        live.append(await during)
        live.append(await _send_until_acked(alice_ws, bob, "after the restart"))

        acked = sorted([*live, last_words], key=lambda a: a.message_id)
        ids = [a.message_id for a in acked]
        assert len(set(ids)) == len(ids)
        conversation = direct_conversation_id(alice, bob)
        history = await message_store.page(
            conversation, before_id=max(ids) + 1, limit=50, oldest_bucket=0
        )
        assert [m.message_id for m in history] == sorted(ids, reverse=True)
        assert [m.body.decode() for m in reversed(history)] == [
            "before the crash",
            "acked just before the kill",
            "during the outage",
            "after the restart",
        ]

        # Every acked message reaches Bob live, at least once: the one acked
        # just before the kill too, from the route journal the restarted
        # msgsvc replays if its routing died with the process. A client
        # shows each message id once.
        bodies: dict[int, str] = {}
        while not set(ids) <= received:
            message = (await bob_ws.recv_kind("deliver")).deliver.message
            received.add(message.message_id)
            bodies[message.message_id] = message.body.decode()
        assert [bodies.get(a.message_id) for a in [last_words, *live[1:]]] == [
            "acked just before the kill",
            "during the outage",
            "after the restart",
        ]
    finally:
        await alice_ws.close()
        await bob_ws.close()


async def test_a_message_whose_routing_died_with_msgsvc_is_delivered_after_its_restart(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws = await _connect(own_cluster, alice, "phone", 0)
    bob_ws = await _connect(own_cluster, bob, "laptop", 1)
    sessionsvc = own_cluster.processes["sessionsvc"]
    try:
        # Routing needs sessionsvc; frozen, it makes routing hang, so the
        # message is acked (durable and journaled) but not yet routed when
        # msgsvc dies.
        os.kill(sessionsvc.pid, signal.SIGSTOP)
        try:
            ack = await _send_until_acked(alice_ws, bob, "stranded by the crash")
            own_cluster.processes["msgsvc"].kill()
        finally:
            os.kill(sessionsvc.pid, signal.SIGCONT)
        own_cluster.restart("msgsvc")
        # Bob never reconnects or syncs: the restarted msgsvc replays its journal.
        delivered = (await bob_ws.recv_kind("deliver", timeout_s=20.0)).deliver.message
        assert (delivered.message_id, delivered.body) == (
            ack.message_id,
            b"stranded by the crash",
        )
    finally:
        await alice_ws.close()
        await bob_ws.close()


async def test_after_a_gateway_crash_clients_reconnect_through_envoy_and_receive(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    alice_ws = await _connect(own_cluster, alice, "phone", 1)
    bob_ws = await _connect(own_cluster, bob, "laptop", 0)
    own_cluster.processes["gateway-1"].kill()
    await bob_ws.ws.wait_closed()
    try:
        # Every attempt succeeds: Envoy retries a refused upstream on the
        # other gateway instead of failing the upgrade.
        key = (own_cluster.keys_dir / "jwt-private.pem").read_bytes()
        token = TokenIssuer(key, SystemClock()).mint(Identity(bob, "laptop"), ttl_s=600)
        attempts = [await Connection.open(own_cluster.edge_url, token) for _ in range(4)]
        assert {c.hello.gateway_id for c in attempts} == {own_cluster.gateway_id(2)}
        for extra in attempts[:-1]:
            await extra.close()
        bob_again = attempts[-1]
        ack = await _send_until_acked(alice_ws, bob, "after the gateway crash")
        delivered = (await bob_again.recv_kind("deliver")).deliver.message
        assert delivered.message_id == ack.message_id
        await bob_again.close()
    finally:
        await alice_ws.close()
        own_cluster.restart("gateway-1")


async def test_without_sessionsvc_connections_are_refused_until_it_returns(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    user = unique("erin")
    await add_users(pg_pool, user)
    own_cluster.processes["sessionsvc"].stop()
    try:
        with pytest.raises(NoHello) as refused:
            await _connect(own_cluster, user, "phone", 0)
        assert refused.value.close_code == CLOSE_TRY_AGAIN_LATER
    finally:
        own_cluster.restart("sessionsvc")
    # Like any client after a 1013: retry, with a bounded patience.
    for _ in range(20):
        try:
            client = await _connect(own_cluster, user, "phone", 0)
            break
        except NoHello:
            await asyncio.sleep(0.5)
    else:
        raise AssertionError("connections still refused after sessionsvc came back")
    assert client.hello.user_id == user
    await client.close()


async def test_every_process_exits_cleanly_on_sigterm_and_gateways_drain(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    user = unique("dora")
    await add_users(pg_pool, user)
    connected = [await _connect(own_cluster, user, f"dev{i}", i) for i in range(2)]
    for name in reversed(list(own_cluster.processes)):
        process = own_cluster.processes[name]
        assert process.running(), f"{name} is not running"
        code = await asyncio.to_thread(process.stop)
        assert code == 0, f"{name} did not exit cleanly:\n{process.log_tail()}"
        if name not in ("envoy", "push-providers"):  # not ours: no structured log
            assert '"msg": "stopped"' in process.log_path.read_text(), name
    # A draining gateway tells its clients to reconnect elsewhere: 1012.
    for client in connected:
        await client.ws.wait_closed()
        assert client.ws.close_code == 1012
