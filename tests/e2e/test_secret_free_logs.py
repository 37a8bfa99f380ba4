"""At DEBUG, no process of the cluster logs a token or a message body.

A cluster of its own, every service at DEBUG as the dev overlay runs them:
clients authenticate both ways (``?access_token=`` and ``Authorization``),
send in both encodings, and then every process's log is searched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import pytest

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding
from tests.conftest import Stores, add_users, unique


@pytest.fixture(scope="module")
def debug_cluster(
    stores: Stores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    config = ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("debug-logs"), "dbg")
    with LocalCluster.running(replace(config, log_level="DEBUG")) as cluster:
        yield cluster


def _pieces(text: str, width: int) -> set[str]:
    # Loggers elide long payloads (websockets keeps a frame's start and end):
    # any piece of a secret in a log is a leak.
    return {text[i : i + width] for i in range(len(text) - width + 1)}


def _body_pieces(body: str) -> set[str]:
    """A body as it may appear in a log line: as text, in base64 (JSON
    frames), in hex (websockets' rendering of binary frames)."""
    raw = body.encode()
    hex_bytes = [f"{b:02x}" for b in raw]
    return (
        _pieces(body, 8)
        | _pieces(base64.b64encode(raw).decode().rstrip("="), 8)
        | {" ".join(hex_bytes[i : i + 8]) for i in range(len(raw) - 7)}
    )


def _token_pieces(token: str) -> set[str]:
    # The header is the same in every token; the payload and signature are its own.
    _, payload, signature = token.split(".")
    return _pieces(payload, 16) | _pieces(signature, 16)


async def test_debug_logs_carry_no_token_and_no_body(
    debug_cluster: LocalCluster, pg_pool: asyncpg.Pool
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    issuer = TokenIssuer((debug_cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())
    alice_token = issuer.mint(Identity(alice, "phone"), ttl_s=600)
    bob_token = issuer.mint(Identity(bob, "laptop"), ttl_s=600)
    to_bob, to_alice = "zebra-pudding-to-bob", "quokka-custard-to-alice"

    # As a browser connects (the token in the URL), and as a native client does.
    alice_ws = await Connection.open(debug_cluster.edge_url, alice_token, token_in_query=True)
    bob_ws = await Connection.open(debug_cluster.edge_url, bob_token, encoding=Encoding.BINARY)
    try:
        for sender, recipient, to_user, body in (
            (alice_ws, bob_ws, bob, to_bob),
            (bob_ws, alice_ws, alice, to_alice),
        ):
            await sender.send_text(to_user=to_user, body=body)
            await sender.recv_kind("ack")
            delivered = (await recipient.recv_kind("deliver")).deliver.message
            assert delivered.body.decode() == body
    finally:
        await alice_ws.close()
        await bob_ws.close()
    debug_cluster.stop()  # flushes every log

    logs = {
        path.name: path.read_text(errors="replace")
        for path in (debug_cluster.config.workdir / "logs").glob("*.log")
    }
    assert {"gateway-1.log", "gateway-2.log", "msgsvc.log", "envoy.log"} <= logs.keys()
    tokens = _token_pieces(alice_token) | _token_pieces(bob_token)
    bodies = _body_pieces(to_bob) | _body_pieces(to_alice)
    for name, text in logs.items():
        assert [t for t in tokens if t in text] == [], f"a token in {name}"
        assert [b for b in bodies if b in text] == [], f"a message body in {name}"

    # The level took effect: our own DEBUG records are there.
    gateway_records = [
        json.loads(line)
        for name in ("gateway-1.log", "gateway-2.log")
        for line in logs[name].splitlines()
        if line.startswith("{")
    ]
    assert any(
        r["level"] == "debug" and r["logger"].startswith("gateway") for r in gateway_records
    ), "no DEBUG record from the gateway"
