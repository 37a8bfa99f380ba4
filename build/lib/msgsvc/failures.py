"""Classifying failures of the backing stores into the error vocabulary."""

from __future__ import annotations

import asyncpg
import cassandra
import cassandra.cluster
import redis.exceptions

from chatmesh.errors import ChatmeshError, Unavailable

_STORE_FAILURES: tuple[type[BaseException], ...] = (
    cassandra.DriverException,
    cassandra.RequestExecutionException,
    cassandra.cluster.NoHostAvailable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def classify(exc: BaseException) -> ChatmeshError | None:
    """The client-facing error for a failure, or None for a bug."""
    if isinstance(exc, ChatmeshError):
        return exc
    if isinstance(exc, _STORE_FAILURES):
        # Safe to retry: sends are idempotent by client_msg_id.
        return Unavailable("STORE_UNAVAILABLE", "a backing store is unavailable; retry")
    return None
