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
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from cassandra.cluster import Session
from hypothesis import settings

from chatmesh import cassandra_io
from chatmesh.isolation import IsolatedStores, isolated_stores
from chatmesh.kafka_io import KafkaSettings, LogProducer, ensure_topic, topic_name
from chatmesh.mesh.credentials import MeshTls
from chatmesh.mesh.pki import issue_local_mesh
from chatmesh.redis_client import RedisClient
from chatmesh.redis_client import connect as connect_redis
from msgsvc.media.objects import S3ObjectStore, s3_object_store
from msgsvc.message_log import KafkaMessageLog
from msgsvc.storage.messages import CassandraMessageStore

Stores = IsolatedStores

# Property tests check behaviour, not speed: a loaded CI machine must not turn
# a slow example into a failure.
settings.register_profile("chatmesh", deadline=None, print_blob=True)
settings.load_profile("chatmesh")


@pytest.fixture(scope="session")
def stores() -> Iterator[Stores]:
    with isolated_stores("t") as isolated:
        yield isolated


@pytest.fixture(scope="session")
def mesh_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mesh CA of the run, with credentials for every service and the
    ``client/tests`` identity, for servers the tests run in-process."""
    return issue_local_mesh(tmp_path_factory.mktemp("mesh"), clients=("tests",))


@pytest.fixture(scope="session")
def mesh_tls(mesh_pki: Path) -> Callable[[str], MeshTls]:
    """Credentials by identity: ``mesh_tls("service/msgsvc")``, ``mesh_tls("client/tests")``."""
    return lambda identity: MeshTls(mesh_pki / identity)


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
async def redis_client(stores: Stores) -> AsyncIterator[RedisClient]:
    client = connect_redis(stores.redis_url, cluster=stores.redis_cluster)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def kafka(stores: Stores) -> KafkaSettings:
    """The run's message log topic, shared by the tests (their conversations differ)."""
    settings = KafkaSettings(
        bootstrap=stores.kafka_bootstrap,
        topic=topic_name(stores.key_prefix, "messages"),
        partitions=4,
        # Three on the multi-node stores, as their brokers ask.
        replication=int(os.environ.get("CHATMESH_MESSAGE_TOPIC_REPLICATION", "1")),
        security=stores.kafka_security,
    )
    asyncio.run(ensure_topic(settings))
    return settings


@pytest.fixture
async def message_log(kafka: KafkaSettings) -> AsyncIterator[KafkaMessageLog]:
    producer = LogProducer(kafka, client_id="tests")
    yield KafkaMessageLog(producer, kafka.topic)
    await producer.close()


@pytest.fixture
def key_prefix(stores: Stores) -> str:
    """A prefix of its own for each test, inside the run's prefix."""
    return f"{stores.key_prefix}{secrets.token_hex(3)}:"


def unique(name: str) -> str:
    """A user or device id no other test uses."""
    return f"{name}-{secrets.token_hex(4)}"


# The device ids tests connect from; only registered devices may send.
TEST_DEVICES = ("phone", "laptop", "tablet", "web", "iot", "dev0", "dev1", "sync-device")


async def add_users(
    pool: asyncpg.Pool, *user_ids: str, devices: tuple[str, ...] = TEST_DEVICES
) -> None:
    """Registers users, each with the given devices."""
    await pool.executemany(
        "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        [(u,) for u in user_ids],
    )
    await pool.executemany(
        "INSERT INTO devices (user_id, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(u, d) for u in user_ids for d in devices],
    )


@pytest.fixture
async def media_objects(stores: Stores) -> AsyncIterator[S3ObjectStore]:
    """The run's bucket in the local object store, as msgsvc reaches it."""
    async with s3_object_store(stores.object_store) as objects:
        yield objects
