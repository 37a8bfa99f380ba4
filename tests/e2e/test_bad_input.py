"""Bad input gets a typed error; the connection and the services stay healthy."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection
from chatmesh.clock import SystemClock
from chatmesh.devcluster import LocalCluster
from chatmesh.frames import Encoding, decode_server_frame, encode_client_frame
from chatmesh.v1 import client_pb2, common_pb2
from gateway.edge import HARD_MAX_FRAME_BYTES, MAX_FRAME_BYTES, REQUEST_BURST
from tests.conftest import add_users, unique


async def _still_usable(client: Connection) -> None:
    await client.send_raw('{"requestId": "p", "ping": {"clientTimeMs": "42"}}')
    pong = (await client.recv_kind("pong")).pong
    assert pong.client_time_ms == 42


@pytest.mark.parametrize("header", [None, "Bearer not-a-jwt", "Basic YWxpY2U6c2VjcmV0"])
async def test_connection_without_a_valid_token_is_refused_with_401(
    cluster: LocalCluster, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    with pytest.raises(InvalidStatus) as refused:
        await connect(cluster.edge_url, additional_headers=headers)
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_expired_token_is_refused(cluster: LocalCluster) -> None:
    class LongAgo:
        def now_ms(self) -> int:
            return SystemClock().now_ms() - 3600_000

    key = (cluster.keys_dir / "jwt-private.pem").read_bytes()
    token = TokenIssuer(key, LongAgo()).mint(Identity("alice", "phone"), ttl_s=60)
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{cluster.edge_url}?access_token={token}")
    assert refused.value.response.status_code == 401


async def test_token_in_query_parameter_is_accepted(
    cluster: LocalCluster, issuer: TokenIssuer
) -> None:
    token = issuer.mint(Identity(unique("carol"), "web"), ttl_s=60)
    async with connect(f"{cluster.edge_url}?access_token={token}") as ws:
        assert decode_server_frame(await ws.recv()).WhichOneof("kind") == "hello"


@pytest.mark.parametrize(
    "frame",
    ["this is not json", "{}", '{"send": {"clientMsgId": 7}}', '{"bogus": true}', "[]"],
)
async def test_malformed_frame_gets_an_error_and_the_connection_stays(
    open_client, frame: str
) -> None:  # type: ignore[no-untyped-def]
    client: Connection = await open_client(unique("mallory"))
    await client.send_raw(frame)
    error = (await client.recv_kind("error")).error
    assert error.code == common_pb2.ERROR_CODE_INVALID_ARGUMENT
    assert error.reason == "MALFORMED_FRAME"
    await _still_usable(client)


async def test_frame_over_the_limit_is_rejected_and_the_connection_stays(open_client) -> None:  # type: ignore[no-untyped-def]
    client: Connection = await open_client(unique("mallory"))
    await client.ws.send("x" * (MAX_FRAME_BYTES + 1))
    error = (await client.recv_kind("error")).error
    assert error.reason == "FRAME_TOO_LARGE"
    await _still_usable(client)


async def test_frame_over_the_hard_limit_closes_with_1009(open_client) -> None:  # type: ignore[no-untyped-def]
    client: Connection = await open_client(unique("mallory"))
    await client.ws.send(b"\x00" * (HARD_MAX_FRAME_BYTES + 1))
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv()
    assert client.ws.close_code == 1009


async def test_sending_to_an_unknown_user_is_not_found(open_client, pg_pool: asyncpg.Pool) -> None:  # type: ignore[no-untyped-def]
    alice = unique("alice")
    await add_users(pg_pool, alice)
    client: Connection = await open_client(alice)
    client_msg_id = await client.send_text(to_user=unique("nobody"))
    error = (await client.recv_kind("error")).error
    assert error.code == common_pb2.ERROR_CODE_NOT_FOUND
    assert error.reason == "USER_NOT_FOUND"
    assert error.client_msg_id == client_msg_id
    assert error.request_id == f"r-{client_msg_id}"
    await _still_usable(client)


async def test_sending_to_someone_elses_conversation_is_not_found(
    open_client,
    pg_pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob, eve = unique("alice"), unique("bob"), unique("eve")
    await add_users(pg_pool, alice, bob, eve)
    alice_ws: Connection = await open_client(alice)
    await alice_ws.send_text(to_user=bob)
    conversation = (await alice_ws.recv_kind("ack")).ack.conversation_id
    eve_ws: Connection = await open_client(eve)
    await eve_ws.send_text(conversation=conversation, body="let me in")
    error = (await eve_ws.recv_kind("error")).error
    assert (error.code, error.reason) == (common_pb2.ERROR_CODE_NOT_FOUND, "CONVERSATION_NOT_FOUND")
    # Nothing was written on eve's behalf, and the conversation still works.
    await alice_ws.send_text(conversation=conversation, body="still here")
    assert (await alice_ws.recv_kind("ack")).ack.conversation_id == conversation


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        (
            client_pb2.SendFrame(client_msg_id="", to_user_id="bob", kind=1, body=b"x"),
            "MISSING_CLIENT_MSG_ID",
        ),
        (client_pb2.SendFrame(client_msg_id="c", kind=1, body=b"x"), "MISSING_TARGET"),
        (client_pb2.SendFrame(client_msg_id="c", to_user_id="bob", body=b"x"), "UNKNOWN_KIND"),
        (
            client_pb2.SendFrame(client_msg_id="c", to_user_id="bob", kind=1, body=b"\xff\xfe"),
            "BODY_NOT_UTF8",
        ),
        (
            client_pb2.SendFrame(client_msg_id="c", to_user_id="bad id!", kind=1, body=b"x"),
            "INVALID_USER_ID",
        ),
        (
            client_pb2.SendFrame(client_msg_id="c" * 65, to_user_id="bob", kind=1, body=b"x"),
            "CLIENT_MSG_ID_TOO_LONG",
        ),
    ],
)
async def test_invalid_sends_get_typed_errors_over_binary_frames(
    cluster: LocalCluster,
    issuer: TokenIssuer,
    pg_pool: asyncpg.Pool,
    send: client_pb2.SendFrame,
    reason: str,
) -> None:
    alice = unique("alice")
    await add_users(pg_pool, alice, "bob")
    token = issuer.mint(Identity(alice, "phone"), ttl_s=60)
    # A bare socket: the test looks at the encoding of the raw reply.
    async with connect(f"{cluster.edge_url}?access_token={token}") as ws:
        assert decode_server_frame(await ws.recv()).WhichOneof("kind") == "hello"
        await ws.send(
            encode_client_frame(client_pb2.ClientFrame(request_id="q", send=send), Encoding.BINARY)
        )
        raw = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(raw, bytes)  # answered in the encoding the client used
    frame = decode_server_frame(raw)
    assert frame.error.reason == reason
    assert frame.error.code == common_pb2.ERROR_CODE_INVALID_ARGUMENT
    assert frame.error.request_id == "q"


async def test_flooding_is_rate_limited_and_the_connection_stays(open_client) -> None:  # type: ignore[no-untyped-def]
    client: Connection = await open_client(unique("flood"))
    flood = REQUEST_BURST + 100
    for i in range(flood):
        await client.send_raw(f'{{"requestId": "f{i}", "ping": {{"clientTimeMs": "{i}"}}}}')
    kinds: dict[str, int] = {}
    limited = 0
    for _ in range(flood):
        frame = await client.recv()
        kind = frame.WhichOneof("kind")
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "error":
            assert frame.error.code == common_pb2.ERROR_CODE_RESOURCE_EXHAUSTED
            assert frame.error.reason == "RATE_LIMITED"
            limited += 1
    assert limited >= 50  # 100 over the burst, less what refilled while sending
    assert kinds["pong"] >= REQUEST_BURST
    await asyncio.sleep(0.2)  # tokens refill: the connection is usable again
    await _still_usable(client)


async def test_binary_clients_are_greeted_in_binary(
    cluster: LocalCluster, issuer: TokenIssuer
) -> None:
    token = issuer.mint(Identity(unique("bin"), "iot"), ttl_s=60)
    async with connect(f"{cluster.edge_url}?encoding=binary&access_token={token}") as ws:
        raw = await ws.recv()
        assert isinstance(raw, bytes)
        assert decode_server_frame(raw).hello.device_id == "iot"
