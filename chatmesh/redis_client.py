"""Redis clients with a bounded, blocking connection pool.

Under load, concurrent commands wait (up to ``POOL_TIMEOUT_S``) for a free
connection instead of failing at once with "too many connections", and one
process never opens more than ``MAX_CONNECTIONS`` sockets to Redis.

After Redis restarts, every pooled connection is dead and the first command
on each would fail; commands are retried on a fresh connection instead. A
retried command may have run twice, which every caller tolerates: claims
are SET NX (the second run reads back our own binding), session writes are
idempotent, and a repeated publish is a repeated delivery that clients drop.

Credentials and TLS come from the URL: ``rediss://user:password@host:port/db``
connects over TLS as an ACL user, verifying the server's certificate and
that it names ``host``; ``TlsFiles`` adds the CA to verify by and a client
certificate for servers that require one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from chatmesh.settings import TlsFiles

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0
RETRIES = 3  # with backoff up to 1 s: rides out a restart's first failures


def connect(
    url: str, *, tls: TlsFiles | None = None, max_connections: int = MAX_CONNECTIONS
) -> redis.Redis:
    """Connects to nothing yet: the pool dials on first use."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
        **_tls_options(url, tls or TlsFiles()),
    )
    return redis.Redis(connection_pool=pool)


def _tls_options(url: str, tls: TlsFiles) -> dict[str, Any]:
    if urlsplit(url).scheme != "rediss":
        if tls.any:
            # Certificates for a plaintext URL are a misconfiguration that
            # would otherwise send credentials and data in the clear.
            raise ValueError("Redis TLS files are set but the Redis URL is not rediss://")
        return {}
    return {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(tls.ca_file) if tls.ca_file is not None else None,
        "ssl_certfile": str(tls.cert_file) if tls.cert_file is not None else None,
        "ssl_keyfile": str(tls.key_file) if tls.key_file is not None else None,
    }
