"""Limits that hold against abuse, through real gateways and msgsvc: a
user's sockets share one send budget, handshakes are limited per source
address, a gateway caps its connections; nobody else is affected."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chatmesh import snowflake
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.client.connection import text_send
from chatmesh.clock import SystemClock
from chatmesh.conversation import direct_conversation_id
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.v1 import client_pb2
from gateway.admission import AdmissionLimits
from msgsvc.budgets import USER_WRITES
from msgsvc.storage.messages import CassandraMessageStore, bucket_at
from tests.conftest import Stores, add_users, unique

SENDS_PER_SOCKET = 40


async def _flood(client: Connection, to_user: str, count: int) -> list[client_pb2.ServerFrame]:
    frames = [text_send(uuid.uuid4().hex, to_user, None, f"flood {i}") for i in range(count)]
    return list(await asyncio.gather(*(client.request(f, timeout_s=20.0) for f in frames)))


async def test_parallel_sockets_of_one_user_share_one_send_budget(
    cluster: LocalCluster,
    issuer: TokenIssuer,
    pg_pool: asyncpg.Pool,
    message_store: CassandraMessageStore,
) -> None:
    mallory, bob, carol = unique("mallory"), unique("bob"), unique("carol")
    await add_users(pg_pool, mallory, bob, carol)
    sockets = [
        await Connection.open(cluster.edge_url, issuer.mint(Identity(mallory, d), ttl_s=600))
        for d in ("phone", "laptop", "tablet")
    ]
    bystander = await Connection.open(
        cluster.edge_url, issuer.mint(Identity(carol, "phone"), ttl_s=600)
    )
    try:
        assert len({s.hello.gateway_id for s in sockets}) == 2  # across both gateways
        started = time.monotonic()
        floods, calm = await asyncio.gather(
            asyncio.gather(*(_flood(s, bob, SENDS_PER_SOCKET) for s in sockets)),
            _flood(bystander, bob, 10),
        )
        elapsed = time.monotonic() - started
        replies = [frame for flood in floods for frame in flood]
        acked = [f for f in replies if f.WhichOneof("kind") == "ack"]
        limited = [f for f in replies if f.WhichOneof("kind") == "error"]
        assert {f.error.reason for f in limited} == {"RATE_LIMITED"}
        # Each socket alone is within the per-connection limit; together they
        # get one user's budget: the burst plus what refills meanwhile.
        budget = USER_WRITES.burst + USER_WRITES.rate_per_s * elapsed
        assert USER_WRITES.burst <= len(acked) <= budget + 1
        assert len(acked) + len(limited) == 3 * SENDS_PER_SOCKET
        assert all(f.WhichOneof("kind") == "ack" for f in calm)  # carol is untouched
        # What was refused was never stored.
        now_ms = int(time.time() * 1000)
        stored = await message_store.page(
            direct_conversation_id(mallory, bob),
            before_id=snowflake.lowest_id_at(now_ms + 60_000),
            limit=1000,
            oldest_bucket=bucket_at(now_ms - 600_000),
        )
        assert len(stored) == len(acked)
    finally:
        for client in (*sockets, bystander):
            await client.close()


async def _handshake_status(url: str, forwarded_for: str) -> int:
    try:
        async with connect(
            url,
            additional_headers={
                "Authorization": "Bearer not-a-token",
                "X-Forwarded-For": forwarded_for,
            },
            open_timeout=10,
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.fixture(scope="module")
def capped(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Gateways with a tiny connection cap and the production handshake
    budget per address (local clusters otherwise raise it: all their
    clients share loopback)."""
    defaults = AdmissionLimits()
    config = dataclasses.replace(
        ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("capped"), "capped"),
        env={
            "CHATMESH_MAX_CONNECTIONS": "3",
            "CHATMESH_HANDSHAKES_PER_ADDRESS_RATE": str(int(defaults.per_address.rate_per_s)),
            "CHATMESH_HANDSHAKES_PER_ADDRESS_BURST": str(defaults.per_address.burst),
        },
    )
    with LocalCluster.running(config) as local:
        yield local


async def test_handshakes_are_limited_per_source_address(capped: LocalCluster) -> None:
    """As the edge would forward them: the gateway trusts its loopback peer's
    X-Forwarded-For. Bad tokens: the address limit comes before any token
    verification. Both gateways share the address's budget."""
    flooder = f"203.0.113.{secrets.randbelow(250) + 1}"
    burst = AdmissionLimits().per_address.burst
    statuses = await asyncio.gather(
        *(_handshake_status(capped.gateway_url(i % 2), flooder) for i in range(burst * 2))
    )
    assert statuses.count(429) >= burst // 2
    assert set(statuses) == {401, 429}
    # Another address is unaffected.
    assert await _handshake_status(capped.gateway_url(1), "198.51.100.7") == 401


