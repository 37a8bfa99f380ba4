"""Envoy keeps every healthy gateway in rotation while clients come and go."""

from __future__ import annotations

import asyncpg

from chatmesh.client import Connection
from chatmesh.devcluster import LocalCluster
from tests.conftest import add_users, unique

GOODBYES = 4  # more than any consecutive-failure threshold Envoy could apply


async def test_clients_leaving_one_gateway_in_a_row_do_not_take_it_out_of_rotation(
    cluster: LocalCluster,
    open_client,  # type: ignore[no-untyped-def]
    pg_pool: asyncpg.Pool,
) -> None:
    user = unique("carol")
    await add_users(pg_pool, user)
    clients: list[Connection] = [
        await open_client(user, f"dev{i % 2}-{i}") for i in range(2 * GOODBYES)
    ]
    on_first = [c for c in clients if c.hello.gateway_id == cluster.gateway_id(1)]
    assert len(on_first) >= GOODBYES, "round robin put fewer connections on gateway 1"
    # Ordinary goodbyes, one after another, with no new connection between.
    for client in on_first:
        await client.close()

    landed = {(await open_client(user, f"again-{i}")).hello.gateway_id for i in range(4)}
    assert landed == {cluster.gateway_id(1), cluster.gateway_id(2)}
