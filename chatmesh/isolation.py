"""Throwaway stores for one run of the tests or a benchmark.

Each run gets its own PostgreSQL database, Cassandra keyspace, Redis key
prefix, Kafka topics (named under that prefix) and object store bucket,
migrated to the current schema and dropped afterwards, so runs never see each
other's data.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from chatmesh import cassandra_io
from chatmesh.kafka_io import DEFAULT_BOOTSTRAP, delete_topics_with_prefix, topic_name
from chatmesh.kafka_security import KafkaSecurity
from chatmesh.object_store import ObjectStoreSettings
from chatmesh.s3_client import delete_bucket, ensure_bucket, object_store_client
from chatmesh.schema.migrate import migrate_cassandra, migrate_postgres
from chatmesh.settings import DEFAULT_PG_DSN, DEFAULT_REDIS_URL, CassandraSettings, env_bool


@dataclass(frozen=True, slots=True)
class IsolatedStores:
    run_id: str
    pg_dsn: str
    redis_url: str
    redis_cluster: bool  # redis_url names one node of a Redis Cluster
    key_prefix: str
    cassandra: CassandraSettings
    kafka_bootstrap: str
    kafka_security: KafkaSecurity
    object_store: ObjectStoreSettings  # the run's own bucket


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def bucket_name(run_id: str) -> str:
    """A valid S3 bucket name: 3 to 63 lower-case letters, digits and hyphens."""
    return f"chatmesh-{run_id}".lower()


async def _create_bucket(settings: ObjectStoreSettings) -> None:
    async with object_store_client(settings) as client:
        await ensure_bucket(client, settings.bucket)


async def _drop_bucket(settings: ObjectStoreSettings) -> None:
    async with object_store_client(settings) as client:
        await delete_bucket(client, settings.bucket)


def with_database(dsn: str, database: str) -> str:
    """The same server, credentials and TLS parameters, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def isolated_stores(kind: str = "t") -> Iterator[IsolatedStores]:
    """``kind`` starts the run id (``t`` for tests, ``b`` for benchmarks)."""
    run_id = kind + secrets.token_hex(4)
    admin_dsn = os.environ.get("CHATMESH_PG_DSN", DEFAULT_PG_DSN)
    database = f"chatmesh_{run_id}"
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{database}"'))
    pg_dsn = with_database(admin_dsn, database)
    cassandra = replace(CassandraSettings.from_env(os.environ), keyspace=f"chatmesh_{run_id}")
    kafka_bootstrap = os.environ.get("CHATMESH_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    kafka_security = KafkaSecurity.from_env(os.environ)
    object_store = replace(ObjectStoreSettings.from_env(os.environ), bucket=bucket_name(run_id))
    try:
        asyncio.run(migrate_postgres(pg_dsn))
        migrate_cassandra(cassandra)
        asyncio.run(_create_bucket(object_store))
        yield IsolatedStores(
            run_id=run_id,
            pg_dsn=pg_dsn,
            redis_url=os.environ.get("CHATMESH_REDIS_URL", DEFAULT_REDIS_URL),
            redis_cluster=env_bool(os.environ, "REDIS_CLUSTER", False),
            key_prefix=f"{run_id}:",
            cassandra=cassandra,
            kafka_bootstrap=kafka_bootstrap,
            kafka_security=kafka_security,
            object_store=object_store,
        )
    finally:
        # The run's topics (named under its key prefix) go too.
        asyncio.run(
            delete_topics_with_prefix(
                kafka_bootstrap, topic_name(f"{run_id}:", ""), security=kafka_security
            )
        )
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        cluster, session = cassandra_io.connect(cassandra)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {cassandra.keyspace}", timeout=60)
        finally:
            cluster.shutdown()
        asyncio.run(_drop_bucket(object_store))
