"""Redis over TLS as an ACL user, through ``chatmesh.redis_client.connect``.

Against a private redis-server (``tests.support.private_redis``) that
terminates TLS itself: Debian's build has TLS compiled in. It listens on a
TLS port only, requires a client certificate from the test CA and has its
``default`` user switched off.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis
import redis.exceptions

from chatmesh import redis_client
from chatmesh.redis_service import RedisServiceSettings
from chatmesh.settings import TlsFiles
from tests.support.private_redis import PrivateRedis, tls_redis
from tests.support.store_pki import StorePki, issue_store_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StorePki:
    return issue_store_pki(tmp_path_factory.mktemp("redis-pki"))


@pytest.fixture(scope="module")
def server(pki: StorePki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with tls_redis(
        pki, tmp_path_factory.mktemp("redis"), user="msgsvc", password=secrets.token_urlsafe(16)
    ) as running:
        yield running


async def _ping(client: redis.Redis) -> None:
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_settings_from_the_environment_connect(server: PrivateRedis, pki: StorePki) -> None:
    settings = RedisServiceSettings.from_env(
        {
            "CHATMESH_MESH_TLS_DIR": str(Path("unused")),
            "CHATMESH_REDIS_URL": server.url(),
            "CHATMESH_REDIS_CA_FILE": str(pki.ca_file),
            "CHATMESH_REDIS_CERT_FILE": str(pki.client.cert_file),
            "CHATMESH_REDIS_KEY_FILE": str(pki.client.key_file),
        },
        default_grpc_port=0,
    )
    client = redis_client.connect(settings.redis_url, tls=settings.redis_tls)
    try:
        assert await client.acl_whoami() == "msgsvc"
        await client.set("tls-test", b"over tls")
        assert await client.get("tls-test") == b"over tls"
    finally:
        await client.aclose()


async def test_a_wrong_password_is_refused(server: PrivateRedis, pki: StorePki) -> None:
    client = redis_client.connect(server.url(password="not-the-password"), tls=pki.client_files())
    with pytest.raises(
        redis.exceptions.AuthenticationError, match="invalid username-password pair"
    ):
        await _ping(client)


async def test_a_plaintext_client_is_refused(server: PrivateRedis) -> None:
    client = redis_client.connect(server.url(scheme="redis"))
    # The server takes the first command for a broken handshake and hangs up.
    with pytest.raises(redis.exceptions.ConnectionError, match=r"reset by peer|closed by server"):
        await _ping(client)


async def test_a_client_not_trusting_the_servers_ca_refuses_it(
    server: PrivateRedis, pki: StorePki
) -> None:
    distrusting = TlsFiles(
        ca_file=pki.untrusted_ca_file,
        cert_file=pki.client.cert_file,
        key_file=pki.client.key_file,
    )
    client = redis_client.connect(server.url(), tls=distrusting)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        await _ping(client)


async def test_a_client_without_a_certificate_is_refused(
    server: PrivateRedis, pki: StorePki
) -> None:
    client = redis_client.connect(server.url(), tls=pki.client_files(with_certificate=False))
    # In TLS 1.3 the server checks client certificates after the client has
    # finished its handshake: its alert races with its reset of the socket.
    with pytest.raises(
        redis.exceptions.ConnectionError, match=r"certificate required|reset by peer"
    ):
        await _ping(client)


def test_tls_files_for_a_plaintext_url_are_a_configuration_error(pki: StorePki) -> None:
    with pytest.raises(ValueError, match="not rediss://"):
        redis_client.connect("redis://127.0.0.1:16379/0", tls=pki.client_files())
