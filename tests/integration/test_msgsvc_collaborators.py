"""Batched calls to sessionsvc (msgsvc's lookups, the gateway's registrations)
and msgsvc's directory cache, against real sessionsvc and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
import redis.asyncio as redis

from chatmesh.auth import Identity
from chatmesh.conversation import direct_conversation_id
from chatmesh.grpc_server import GrpcServer, mesh_channel
from chatmesh.mesh.credentials import MeshTls
from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc
from gateway.registrar import Registrar
from msgsvc.batching import BatchingSessionLookup
from msgsvc.routing import DeviceSession, GrpcSessionLookup
from msgsvc.storage.directory import Conversation, PostgresDirectory
from msgsvc.storage.directory_cache import CachingDirectory
from sessionsvc.servicer import SessionServicer
from sessionsvc.store import DeviceSession as StoredSession
from sessionsvc.store import RedisSessionStore
from tests.conftest import add_users, unique


@pytest.fixture
async def sessionsvc_server(
    redis_client: redis.Redis, key_prefix: str, mesh_tls: Callable[[str], MeshTls]
) -> AsyncIterator[tuple[str, RedisSessionStore]]:
    """A real sessionsvc gRPC server on a free port: its address and store."""
    store = RedisSessionStore(redis_client, key_prefix)
    server = GrpcServer(
        "127.0.0.1:0",
        [session_service_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name],
        lambda s: session_service_pb2_grpc.add_SessionServiceServicer_to_server(
            SessionServicer(store), s
        ),
        tls=mesh_tls("service/sessionsvc"),
    )
    port = await server.start()
    yield f"127.0.0.1:{port}", store
    await server.stop(0)


@pytest.fixture
async def sessionsvc(
    sessionsvc_server: tuple[str, RedisSessionStore], mesh_tls: Callable[[str], MeshTls]
) -> AsyncIterator[tuple[grpc.aio.Channel, RedisSessionStore]]:
    address, store = sessionsvc_server
    # msgsvc's identity: the only caller besides fan-out that may look sessions up.
    async with mesh_channel(mesh_tls("service/msgsvc"), address, "sessionsvc") as ch:
        yield ch, store


class CountingLookup:
    def __init__(self, inner: GrpcSessionLookup) -> None:
        self.inner = inner
        self.calls: list[Sequence[str]] = []

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        self.calls.append(list(user_ids))
        return await self.inner.lookup(user_ids)


async def test_concurrent_lookups_share_calls_and_get_only_their_users(sessionsvc) -> None:  # type: ignore[no-untyped-def]
    channel, store = sessionsvc
    await store.heartbeat("gw", ttl_s=30)
    users = [f"u{i}" for i in range(200)]
    await store.register([StoredSession(u, "phone", "gw", f"c-{u}") for u in users])
    counting = CountingLookup(
        GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(channel))
    )
    batching = BatchingSessionLookup(counting)
    results = await asyncio.gather(*(batching.lookup([u, "nobody"]) for u in users))
    for user, sessions in zip(users, results, strict=True):
        assert sessions == [DeviceSession(user, "phone", "gw", f"c-{user}")]
    assert len(counting.calls) < len(users) / 10  # coalesced, not one call each
    assert sum(len(c) for c in counting.calls) >= len(users)


class FailingOnce:
    """The real lookup, except that its first call fails as a dropped RPC would."""

    def __init__(self, inner: GrpcSessionLookup) -> None:
        self._inner = inner
        self.failed = False

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("sessionsvc went away")
        return await self._inner.lookup(user_ids)


async def test_a_failed_call_fails_its_batch_and_later_lookups_recover(sessionsvc) -> None:  # type: ignore[no-untyped-def]
    channel, store = sessionsvc
    await store.heartbeat("gw", ttl_s=30)
    await store.register([StoredSession("ann", "phone", "gw", "c1")])
    batching = BatchingSessionLookup(
        FailingOnce(GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(channel)))
    )
    with pytest.raises(ConnectionError):
        await batching.lookup(["ann"])
    assert await batching.lookup(["ann"]) == [DeviceSession("ann", "phone", "gw", "c1")]


async def test_lookups_over_sessionsvcs_limit_are_split(sessionsvc) -> None:  # type: ignore[no-untyped-def]
    channel, store = sessionsvc
    await store.heartbeat("gw", ttl_s=30)
    await store.register([StoredSession("u1500", "phone", "gw", "c1")])
    batching = BatchingSessionLookup(
        GrpcSessionLookup(session_service_pb2_grpc.SessionServiceStub(channel))
    )
    found = await batching.lookup([f"u{i}" for i in range(2500)])
    assert found == [DeviceSession("u1500", "phone", "gw", "c1")]


class CountingDirectory(PostgresDirectory):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.reads = 0

    async def conversation(self, conversation_id: str) -> Conversation | None:
        self.reads += 1
        return await super().conversation(conversation_id)


async def test_direct_conversations_are_served_from_memory_once_seen(pg_pool: asyncpg.Pool) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    backing = CountingDirectory(pg_pool)
    directory = CachingDirectory(backing, max_entries=2)
    conv = direct_conversation_id(alice, bob)
    assert await directory.conversation(conv) is None  # misses are not cached
    created = await directory.ensure_direct(conv, alice, bob, created_at_ms=1)
    reads = backing.reads
    for _ in range(5):
        assert await directory.conversation(conv) == created
    assert backing.reads == reads
    # Bounded: the least recently used entry is evicted and read again.
    others = [unique("u") for _ in range(2)]
    await add_users(pg_pool, *others)
    for other in others:
        await directory.ensure_direct(direct_conversation_id(alice, other), alice, other, 1)
    reads = backing.reads
    assert await directory.conversation(conv) == created
    assert backing.reads == reads + 1


class CountingRegistrations:
    """A SessionService stub that counts RegisterSessions calls."""

    def __init__(self, inner: session_service_pb2_grpc.SessionServiceStub) -> None:
        self.inner = inner
        self.calls = 0

    async def RegisterSessions(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await self.inner.RegisterSessions(request, **kwargs)


@dataclass(frozen=True)
class Handshake:
    """What the registrar reads of a connection."""

    identity: Identity
    connection_id: str


async def test_registrations_that_finish_together_share_calls_and_learn_what_they_replaced(
    sessionsvc_server: tuple[str, RedisSessionStore], mesh_tls: Callable[[str], MeshTls]
) -> None:
    address, store = sessionsvc_server
    await store.heartbeat("gw-new", ttl_s=30)
    owner = unique("owner")
    await store.register([StoredSession(owner, "phone", "gw-old", "c-old")])
    others = [Handshake(Identity(unique("u"), "phone"), f"c-{i}") for i in range(60)]
    first = Handshake(Identity(owner, "phone"), "c-first")
    second = Handshake(Identity(owner, "phone"), "c-second")
    handshakes = [*others[:30], first, second, *others[30:]]
    async with mesh_channel(mesh_tls("service/gateway"), address, "sessionsvc") as channel:
        counting = CountingRegistrations(session_service_pb2_grpc.SessionServiceStub(channel))
        registrar = Registrar("gw-new", counting)  # type: ignore[arg-type]
        replaced = await asyncio.gather(*(registrar.register(h) for h in handshakes))  # type: ignore[arg-type]
    assert counting.calls < 10  # coalesced, not one call each
    by_handshake = dict(zip(handshakes, replaced, strict=True))
    assert all(by_handshake[h] == [] for h in others)
    # The first replaced the device's older session; the second replaced
    # both, the first of its own batch included.
    assert [s.connection_id for s in by_handshake[first]] == ["c-old"]
    assert sorted(s.connection_id for s in by_handshake[second]) == ["c-first", "c-old"]
    assert [s.connection_id for s in await store.lookup([owner])] == ["c-second"]
