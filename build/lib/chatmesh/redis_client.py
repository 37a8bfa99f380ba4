"""Redis clients with a bounded, blocking connection pool.

Under load, concurrent commands wait (up to ``POOL_TIMEOUT_S``) for a free
connection instead of failing at once with "too many connections", and one
process never opens more than ``MAX_CONNECTIONS`` sockets to Redis.
"""

from __future__ import annotations

import redis.asyncio as redis

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0


def connect(url: str, *, max_connections: int = MAX_CONNECTIONS) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)
