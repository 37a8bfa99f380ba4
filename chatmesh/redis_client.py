"""Redis clients with a bounded, blocking connection pool.

Under load, concurrent commands wait (up to ``POOL_TIMEOUT_S``) for a free
connection instead of failing at once with "too many connections", and one
process never opens more than ``MAX_CONNECTIONS`` sockets to Redis.

After Redis restarts, every pooled connection is dead and the first command
on each would fail; commands are retried on a fresh connection instead. A
retried command may have run twice, which every caller tolerates: claims
are SET NX (the second run reads back our own binding), session writes are
idempotent, and a repeated publish is a repeated delivery that clients drop.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0
RETRIES = 3  # with backoff up to 1 s: rides out a restart's first failures


def connect(url: str, *, max_connections: int = MAX_CONNECTIONS) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
    )
    return redis.Redis(connection_pool=pool)
