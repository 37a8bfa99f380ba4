"""The whole system as separate OS processes, reached like a client would."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.v1 import directory_service_pb2_grpc
from tests.conftest import Stores

RECV_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def cluster(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    config = dataclasses.replace(
        ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("cluster"), "e2e"),
        env={
            # A hung push provider is given up on (and retried) within a test's patience.
            "CHATMESH_PUSH_PROVIDER_TIMEOUT_MS": "1000",
            # Presence transitions within a test's patience: a short flapping
            # grace, and gateway leases that run out soon after a crash.
            "CHATMESH_PRESENCE_GRACE_MS": "1500",
            "CHATMESH_PRESENCE_LEASE_S": "6",
        },
    )
    with LocalCluster.running(config) as local:
        yield local


@pytest.fixture(scope="session")
def issuer(cluster: LocalCluster) -> TokenIssuer:
    return TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())


@pytest.fixture
async def open_client(cluster: LocalCluster, issuer: TokenIssuer) -> AsyncIterator[object]:
    opened: list[Connection] = []

    async def _open(
        user: str,
        device: str = "phone",
        *,
        url: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> Connection:
        token = issuer.mint(Identity(user, device), ttl_s=600)
        client = await Connection.open(url or cluster.edge_url, token, tls=tls)
        opened.append(client)
        return client

    yield _open
    for client in opened:
        await client.close()


def keys_dir(cluster: LocalCluster) -> Path:
    return cluster.keys_dir


@pytest.fixture
async def directory(
    cluster: LocalCluster,
) -> AsyncIterator[directory_service_pb2_grpc.DirectoryServiceAsyncStub]:
    """msgsvc's DirectoryService, called as the internal client ``client/tests``."""
    async with cluster.channel("msgsvc") as channel:
        yield directory_service_pb2_grpc.DirectoryServiceStub(channel)  # type: ignore[misc]
