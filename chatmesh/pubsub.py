"""Redis pub/sub, on one Redis or on a Redis Cluster, and a subscriber that
holds its subscriptions for as long as the process runs.

Pub/sub is at-most-once: while a subscription is down, messages are lost.
The subscriber reconnects by itself and then reports the interruption, so
its owner can make up for what it missed (gateways tell their clients to
sync; msgsvc forgets every cached device registration). Its client must not
retry by itself (``redis_client.connect(..., retries=0)``): a connection
that came back within a retry would resubscribe without anyone knowing that
messages were lost in between.

On a Redis Cluster, plain PUBLISH is broadcast over the cluster bus to every
node. Here a cluster publishes with SPUBLISH and subscribes with SSUBSCRIBE
(Redis 7 sharded pub/sub): a message reaches only the shard that owns its
channel's slot, and each subscriber holds one connection per shard it
listens to. When a shard fails over, its subscriptions are lost with its
primary's connections: reported like any interruption, and made again on the
new primary once the client has re-read the cluster's shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import redis.asyncio as redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ClusterError, SlotNotCoveredError

from chatmesh.redis_client import RedisClient

log = logging.getLogger(__name__)

RESUBSCRIBE_BACKOFF_S = 0.5
# How long one wait for a message lasts before the subscriber checks again.
POLL_S = 5.0

Handler = Callable[[bytes], None]


class SubscriptionLost(Exception):
    """A subscription the subscriber did not end has ended."""


# What ends a subscription: the connection, or the cluster moving under it.
SUBSCRIPTION_LOST: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterError,
    SlotNotCoveredError,
    OSError,
    SubscriptionLost,
)


async def publish(client: RedisClient, channel: str, payload: bytes) -> int:
    """Publishes; returns how many subscribers received it."""
    if isinstance(client, RedisCluster):
        return int(await client.spublish(channel, payload))
    return int(await client.publish(channel, payload))


def queue_publish(pipe: Pipeline | ClusterPipeline, channel: str, payload: bytes) -> None:
    """Queues a publish on a pipeline of either kind."""
    if isinstance(pipe, ClusterPipeline):
        # The pipeline sends it to the primary of the channel's slot.
        pipe.execute_command("SPUBLISH", channel, payload)
    else:
        pipe.publish(channel, payload)


class Subscription:
    """Channels subscribed over one client's connections: plain channels on
    one Redis, shard channels on a cluster (``ShardedSubscription``)."""

    def __init__(self, client: RedisClient) -> None:
        self._impl: _PlainSubscription | ShardedSubscription = (
            ShardedSubscription(client)
            if isinstance(client, RedisCluster)
            else _PlainSubscription(client)
        )

    async def subscribe(self, *channels: str) -> None:
        if channels:
            await self._impl.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        if channels:
            await self._impl.unsubscribe(*channels)

    async def next_message(self, timeout_s: float) -> tuple[str, bytes] | None:
        """The next message (channel, payload), or None after ``timeout_s``.
        Raises one of ``SUBSCRIPTION_LOST`` when a subscription has ended
        without being asked to."""
        return await self._impl.next_message(timeout_s)

    async def aclose(self) -> None:
        await self._impl.aclose()


class _PlainSubscription:
    def __init__(self, client: redis.Redis) -> None:
        self._pubsub = client.pubsub()

    async def subscribe(self, *channels: str) -> None:
        await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        await self._pubsub.unsubscribe(*channels)

    async def next_message(self, timeout_s: float) -> tuple[str, bytes] | None:
        message = await self._pubsub.get_message(timeout=timeout_s)
        if message is None or _text(message["type"]) != "message":
            return None
        return _text(message["channel"]), message["data"]

    async def aclose(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class ShardedSubscription:
    """Shard channels, each subscribed on the primary that owns its slot,
    one connection per such primary, each read by a task of its own (so a
    quiet shard never delays a busy one).

    Nothing moves by itself: a connection lost or a channel the server
    unsubscribes (its slot moved) ends the subscription with an error, and
    its owner subscribes again after re-reading the cluster's shape, knowing
    it missed messages. Connections do not retry: one that came back by
    itself would hide that loss."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client
        self._shards: dict[str, _Shard] = {}  # by node name
        self._channel_shard: dict[str, str] = {}
        # Messages, or the error that ended a shard's connection.
        self._inbox: asyncio.Queue[tuple[str, bytes] | BaseException] = asyncio.Queue()
        self._leaving: set[str] = set()  # unsubscribed here, not yet confirmed

    async def subscribe(self, *channels: str) -> None:
        # A new client knows no slot's owner until it reads the cluster's shape.
        await self._client.initialize()
        by_node: dict[str, list[str]] = {}
        for channel in channels:
            node = self._client.get_node_from_key(channel)
            if node is None:
                raise SlotNotCoveredError(f"no primary serves the slot of {channel}")
            by_node.setdefault(node.name, []).append(channel)
            self._shards.setdefault(node.name, _Shard(node, self._inbox, self._leaving))
        for name, names in by_node.items():
            await self._shards[name].subscribe(names)
            self._channel_shard.update(dict.fromkeys(names, name))

    async def unsubscribe(self, *channels: str) -> None:
        by_node: dict[str, list[str]] = {}
        for channel in channels:
            if (name := self._channel_shard.pop(channel, None)) is not None:
                by_node.setdefault(name, []).append(channel)
        self._leaving.update(c for names in by_node.values() for c in names)
        for name, names in by_node.items():
            await self._shards[name].unsubscribe(names)

    async def next_message(self, timeout_s: float) -> tuple[str, bytes] | None:
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout_s)
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        for shard in self._shards.values():
            await shard.aclose()
        self._shards.clear()


