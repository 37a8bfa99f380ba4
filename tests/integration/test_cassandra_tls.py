"""Cassandra over TLS, through ``chatmesh.cassandra_io.connect``.

The shared local Cassandra speaks plaintext, and a private one costs a
gigabyte and a minute, so a TLS terminator (``tests.support.tcp_proxy``
with a server certificate from the test CA, requiring a client certificate)
stands in front of it: the driver completes a real TLS handshake, then
speaks CQL to the real server through it. The single node announces
itself at the address dialled, so every connection of the driver, not just
the first, goes through the terminator.

Credentials are configuration only here: the shared server runs
``AllowAllAuthenticator``, never asks for them, and is not ours to
reconfigure. What is proven is that they reach the driver's
``PlainTextAuthProvider`` and that offering them to a server that does not
ask is harmless.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import NoHostAvailable

from chatmesh import cassandra_io
from chatmesh.settings import CassandraSettings, SettingsError
from tests.support.store_pki import StorePki, issue_store_pki
from tests.support.tcp_proxy import TcpProxy

SHARED = CassandraSettings.from_env(os.environ)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StorePki:
    return issue_store_pki(tmp_path_factory.mktemp("cassandra-pki"))


def _terminator(pki: StorePki, *, by_name_only: bool = False) -> TcpProxy:
    proxy = TcpProxy(
        SHARED.hosts[0],
        SHARED.port,
        server_tls=pki.server_context(by_name_only=by_name_only),
    )
    proxy.start()
    return proxy


@pytest.fixture(scope="module")
def terminator(pki: StorePki) -> Iterator[TcpProxy]:
    proxy = _terminator(pki)
    yield proxy
    proxy.close()


def _settings(port: int, pki: StorePki, **env: str) -> CassandraSettings:
    return CassandraSettings.from_env(
        {
            "CHATMESH_CASSANDRA_HOSTS": "127.0.0.1",
            "CHATMESH_CASSANDRA_PORT": str(port),
            "CHATMESH_CASSANDRA_CA_FILE": str(pki.ca_file),
            "CHATMESH_CASSANDRA_CERT_FILE": str(pki.client.cert_file),
            "CHATMESH_CASSANDRA_KEY_FILE": str(pki.client.key_file),
            **env,
        }
    )


def _release_version(settings: CassandraSettings) -> str:
    cluster, session = cassandra_io.connect(settings)
    try:
        return str(session.execute("SELECT release_version FROM system.local").one()[0])
    finally:
        cluster.shutdown()


def test_tls_with_a_client_certificate_reaches_the_real_server(
    terminator: TcpProxy, pki: StorePki
) -> None:
    settings = _settings(
        terminator.port,
        pki,
        CHATMESH_CASSANDRA_USERNAME="msgsvc",
        CHATMESH_CASSANDRA_PASSWORD="secret",
    )
    seen = len(terminator.client_certificates)
    assert _release_version(settings).startswith("5.")
    presented = terminator.client_certificates[seen:]
    assert presented, "every connection went through the TLS terminator"
    assert all(
        ("URI", "spiffe://chatmesh.local/client/tests") in cert["subjectAltName"]
        for cert in presented
    )


def test_a_client_not_trusting_the_servers_ca_refuses_it(
    terminator: TcpProxy, pki: StorePki
) -> None:
    settings = _settings(
        terminator.port, pki, CHATMESH_CASSANDRA_CA_FILE=str(pki.untrusted_ca_file)
    )
    with pytest.raises(NoHostAvailable, match="certificate verify failed"):
        _release_version(settings)


def test_a_plaintext_client_is_refused(terminator: TcpProxy) -> None:
    # Its first frame is no TLS handshake: nothing reaches Cassandra, and
    # the driver gives up on the connection after its connect timeout.
    with pytest.raises(NoHostAvailable):
        _release_version(
            CassandraSettings.from_env({"CHATMESH_CASSANDRA_PORT": str(terminator.port)})
        )


def test_hostname_checking_can_be_relaxed_for_nodes_reached_by_address(pki: StorePki) -> None:
    """A certificate naming ``localhost`` only, dialled at 127.0.0.1."""
    proxy = _terminator(pki, by_name_only=True)
    try:
        with pytest.raises(NoHostAvailable, match="IP address mismatch"):
            _release_version(_settings(proxy.port, pki))
        relaxed = _settings(proxy.port, pki, CHATMESH_CASSANDRA_TLS_CHECK_HOSTNAME="false")
        assert _release_version(relaxed).startswith("5.")
    finally:
        proxy.close()


def test_credentials_reach_the_drivers_auth_provider(pki: StorePki) -> None:
    settings = _settings(
        9042, pki, CHATMESH_CASSANDRA_USERNAME="msgsvc", CHATMESH_CASSANDRA_PASSWORD="secret"
    )
    provider = cassandra_io.build_cluster(settings).auth_provider
    assert isinstance(provider, PlainTextAuthProvider)
    assert (provider.username, provider.password) == ("msgsvc", "secret")
    assert "secret" not in repr(settings)


def test_defaults_are_plaintext_without_credentials() -> None:
    cluster = cassandra_io.build_cluster(CassandraSettings.from_env({}))
    assert cluster.auth_provider is None
    assert cluster.ssl_context is None


@pytest.mark.parametrize(
    "env",
    [
        {"CHATMESH_CASSANDRA_USERNAME": "msgsvc"},
        {"CHATMESH_CASSANDRA_CERT_FILE": "/tls.crt"},
        {"CHATMESH_CASSANDRA_CERT_FILE": "/tls.crt", "CHATMESH_CASSANDRA_KEY_FILE": "/tls.key"},
        {"CHATMESH_CASSANDRA_TLS_CHECK_HOSTNAME": "maybe"},
    ],
)
def test_incomplete_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        CassandraSettings.from_env(env)