async def test_a_gateway_refuses_connections_beyond_its_cap(
    capped: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    users = [unique("crowd") for _ in range(4)]
    await add_users(pg_pool, *users)
    issuer = TokenIssuer((capped.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    tokens = [issuer.mint(Identity(u, "phone"), ttl_s=600) for u in users]
    admitted = [await Connection.open(capped.gateway_url(0), t) for t in tokens[:3]]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await Connection.open(capped.gateway_url(0), tokens[3])
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"]
        # The other gateway, and so the edge, still has room.
        other = await Connection.open(capped.edge_url, tokens[3])
        assert other.hello.gateway_id == capped.gateway_id(2)
        await other.close()
        await admitted[0].close()
        await asyncio.sleep(0.5)  # the freed slot is seen once the close is processed
        try:
            again = await Connection.open(capped.gateway_url(0), tokens[0])
        except InvalidStatus as exc:
            raise AssertionError(exc.response.body) from exc
        await again.close()
    finally:
        for client in admitted:
            await client.close()


async def _gateway_sample(cluster: LocalCluster, gateway: str, name: str, **labels: str) -> float:
    """One sample of the gateway's metrics; 0 for a labelled counter not
    incremented yet (it has no sample until then)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(cluster.ops_url(gateway), timeout=2.0)).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    if name.endswith("_total"):
        return 0.0
    raise AssertionError(f"{gateway} exports no {name}{labels}")


async def _handshakes(cluster: LocalCluster, gateway: str, state: str) -> float:
    """The gateway's ``chatmesh_gateway_handshakes_in_progress{state}`` gauge."""
    return await _gateway_sample(
        cluster, gateway, "chatmesh_gateway_handshakes_in_progress", state=state
    )


@pytest.fixture(scope="module")
def narrow(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Gateways that work on one handshake at a time, with a line of one."""
    config = dataclasses.replace(
        ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("narrow"), "narrow"),
        env={
            "CHATMESH_MAX_HANDSHAKES_IN_FLIGHT": "1",
            "CHATMESH_MAX_HANDSHAKES_WAITING": "1",
            "CHATMESH_MAX_HANDSHAKE_WAIT_MS": "10000",
        },
    )
    with LocalCluster.running(config) as local:
        yield local


async def test_handshakes_beyond_those_in_progress_and_their_line_are_shed_at_once(
    narrow: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    """A handshake is in progress until its hello; with sessionsvc paused the
    first one waits there, the next waits in line, and the one after is
    refused with 503 before any of its work is done. The one in line leaves
    before its turn: when the turn comes, its work is skipped and counted.
    Then the gateway takes handshakes as before."""
    first_user, second_user, third_user = unique("first"), unique("second"), unique("third")
    await add_users(pg_pool, first_user, second_user, third_user)
    issuer = TokenIssuer((narrow.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    first_token, second_token, third_token = (
        issuer.mint(Identity(user, "phone"), ttl_s=600)
        for user in (first_user, second_user, third_user)
    )
    gateway = narrow.gateway_url(0)
    abandoned = "chatmesh_gateway_handshakes_abandoned_total"
    abandoned_before = await _gateway_sample(narrow, "gateway-1", abandoned, stage="turn")
    sessionsvc = narrow.processes["sessionsvc"]
    os.kill(sessionsvc.pid, signal.SIGSTOP)
    try:
        first = asyncio.create_task(Connection.open(gateway, first_token))
        # The first reaches its session registration and waits there, up to
        # the registration's 2 s deadline, holding the only turn.
        while await _handshakes(narrow, "gateway-1", "in_progress") < 1:
            assert not first.done()
            await asyncio.sleep(0.02)
        waiting = asyncio.create_task(Connection.open(gateway, second_token))
        while await _handshakes(narrow, "gateway-1", "waiting") < 1:
            assert not waiting.done()
            await asyncio.sleep(0.02)
        with pytest.raises(InvalidStatus) as refused:
            await Connection.open(gateway, third_token, open_timeout_s=1.0)
        shed = refused.value
        assert shed.response.status_code == 503
        assert b"gateway busy" in shed.response.body
        assert shed.response.headers["Retry-After"]
        waiting.cancel()  # the client in line gives up: its socket closes
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        os.kill(sessionsvc.pid, signal.SIGCONT)
    admitted = await first
    try:
        assert admitted.hello.user_id == first_user
        for _ in range(250):
            if await _gateway_sample(narrow, "gateway-1", abandoned, stage="turn") > (
                abandoned_before
            ):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the handshake whose client left was worked on")
        assert await _handshakes(narrow, "gateway-1", "in_progress") == 0
        assert await _handshakes(narrow, "gateway-1", "waiting") == 0
        for token, user in ((second_token, second_user), (third_token, third_user)):
            again = await Connection.open(gateway, token)
            assert again.hello.user_id == user
            await again.close()
    finally:
        await admitted.close()
