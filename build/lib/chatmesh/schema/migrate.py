"""Applies the versioned schemas.

PostgreSQL: numbered ``.sql`` files, each applied once inside a transaction
and recorded in ``schema_migrations``. Cassandra: numbered ``.cql`` files of
idempotent statements (``IF NOT EXISTS``) applied in order into the
configured keyspace, which is created with the configured replication.
"""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

from chatmesh import cassandra_io
from chatmesh.settings import CassandraSettings

log = logging.getLogger(__name__)


def _files(kind: str, suffix: str) -> list[tuple[str, str]]:
    folder = resources.files("chatmesh.schema").joinpath(kind)
    found = [(f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(suffix)]
    return sorted(found)


async def migrate_postgres(dsn: str) -> list[str]:
    """Applies pending migrations; returns the names applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # One migrator at a time: concurrent starts must not apply a file twice.
        await conn.execute("SELECT pg_advisory_lock(727274)")
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        done: list[str] = []
        for name, sql in _files("postgres", ".sql"):
            version = int(name.split("_", 1)[0])
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            done.append(name)
            log.info("postgres migration applied", extra={"fields": {"migration": name}})
        await conn.execute("SELECT pg_advisory_unlock(727274)")
        return done
    finally:
        await conn.close()


def migrate_cassandra(settings: CassandraSettings) -> list[str]:
    cluster, session = cassandra_io.connect(settings)
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} "
            f"WITH replication = {settings.replication}"
        )
        session.set_keyspace(settings.keyspace)
        names = []
        for name, cql in _files("cassandra", ".cql"):
            for statement in _statements(cql):
                session.execute(statement, timeout=60)
            names.append(name)
        return names
    finally:
        cluster.shutdown()


def _statements(cql: str) -> list[str]:
    lines = [line for line in cql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
