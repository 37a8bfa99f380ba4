"""The local cluster's developer endpoints, through the edge: dev tokens
that connect, and clear refusals of bad requests."""

from __future__ import annotations

import httpx

from chatmesh.client import Connection
from chatmesh.devcluster import LocalCluster
from tests.conftest import unique


async def test_a_dev_token_registers_the_user_and_connects(cluster: LocalCluster) -> None:
    user = unique("devuser")
    base = cluster.edge_url.replace("ws://", "http://")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answer = await http.post("/dev/token", json={"user_id": user, "device_id": "web"})
        assert answer.status_code == 200, answer.text
        token = answer.json()["token"]
        connection = await Connection.open(cluster.edge_url, token)
        try:
            assert connection.hello.user_id == user
            assert connection.hello.device_id == "web"
        finally:
            await connection.close()
        for bad in ({"device_id": "web"}, {"user_id": "no spaces"}, {"user_id": user, "ttl_s": 0}):
            refused = await http.post("/dev/token", json=bad)
            assert refused.status_code == 400, bad
        assert (await http.post("/dev/token", content=b"not json")).status_code == 400
        # Only the web client's files are served, nothing beside them.
        for outside in ("/app/..%2f..%2fpyproject.toml", "/app/%2e%2e/%2e%2e/pyproject.toml"):
            assert (await http.get(outside)).status_code != 200, outside
