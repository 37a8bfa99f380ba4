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

With ``cluster`` the URL names one node of a Redis Cluster, through which
the client learns the others (each command then goes to the primary of its
key's slot). Every key the services use carries a hash tag, so what a
pipeline, a MULTI or a script touches together lives in one slot; pub/sub
goes through ``chatmesh.pubsub``, which publishes to one shard, not to
every node.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.maint_notifications import MaintNotificationsConfig

from chatmesh.settings import TlsFiles

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0
RETRIES = 3  # with backoff up to 1 s: rides out a restart's first failures


class _WaitingCluster(RedisCluster):
    """A cluster client whose commands wait for one of ``MAX_CONNECTIONS``
    turns, as the single-node pool's do, rather than fail: redis-py's
    cluster client opens a connection per concurrent command up to its
    per-node limit and then raises ``MaxConnectionsError`` at once.

    It also learns the cluster's shape before any command starts: commands
    that start together on a new client otherwise race its first reading
    of the shape, which closes connections others are using."""

    _turns: asyncio.Semaphore

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:  # redis-py's flag: the shape is (to be) re-read
            await self.initialize()
        async with self._turns:
            return await super().execute_command(*args, **kwargs)


RedisClient: TypeAlias = redis.Redis | RedisCluster


def connect(
    url: str,
    *,
    tls: TlsFiles | None = None,
    max_connections: int = MAX_CONNECTIONS,
    cluster: bool = False,
    retries: int = RETRIES,
) -> RedisClient:
    """Connects to nothing yet: the pool dials on first use.

    ``retries`` 0 is for subscriptions: a subscriber that reconnected by
    itself would resume without anyone knowing what it missed meanwhile.
    """
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries)
    tls_options = _tls_options(url, tls or TlsFiles())
    if cluster:
        # Per node. Slots whose primary is down and has no replica to take
        # over fail their commands; the rest of the cluster keeps serving
        # (require_full_coverage=False), as the servers are configured to.
        client = _WaitingCluster.from_url(
            url,
            # Room beside the waiting commands for the pipelines, which take
            # a connection per node they reach.
            max_connections=2 * max_connections,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=30,
            retry=retry,
            require_full_coverage=False,
            # Server push notices of managed-cloud maintenance, which a
            # self-run Redis 7 does not send: asking for them costs every
            # new connection a command.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            **tls_options,
        )
        assert isinstance(client, _WaitingCluster)  # from_url builds its own class
        client._turns = asyncio.Semaphore(max_connections)
        return client
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        retry=retry,
        **tls_options,
    )
    return redis.Redis(connection_pool=pool)


async def ping(client: RedisClient) -> None:
    """Raises unless Redis answers; in a cluster, every primary the client
    knows of (a failed one drops out once the client re-reads the cluster's
    shape, which a failed command makes it do)."""
    if isinstance(client, RedisCluster):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


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
