"""Clients over TLS (``wss://``) through Envoy, trusting the local edge CA alone."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from websockets.exceptions import InvalidMessage

from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, Device, Event, MessageAdded, tls_context
from chatmesh.devcluster import LocalCluster
from chatmesh.mesh.pki import CA_FILE, CERT_FILE, EDGE_DIR, KEY_FILE
from chatmesh.v1 import client_pb2
from tests.conftest import add_users, unique

QUIET_S = 0.5  # long enough for a duplicate published with the original to arrive
CONNECT_TIMEOUT_S = 10.0


async def _frames_until_quiet(conn: Connection) -> list[client_pb2.ServerFrame]:
    frames = []
    while True:
        try:
            frames.append(await conn.recv(QUIET_S))
        except TimeoutError:
            return frames


async def test_two_users_chat_over_tls(
    cluster: LocalCluster,
    open_client: Callable[..., Awaitable[Connection]],
    pg_pool: asyncpg.Pool,
) -> None:
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    tls = tls_context(cluster.edge_ca_file)
    alice_ws = await open_client(alice, url=cluster.edge_tls_url, tls=tls)
    bob_ws = await open_client(bob, url=cluster.edge_tls_url, tls=tls)
    for conn in (alice_ws, bob_ws):
        tls_session = conn.ws.transport.get_extra_info("ssl_object")
        assert tls_session.version() in ("TLSv1.2", "TLSv1.3")
        assert tls_session.selected_alpn_protocol() == "http/1.1"

    for sender, recipient, body in (
        (alice_ws, bob_ws, "hello Bob, over TLS"),
        (bob_ws, alice_ws, "hello Alice, over TLS too"),
    ):
        client_msg_id = await sender.send_text(to_user=recipient.hello.user_id, body=body)
        ack = (await sender.recv_kind("ack")).ack
        assert ack.client_msg_id == client_msg_id
        delivered = (await recipient.recv_kind("deliver")).deliver.message
        assert (delivered.message_id, delivered.body.decode()) == (ack.message_id, body)
        assert delivered.sender_user_id == sender.hello.user_id

        later = await asyncio.gather(_frames_until_quiet(sender), _frames_until_quiet(recipient))
        again = [
            frame
            for frames in later
            for frame in frames
            if frame.WhichOneof("kind") in ("ack", "deliver")
        ]
        assert again == [], "acked or delivered twice"


async def test_device_sends_over_tls(
    cluster: LocalCluster, issuer: TokenIssuer, pg_pool: asyncpg.Pool
) -> None:
    # The client library as the interactive client runs it.
    alice, bob = unique("alice"), unique("bob")
    await add_users(pg_pool, alice, bob)
    acked: asyncio.Queue[str] = asyncio.Queue()

    def on_event(event: Event) -> None:
        if isinstance(event, MessageAdded) and event.source == "ack":
            acked.put_nowait(event.message.client_msg_id)

    device = Device(
        alice,
        "phone",
        url=cluster.edge_tls_url,
        token_factory=lambda: issuer.mint(Identity(alice, "phone"), ttl_s=600),
        tls=tls_context(cluster.edge_ca_file),
        on_event=on_event,
    )
    device.start()
    try:
        client_msg_id = device.send_text(to_user=bob, body="queued, then sent over TLS")
        assert await asyncio.wait_for(acked.get(), CONNECT_TIMEOUT_S) == client_msg_id
    finally:
        await device.stop()
    assert acked.empty()


async def test_plaintext_websocket_is_refused_on_the_tls_port(
    cluster: LocalCluster, issuer: TokenIssuer
) -> None:
    token = issuer.mint(Identity(unique("mallory"), "phone"), ttl_s=600)
    with pytest.raises(InvalidMessage):
        await Connection.open(f"ws://127.0.0.1:{cluster.config.ports.edge_tls}/", token)


@pytest.mark.parametrize("trusted", ["system CAs", "mesh CA"])
async def test_client_not_trusting_the_edge_ca_is_refused(
    cluster: LocalCluster, issuer: TokenIssuer, trusted: str
) -> None:
    # The mesh CA is the near miss: every mesh certificate names localhost
    # too, so trusting it for the edge would let any service pose as it.
    context = (
        ssl.create_default_context()
        if trusted == "system CAs"
        else tls_context(cluster.tls_dir / "ca" / CA_FILE)
    )
    token = issuer.mint(Identity(unique("mallory"), "phone"), ttl_s=600)
    with pytest.raises(ssl.SSLCertVerificationError):
        await Connection.open(cluster.edge_tls_url, token, tls=context)


# --- protocol versions --------------------------------------------------------


def _pinned(context: ssl.SSLContext, version: ssl.TLSVersion) -> ssl.SSLContext:
    # OpenSSL 3 allows TLS 1.0 and 1.1 only at security level 0.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = version
    context.maximum_version = version
    return context


def _client(cluster: LocalCluster, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cluster.edge_ca_file)
    return _pinned(context, version)


def _handshake_in_memory(cluster: LocalCluster, version: ssl.TLSVersion) -> str | None:
    """The version a local server pinned to ``version``, serving the edge's
    certificate, agrees with ``_client`` on: proves the client can speak it."""
    server_context = _pinned(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), version)
    edge = cluster.tls_dir / EDGE_DIR
    server_context.load_cert_chain(edge / CERT_FILE, edge / KEY_FILE)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = _client(cluster, version).wrap_bio(to_client, to_server, server_hostname="127.0.0.1")
    server = server_context.wrap_bio(to_server, to_client, server_side=True)
    done: set[str] = set()
    for _ in range(10):  # a handshake is a few flights
        for name, end in (("client", client), ("server", server)):
            if name not in done:
                try:
                    end.do_handshake()
                    done.add(name)
                except ssl.SSLWantReadError:
                    pass
        if done == {"client", "server"}:
            return client.version()
    return None


def _handshake_with_edge(cluster: LocalCluster, version: ssl.TLSVersion) -> str | None:
    address = ("127.0.0.1", cluster.config.ports.edge_tls)
    with socket.create_connection(address, timeout=5) as raw:
        with _client(cluster, version).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version()


# Python deprecates offering TLS 1.0 and 1.1; offering them is the point here.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1, "TLSv1"), (ssl.TLSVersion.TLSv1_1, "TLSv1.1")],
    ids=["1.0", "1.1"],
)
def test_tls_listener_refuses_tls_below_1_2(
    cluster: LocalCluster, version: ssl.TLSVersion, name: str
) -> None:
    assert _handshake_in_memory(cluster, version) == name, "this client cannot offer it"
    with pytest.raises(ssl.SSLError) as refused:
        _handshake_with_edge(cluster, version)
    # An alert from the edge, not a client that had nothing to offer.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
    ids=["1.2", "1.3"],
)
def test_tls_listener_accepts_tls_1_2_and_up(
    cluster: LocalCluster, version: ssl.TLSVersion, name: str
) -> None:
    assert _handshake_with_edge(cluster, version) == name
