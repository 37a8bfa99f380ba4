"""A cluster with its own Redis and two msgsvc instances: the setup of the chaos tests.

Redis is killed with SIGKILL here and must come back with everything it
acknowledged (msgsvc's idempotency claims live there); both msgsvc instances
must serve, each behind its own gateway.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import asyncpg
import pytest
import redis.asyncio as redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chatmesh import snowflake
from chatmesh.client import Connection, NoHello
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import CLOSE_TRY_AGAIN_LATER
from chatmesh.v1 import common_pb2, message_service_pb2, message_service_pb2_grpc
from tests.conftest import Stores, add_users, unique
from tests.e2e.test_lifecycle import _connect, _send_until_acked

MAX_CONNECT_ATTEMPTS = 20


async def _connect_like_a_client(
    cluster: LocalCluster, user: str, device: str, gateway: int
) -> Connection:
    """Retries 1013 (try again later) with bounded patience, as clients do.

    Needed after a Redis restart: a service's first command on each pooled
    connection from before the restart fails, and the gateway answers 1013.
    """
    for _ in range(MAX_CONNECT_ATTEMPTS):
        try:
            return await _connect(cluster, user, device, gateway)
        except NoHello as refused:
            assert refused.close_code == CLOSE_TRY_AGAIN_LATER, refused
            await asyncio.sleep(0.25)
    raise AssertionError(f"gateway {gateway + 1} still refuses connections")


@pytest.fixture(scope="module")
def own_cluster(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: these tests kill its Redis."""
    config = ClusterConfig.on_free_ports(
        stores,
        tmp_path_factory.mktemp("cluster-redis"),
        "credis",
        own_redis=True,
        msgsvc_instances=2,
    )
    with LocalCluster.running(config) as cluster:
        yield cluster


def test_processes_and_addresses(own_cluster: LocalCluster) -> None:
    assert own_cluster.msgsvc_names == ["msgsvc", "msgsvc2"]
    names = list(own_cluster.processes)
    # Redis first, so it starts before every service and stops after them.
    assert names[0] == "redis"
    assert {"msgsvc", "msgsvc2"} <= set(names)
    assert own_cluster.grpc_addr("msgsvc") != own_cluster.grpc_addr("msgsvc2")
    assert own_cluster.redis_url != own_cluster.config.redis_url


async def test_redis_keeps_acknowledged_writes_through_sigkill(own_cluster: LocalCluster) -> None:
    key = f"{own_cluster.config.key_prefix}durable:{secrets.token_hex(4)}"
    before = redis.Redis.from_url(own_cluster.redis_url)
    try:
        assert await before.set(key, "claimed")  # acknowledged: fsynced to the AOF
    finally:
        await before.aclose()
    own_cluster.processes["redis"].kill()  # SIGKILL: no shutdown, no final save
    assert not own_cluster.processes["redis"].running()
    own_cluster.restart("redis")  # same port and data dir; replays the AOF
    assert await _get(own_cluster, key) == b"claimed"
    # A graceful stop (SIGTERM) exits cleanly and keeps the data as well.
    assert await asyncio.to_thread(own_cluster.processes["redis"].stop) == 0
    own_cluster.restart("redis")
    assert await _get(own_cluster, key) == b"claimed"


async def _get(cluster: LocalCluster, key: str) -> bytes | None:
    # A new client each time: pooled connections die with the server.
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        value = await client.get(key)
        assert value is None or isinstance(value, bytes)  # no decode_responses
        return value
    finally:
        await client.aclose()


@pytest.mark.parametrize("name", ["msgsvc", "msgsvc2"])
async def test_both_msgsvc_instances_serve_health(own_cluster: LocalCluster, name: str) -> None:
    async with own_cluster.channel(name) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5.0
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_each_gateway_sends_through_its_own_msgsvc(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    """Gateway 1 talks to msgsvc, gateway 2 to msgsvc2: both paths store and ack."""
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    acks = []
    for gateway in (0, 1):
        client = await _connect_like_a_client(own_cluster, alice, f"dev{gateway}", gateway)
        try:
            acks.append(await _send_until_acked(client, bob, f"through gateway {gateway + 1}"))
        finally:
            await client.close()
    # Each instance leases its own Snowflake worker id, so the ids tell which
    # instance issued them: two different ones means two different instances.
    assert len({snowflake.parse(a.message_id).worker_id for a in acks}) == 2


async def test_one_send_retried_on_both_msgsvc_processes_at_once_is_stored_once(
    own_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    channels = [own_cluster.channel(name) for name in own_cluster.msgsvc_names]
    try:
        stubs = [message_service_pb2_grpc.MessageServiceStub(c) for c in channels]

        async def send(
            stub: message_service_pb2_grpc.MessageServiceStub, key: str
        ) -> message_service_pb2.SendMessageResponse:
            return await stub.SendMessage(
                message_service_pb2.SendMessageRequest(
                    sender_user_id=alice,
                    sender_device_id="phone",
                    client_msg_id=key,
                    to_user_id=bob,
                    kind=common_pb2.MESSAGE_KIND_TEXT,
                    body=key.encode(),
                )
            )

        keys = [f"race-{i}" for i in range(25)]
        replies = await asyncio.gather(*(send(stub, key) for key in keys for stub in stubs))
        by_key: dict[str, set[int]] = {}
        for reply in replies:
            by_key.setdefault(reply.message.client_msg_id, set()).add(reply.message.message_id)
        assert all(len(ids) == 1 for ids in by_key.values()), by_key
        assert sum(not r.duplicate for r in replies) == len(keys)
        history = await stubs[0].ListMessages(
            message_service_pb2.ListMessagesRequest(
                requester_user_id=bob,
                conversation_id=replies[0].message.conversation_id,
                page_size=200,
            )
        )
        assert sorted(m.client_msg_id for m in history.messages) == sorted(keys)
    finally:
        for channel in channels:
            await channel.close()