class _Shard:
    """One primary's connection and the task that reads it."""

    def __init__(
        self,
        node: ClusterNode,
        inbox: asyncio.Queue[tuple[str, bytes] | BaseException],
        leaving: set[str],
    ) -> None:
        pool = ConnectionPool(
            connection_class=node.connection_class,
            max_connections=1,
            **{**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)},
        )
        self._pubsub = PubSub(connection_pool=pool)
        self._pool = pool
        self._inbox = inbox
        self._leaving = leaving
        self._reader: asyncio.Task[None] | None = None

    async def subscribe(self, channels: list[str]) -> None:
        # One SSUBSCRIBE may only name channels of one slot.
        for same_slot in _by_slot(channels):
            await self._pubsub.ssubscribe(*same_slot)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def unsubscribe(self, channels: list[str]) -> None:
        for same_slot in _by_slot(channels):
            await self._pubsub.sunsubscribe(*same_slot)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._pubsub.get_message(timeout=POLL_S)
                if message is None:
                    continue
                kind = _text(message["type"])
                channel = _text(message["channel"])
                if kind == "smessage":
                    self._inbox.put_nowait((channel, message["data"]))
                elif kind == "sunsubscribe":
                    if channel in self._leaving:
                        self._leaving.discard(channel)
                        continue
                    # Not asked for: the shard gave the channel's slot away
                    # (a failover or a slot migration), and what was
                    # published to its new owner until now was missed.
                    raise SubscriptionLost(f"shard channel {channel} unsubscribed by the server")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._inbox.put_nowait(exc)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._pool.aclose()


async def subscriber_count(client: RedisClient, channel: str) -> int:
    """How many connections subscribe to the channel (a shard channel on a
    cluster, counted on the primary that owns it)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        node = client.get_node_from_key(channel)
        reply = await client.execute_command("PUBSUB SHARDNUMSUB", channel, target_nodes=node)
    else:
        reply = await client.execute_command("PUBSUB NUMSUB", channel)  # type: ignore[no-untyped-call]
    # [channel, count], or [(channel, count)] where redis-py parses it.
    flat = [x for pair in reply for x in pair] if isinstance(reply[0], tuple) else reply
    return int(flat[1])


async def refresh_topology(client: RedisClient) -> None:
    """Makes a cluster client re-read which node owns which slot, so that a
    new subscription goes to the primaries of now, not of before a failover."""
    if isinstance(client, RedisCluster):
        await client.nodes_manager.initialize()


class ChannelSubscriber:
    def __init__(
        self,
        client: RedisClient,
        handlers: Mapping[str, Handler],
        on_interrupted: Callable[[], None],
    ) -> None:
        self._redis = client
        self._handlers = dict(handlers)
        self._on_interrupted = on_interrupted
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        interrupted = False
        while True:
            subscription = Subscription(self._redis)
            try:
                if interrupted:
                    await refresh_topology(self._redis)
                await subscription.subscribe(*self._handlers)
                self.subscribed.set()
                log.info("subscribed", extra={"fields": {"channels": list(self._handlers)}})
                if interrupted:
                    # Told only once subscribed again, so that whatever the
                    # owner does about it cannot miss what follows.
                    self._on_interrupted()
                    interrupted = False
                while True:
                    received = await subscription.next_message(POLL_S)
                    if received is None:
                        continue
                    channel, payload = received
                    handler = self._handlers.get(channel)
                    if handler is not None:
                        handler(payload)
            except SUBSCRIPTION_LOST as exc:
                self.subscribed.clear()
                interrupted = True
                log.warning("subscription lost", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RESUBSCRIBE_BACKOFF_S)
            finally:
                await subscription.aclose()


def _by_slot(channels: list[str]) -> list[list[str]]:
    slots: dict[int, list[str]] = {}
    for channel in channels:
        slots.setdefault(key_slot(channel.encode()), []).append(channel)
    return list(slots.values())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
