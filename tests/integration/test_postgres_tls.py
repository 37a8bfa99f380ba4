"""PostgreSQL over TLS with a SCRAM password, configured by the DSN alone.

asyncpg reads libpq's ``sslmode`` and ``sslrootcert`` from the DSN (and
``PGPASSWORD``, ``PGSSLROOTCERT``, ... from the environment), so the pools
and connections msgsvc, the fan-out workers, the migrations and the local
cluster open need nothing beyond ``CHATMESH_PG_DSN``. Proven here against a
private cluster (``tests.support.private_postgres``) that accepts nothing
but TLS and passwords.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from chatmesh.schema.migrate import migrate_postgres
from msgsvc.settings import MsgsvcSettings
from tests.support.private_postgres import PrivatePostgres, tls_postgres
from tests.support.store_pki import StorePki, issue_store_pki

# Survives the URL: the DSN percent-encodes it.
PASSWORD = "p@ss:/" + secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StorePki:
    return issue_store_pki(tmp_path_factory.mktemp("pg-pki"))


@pytest.fixture(scope="module")
def server(pki: StorePki) -> Iterator[PrivatePostgres]:
    with tls_postgres(pki, user="chatmesh", password=PASSWORD) as running:
        yield running


async def test_msgsvc_pool_verifies_the_server_and_migrates(
    server: PrivatePostgres, pki: StorePki
) -> None:
    dsn = server.dsn(sslrootcert=pki.ca_file)
    settings = MsgsvcSettings.from_env({"CHATMESH_MESH_TLS_DIR": "unused", "CHATMESH_PG_DSN": dsn})
    assert await migrate_postgres(settings.pg_dsn)
    pool = await asyncpg.create_pool(settings.pg_dsn, min_size=0, max_size=2)
    try:
        row = await pool.fetchrow(
            "SELECT s.ssl, current_user AS who,"
            " (SELECT count(*) FROM schema_migrations) AS migrations"
            " FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
        )
    finally:
        await pool.close()
    assert row is not None
    assert row["ssl"] is True
    assert row["who"] == "chatmesh"
    assert row["migrations"] > 0


async def test_the_password_may_come_from_pgpassword(
    server: PrivatePostgres, pki: StorePki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    conn = await asyncpg.connect(server.dsn(password=None, sslrootcert=pki.ca_file))
    try:
        assert await conn.fetchval("SELECT current_user") == "chatmesh"
    finally:
        await conn.close()


async def test_a_wrong_password_is_refused(server: PrivatePostgres, pki: StorePki) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError, match="password authentication failed"):
        await asyncpg.connect(server.dsn(password="wrong", sslrootcert=pki.ca_file))


async def test_a_plaintext_connection_is_refused(server: PrivatePostgres) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(server.dsn(sslmode="disable"))


async def test_a_client_not_trusting_the_servers_ca_refuses_it(
    server: PrivatePostgres, pki: StorePki
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await asyncpg.connect(server.dsn(sslrootcert=pki.untrusted_ca_file))


async def test_verify_full_without_a_root_certificate_fails_before_connecting(
    server: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlike libpq 16, asyncpg has no ``sslrootcert=system``: without a CA
    file it looks for ~/.postgresql/root.crt and stops there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    with pytest.raises(asyncpg.ClientConfigurationError, match="root certificate file"):
        await asyncpg.connect(server.dsn())
