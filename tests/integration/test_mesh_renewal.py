"""Renewed mesh certificates are used without a restart: by servers from the
next handshake, by client channels from the next call."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from chatmesh.errors import reason_of
from chatmesh.grpc_server import GrpcServer, mesh_channel
from chatmesh.mesh.credentials import MeshTls
from chatmesh.mesh.pki import LocalCA, Principal
from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc
from sessionsvc.servicer import SessionServicer
from sessionsvc.store import RedisSessionStore


@pytest.fixture
async def sessionsvc(
    redis_client: redis.Redis, key_prefix: str, mesh_pki: Path, tmp_path: Path
) -> AsyncIterator[tuple[int, Path]]:
    """A sessionsvc on its own copy of its credentials, which a test renews."""
    credentials = tmp_path / "sessionsvc"
    shutil.copytree(mesh_pki / "service" / "sessionsvc", credentials)
    server = GrpcServer(
        "127.0.0.1:0",
        [session_service_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name],
        lambda s: session_service_pb2_grpc.add_SessionServiceServicer_to_server(
            SessionServicer(RedisSessionStore(redis_client, key_prefix)), s
        ),
        tls=MeshTls(credentials),
    )
    port = await server.start()
    yield port, credentials
    await server.stop(0)


async def _lookup(channel: grpc.aio.Channel) -> None:
    await session_service_pb2_grpc.SessionServiceStub(channel).LookupSessions(
        session_service_pb2.LookupSessionsRequest(user_ids=["ann"]), timeout=5
    )


async def test_a_channel_presents_its_renewed_certificate_from_the_next_call(
    sessionsvc: tuple[int, Path], mesh_pki: Path, tmp_path: Path
) -> None:
    port, _ = sessionsvc
    mine = tmp_path / "msgsvc"
    shutil.copytree(mesh_pki / "service" / "msgsvc", mine)
    async with mesh_channel(
        MeshTls(mine, renew_check_s=0), f"127.0.0.1:{port}", "sessionsvc"
    ) as channel:
        await _lookup(channel)  # msgsvc may look sessions up
        await asyncio.sleep(0.01)  # a distinct mtime
        # Renewed in place, as cert-manager does, here to another identity so
        # that the server's answer shows which certificate it was shown.
        LocalCA(mesh_pki / "ca").issue(Principal.service("gateway"), mine)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _lookup(channel)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "service/gateway" in (refused.value.details() or "")
    assert reason_of(refused.value) == "CALLER_NOT_ALLOWED"


async def test_a_server_presents_its_renewed_certificate_from_the_next_handshake(
    sessionsvc: tuple[int, Path],
    mesh_pki: Path,
    mesh_tls: Callable[[str], MeshTls],
) -> None:
    port, credentials = sessionsvc
    msgsvc = mesh_tls("service/msgsvc")
    await asyncio.sleep(0.01)
    LocalCA(mesh_pki / "ca").issue(
        Principal.service("sessionsvc"), credentials, dns_names=["sessionsvc-renewed"]
    )
    # Only the renewed certificate names this: verifying it proves the reload.
    async with mesh_channel(msgsvc, f"127.0.0.1:{port}", "sessionsvc-renewed") as channel:
        await _lookup(channel)
