"""Connecting to Cassandra and awaiting its driver's futures from asyncio.

Credentials and TLS come from ``CassandraSettings``: a username and password
are offered to a cluster that runs an authenticator, and with a CA file
every connection (the control connection and each node's pool) is TLS.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    ResponseFuture,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from chatmesh.settings import CassandraSettings
from chatmesh.store_tls import client_context

try:  # libev is the driver's fastest reactor; fall back where it is not built.
    from cassandra.io.libevreactor import LibevConnection as _Connection
except ImportError:  # pragma: no cover
    from cassandra.io.asyncioreactor import AsyncioConnection as _Connection  # type: ignore[assignment]


def connect(settings: CassandraSettings, *, keyspace: str | None = None) -> tuple[Cluster, Session]:
    cluster = build_cluster(settings)
    return cluster, cluster.connect(keyspace)


class _ExpectedBatchWarnings(logging.Filter):
    """Drops the node's warning about unlogged batches that span partitions:
    the send path writes those on purpose (decision 0022), and a node left
    at its default threshold attaches the warning to every such batch, which
    the driver would log once per batch."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.args
            and isinstance(record.args, tuple)
            and str(record.args[0]).startswith("Unlogged batch covering")
        )


_EXPECTED_BATCH_WARNINGS = _ExpectedBatchWarnings()


def build_cluster(settings: CassandraSettings) -> Cluster:
    """The driver's cluster object, not connected yet."""
    # Idempotent: the filter is one object, added to the driver's logger.
    logging.getLogger("cassandra.protocol").addFilter(_EXPECTED_BATCH_WARNINGS)
    profile = ExecutionProfile(
        # Token-aware: each statement goes to a replica of its partition,
        # in the local datacenter.
        load_balancing_policy=TokenAwarePolicy(
            DCAwareRoundRobinPolicy(local_dc=settings.local_dc or "")
        ),
        consistency_level=ConsistencyLevel.name_to_value[settings.consistency],
        request_timeout=10.0,
    )
    cluster = Cluster(
        list(settings.hosts),
        port=settings.port,
        connection_class=_Connection,
        # Keyed by the driver's own sentinel: a profile under the name
        # "default" would be one more profile, and every statement would run
        # under the driver's built-in default (LOCAL_ONE) instead.
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        auth_provider=_auth_provider(settings),
        ssl_context=(
            client_context(settings.tls, check_hostname=settings.tls_check_hostname)
            if settings.tls is not None
            else None
        ),
    )
    return cluster


def _auth_provider(settings: CassandraSettings) -> PlainTextAuthProvider | None:
    if settings.username is None or settings.password is None:
        return None
    return PlainTextAuthProvider(username=settings.username, password=settings.password)


class LateSession:
    """A session connected when Cassandra first answers, not at start-up:
    a process must come up, unready, while Cassandra is down."""

    def __init__(self, settings: CassandraSettings) -> None:
        self._settings = settings
        self.cluster: Cluster | None = None
        self.session: Session | None = None

    async def connect(self) -> Session:
        self.cluster, self.session = await asyncio.to_thread(connect, self._settings)
        return self.session

    async def ping(self) -> None:
        """Raises unless connected and a node answers."""
        if self.session is None:
            raise ConnectionError("Cassandra not connected yet")
        await execute(self.session, "SELECT release_version FROM system.local", timeout_s=2.0)

    async def close(self) -> None:
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.shutdown)


def execute(
    session: Session, statement: Any, params: Any = None, *, timeout_s: float | None = None
) -> asyncio.Future[Any]:
    """Runs a statement without blocking the event loop; resolves to the rows.

    ``timeout_s`` overrides the profile's request timeout for this statement.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()
    response: ResponseFuture = (
        session.execute_async(statement, params)
        if timeout_s is None
        else session.execute_async(statement, params, timeout=timeout_s)
    )

    def done(rows: Any) -> None:
        if not result.done():
            result.set_result(rows)

    def failed(exc: BaseException) -> None:
        if not result.done():
            result.set_exception(exc)

    # The callbacks fire on the driver's I/O thread. Paging beyond the first
    # page is not used: every query here sets an explicit LIMIT.
    response.add_callbacks(
        lambda rows: loop.call_soon_threadsafe(done, rows),
        lambda exc: loop.call_soon_threadsafe(failed, exc),
    )
    return result
