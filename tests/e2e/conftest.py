"""The whole system as separate OS processes, reached like a client would."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding, decode_server_frame, encode_client_frame
from chatmesh.v1 import client_pb2
from tests.conftest import Stores

RECV_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def cluster(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    config = ClusterConfig.on_free_ports(stores, tmp_path_factory.mktemp("cluster"), "e2e")
    with LocalCluster.running(config) as local:
        yield local


@pytest.fixture(scope="session")
def issuer(cluster: LocalCluster) -> TokenIssuer:
    return TokenIssuer((cluster.keys_dir / "jwt-private.pem").read_bytes(), SystemClock())


class Client:
    """A WebSocket client speaking the JSON (or binary) frame protocol."""

    def __init__(self, ws: ClientConnection, hello: client_pb2.HelloFrame) -> None:
        self.ws = ws
        self.hello = hello

    @classmethod
    async def open(cls, url: str, token: str) -> Client:
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"})
        frame = decode_server_frame(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        assert frame.WhichOneof("kind") == "hello", frame
        return cls(ws, frame.hello)

    async def send_json(self, text: str) -> None:
        await self.ws.send(text)

    async def request(
        self, frame: client_pb2.ClientFrame, reply_kind: str, timeout_s: float = RECV_TIMEOUT_S
    ) -> client_pb2.ServerFrame:
        """Sends a frame and returns its answer: the frame of ``reply_kind``
        or an error carrying the same request_id. Other frames are skipped."""
        await self.ws.send(encode_client_frame(frame, Encoding.JSON))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.01)
            reply = await self.recv(remaining)
            kind = reply.WhichOneof("kind")
            if (
                kind in (reply_kind, "error")
                and getattr(reply, kind).request_id == frame.request_id
            ):
                return reply

    async def send_text_message(
        self,
        *,
        to_user: str | None = None,
        conversation: str | None = None,
        body: str = "hello",
        client_msg_id: str | None = None,
    ) -> str:
        client_msg_id = client_msg_id or uuid.uuid4().hex
        target = f'"toUserId": "{to_user}"' if to_user else f'"conversationId": "{conversation}"'
        encoded = base64.b64encode(body.encode()).decode()
        await self.ws.send(
            f'{{"requestId": "r-{client_msg_id}", "send": {{"clientMsgId": "{client_msg_id}",'
            f' {target}, "kind": "MESSAGE_KIND_TEXT", "body": "{encoded}"}}}}'
        )
        return client_msg_id

    async def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> client_pb2.ServerFrame:
        return decode_server_frame(await asyncio.wait_for(self.ws.recv(), timeout_s))

    async def recv_kind(
        self, kind: str, timeout_s: float = RECV_TIMEOUT_S
    ) -> client_pb2.ServerFrame:
        """The next frame of the given kind; frames of other kinds are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(remaining, 0.01))
            if frame.WhichOneof("kind") == kind:
                return frame

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
async def open_client(cluster: LocalCluster, issuer: TokenIssuer) -> AsyncIterator[object]:
    opened: list[Client] = []

    async def _open(user: str, device: str = "phone", *, url: str | None = None) -> Client:
        token = issuer.mint(Identity(user, device), ttl_s=600)
        client = await Client.open(url or cluster.edge_url, token)
        opened.append(client)
        return client

    yield _open
    for client in opened:
        await client.close()


def keys_dir(cluster: LocalCluster) -> Path:
    return cluster.keys_dir
