"""A service whose store is unreachable answers UNAVAILABLE with a reason, not UNKNOWN."""

from __future__ import annotations

import socket
from collections.abc import Callable

import grpc
import pytest

from chatmesh import redis_client
from chatmesh.errors import reason_of
from chatmesh.grpc_server import GrpcServer, mesh_channel
from chatmesh.mesh.credentials import MeshTls
from chatmesh.v1 import session_service_pb2, session_service_pb2_grpc
from sessionsvc.servicer import SessionServicer
from sessionsvc.store import RedisSessionStore


def _closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sessionsvc_without_redis_answers_unavailable(
    mesh_tls: Callable[[str], MeshTls],
) -> None:
    client = redis_client.connect(f"redis://127.0.0.1:{_closed_port()}/0")
    server = GrpcServer(
        "127.0.0.1:0",
        [session_service_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name],
        lambda s: session_service_pb2_grpc.add_SessionServiceServicer_to_server(
            SessionServicer(RedisSessionStore(client, "t:")), s
        ),
        tls=mesh_tls("service/sessionsvc"),
    )
    port = await server.start()
    try:
        msgsvc = mesh_tls("service/msgsvc")
        async with mesh_channel(msgsvc, f"127.0.0.1:{port}", "sessionsvc") as channel:
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.LookupSessions(
                    session_service_pb2.LookupSessionsRequest(user_ids=["ann"]), timeout=10
                )
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert reason_of(failed.value) == "STORE_UNAVAILABLE"
    finally:
        await server.stop(0)
        await client.aclose()
