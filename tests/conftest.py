"""Shared fixtures: real backing stores, isolated per test run.

Every run gets its own Cassandra keyspace, PostgreSQL database and Redis key
prefix, so runs never see each other's data and nothing is mocked. The
stores themselves are started by ``deploy/local/backing.sh up`` (``make
test`` does that first).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import asyncpg
import pytest
import redis.asyncio as redis
from cassandra.cluster import Session

from chatmesh import cassandra_io
from chatmesh.schema.migrate import migrate_cassandra, migrate_postgres
from chatmesh.settings import DEFAULT_PG_DSN, DEFAULT_REDIS_URL, CassandraSettings
from msgsvc.storage.messages import CassandraMessageStore


@dataclass(frozen=True)
class Stores:
    run_id: str
    pg_dsn: str
    redis_url: str
    key_prefix: str
    cassandra: CassandraSettings


def _admin_dsn() -> str:
    return os.environ.get("CHATMESH_PG_DSN", DEFAULT_PG_DSN)


def _with_database(dsn: str, database: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def stores() -> Iterator[Stores]:
    run_id = "t" + secrets.token_hex(4)
    admin_dsn = _admin_dsn()
    database = f"chatmesh_{run_id}"

    async def create_db() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    async def drop_db() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create_db())
    pg_dsn = _with_database(admin_dsn, database)
    asyncio.run(migrate_postgres(pg_dsn))
    cassandra = replace(CassandraSettings.from_env(os.environ), keyspace=f"chatmesh_{run_id}")
    migrate_cassandra(cassandra)
    yield Stores(
        run_id=run_id,
        pg_dsn=pg_dsn,
        redis_url=os.environ.get("CHATMESH_REDIS_URL", DEFAULT_REDIS_URL),
        key_prefix=f"{run_id}:",
        cassandra=cassandra,
    )
    asyncio.run(drop_db())
    cluster, session = cassandra_io.connect(cassandra)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {cassandra.keyspace}", timeout=60)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def cassandra_session(stores: Stores) -> Iterator[Session]:
    cluster, session = cassandra_io.connect(stores.cassandra)
    yield session
    cluster.shutdown()


@pytest.fixture
def message_store(stores: Stores, cassandra_session: Session) -> CassandraMessageStore:
    return CassandraMessageStore(cassandra_session, stores.cassandra.keyspace)


@pytest.fixture
async def pg_pool(stores: Stores) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stores.pg_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def redis_client(stores: Stores) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(stores.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix(stores: Stores) -> str:
    """A prefix of its own for each test, inside the run's prefix."""
    return f"{stores.key_prefix}{secrets.token_hex(3)}:"


def unique(name: str) -> str:
    """A user or device id no other test uses."""
    return f"{name}-{secrets.token_hex(4)}"


async def add_users(pool: asyncpg.Pool, *user_ids: str) -> None:
    await pool.executemany(
        "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        [(u,) for u in user_ids],
    )
