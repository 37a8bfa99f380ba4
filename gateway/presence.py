"""Presence at the gateway: reporting its users, and following the users its
connections watch.

Reports are batched per gateway: at most one ``ReportPresence`` a second,
naming the users whose first connection here opened or whose last closed
since the previous report, and otherwise one every third of the lease to
keep it. A connection costs nothing between its open and its close.

Watches are reference counted per gateway: however many of its connections
watch a user, the gateway subscribes to the user's presence channel once,
and hands each change to every connection watching.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import grpc

from chatmesh.channels import presence_channel
from chatmesh.errors import ChatmeshError, InvalidArgument, error_frame, from_rpc_error
from chatmesh.failures import classify
from chatmesh.pubsub import SUBSCRIPTION_LOST, Subscription, refresh_topology
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import client_pb2, common_pb2, presence_service_pb2, presence_service_pb2_grpc
from gateway import metrics
from gateway.connection import ClientConnection, ConnectionRegistry

log = logging.getLogger(__name__)

PRESENCE_LEASE_S = 30  # a gateway silent this long takes its users offline
REPORT_INTERVAL_S = 1.0  # comings and goings are reported within this
FULL_REPORT_S = 300.0  # the whole population, now and then, to repair any drift
RPC_TIMEOUT_S = 2.0
# A report may carry a gateway's whole population: presencesvc applies it in
# batches, well within this even for tens of thousands of users.
REPORT_TIMEOUT_S = 10.0
MAX_WATCHED_PER_CONNECTION = 200
RESUBSCRIBE_BACKOFF_S = 0.5


class PresenceReporter:
    def __init__(
        self,
        gateway_id: str,
        presence: presence_service_pb2_grpc.PresenceServiceStub,
        registry: ConnectionRegistry,
        *,
        lease_s: int = PRESENCE_LEASE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway_id = gateway_id
        self._presence = presence
        self._registry = registry
        self._lease_s = lease_s
        self._monotonic = monotonic
        self._reported: set[str] | None = None  # None: the next report is full
        self._last_sent = float("-inf")
        self._last_full = float("-inf")

    async def report_once(self) -> None:
        """Reports what changed since the last report that went through (or
        everything); a failed report is simply made again next time."""
        now = self._monotonic()
        users = self._registry.user_ids()
        full = self._reported is None or now - self._last_full >= FULL_REPORT_S
        came = went = set[str]()
        if not full:
            assert self._reported is not None
            came, went = users - self._reported, self._reported - users
            if not came and not went and now - self._last_sent < self._lease_s / 3:
                return
        response = await self._presence.ReportPresence(
            presence_service_pb2.ReportPresenceRequest(
                gateway_id=self._gateway_id,
                connected_user_ids=sorted(came),
                disconnected_user_ids=sorted(went),
                online_user_ids=sorted(users) if full else [],
                full=full,
                lease_seconds=self._lease_s,
            ),
            timeout=REPORT_TIMEOUT_S,
        )
        self._last_sent = now
        if full:
            self._last_full = now
        self._reported = None if response.send_full else users


class PresenceWatches:
    """Which connections watch whom, and the one subscription per user."""

    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        presence: presence_service_pb2_grpc.PresenceServiceStub,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._presence = presence
        self._watchers: dict[str, set[ClientConnection]] = defaultdict(set)
        self._watching: dict[ClientConnection, set[str]] = defaultdict(set)
        self._pubsub: Subscription | None = None
        # Users whose channel is subscribed to now. Kept apart from the
        # watchers: a watch waiting on presencesvc may find its user
        # unsubscribed meanwhile (its last other watcher left) and must
        # subscribe again.
        self._subscribed: set[str] = set()
        self._commands = asyncio.Lock()  # one subscribe/unsubscribe at a time
        self.subscribed = asyncio.Event()

    def channel(self, user_id: str) -> str:
        return presence_channel(self._prefix, user_id)

    def subscriptions(self) -> int:
        return len(self._watchers)

    # Client frames

    async def watch(self, conn: ClientConnection, frame: client_pb2.ClientFrame) -> None:
        request_id = frame.request_id
        try:
            wanted = [u for u in dict.fromkeys(frame.watch_presence.user_ids)]
            new = [u for u in wanted if u not in self._watching[conn]]
            if len(self._watching[conn]) + len(new) > MAX_WATCHED_PER_CONNECTION:
                raise InvalidArgument(
                    "WATCH_LIMIT",
                    f"a connection watches at most {MAX_WATCHED_PER_CONNECTION} users",
                )
            # Subscribed before the snapshot is read: no change falls between.
            fresh = [u for u in new if u not in self._subscribed]
            await self._subscribe(fresh)
            try:
                answer = await self._presence.WatchPresence(
                    presence_service_pb2.WatchPresenceRequest(
                        watcher_user_id=conn.identity.user_id, user_ids=new
                    ),
                    timeout=RPC_TIMEOUT_S,
                )
                if not conn.closed:
                    for user_id in (p.user_id for p in answer.presences):
                        self._watchers[user_id].add(conn)
                        self._watching[conn].add(user_id)
            finally:
                # Refused users (or all, if the call failed) nobody else watches.
                await self._unsubscribe([u for u in fresh if not self._watchers.get(u)])
            await self._subscribe([u for u in self._watching[conn] if u not in self._subscribed])
            if conn.closed:
                return
            # The users watched already are answered too, from the snapshot.
            again = [u for u in wanted if u not in new]
            presences = list(answer.presences)
            if again:
                presences.extend(
                    (
                        await self._presence.GetPresence(
                            presence_service_pb2.GetPresenceRequest(user_ids=again),
                            timeout=RPC_TIMEOUT_S,
                        )
                    ).presences
                )
            conn.send(
                client_pb2.ServerFrame(
                    presence=client_pb2.PresenceFrame(
                        request_id=request_id,
                        presences=presences,
                        refused_user_ids=answer.refused_user_ids,
                        watching=len(self._watching[conn]),
                    )
                )
            )
        except Exception as exc:
            conn.send(error_frame(_as_error(exc), request_id=request_id))

    async def unwatch(self, conn: ClientConnection, frame: client_pb2.ClientFrame) -> None:
        try:
            await self._drop(conn, frame.unwatch_presence.user_ids)
            conn.send(
                client_pb2.ServerFrame(
                    presence=client_pb2.PresenceFrame(
                        request_id=frame.request_id, watching=len(self._watching.get(conn, ()))
                    )
                )
            )
        except Exception as exc:
            conn.send(error_frame(_as_error(exc), request_id=frame.request_id))

    async def set_visibility(self, conn: ClientConnection, frame: client_pb2.ClientFrame) -> None:
        try:
            stored = await self._presence.SetPresenceVisibility(
                presence_service_pb2.SetPresenceVisibilityRequest(
                    user_id=conn.identity.user_id,
                    visibility=frame.set_presence_visibility.visibility,
                ),
                timeout=RPC_TIMEOUT_S,
            )
            conn.send(
                client_pb2.ServerFrame(
                    presence_visibility=client_pb2.PresenceVisibilityFrame(
                        request_id=frame.request_id, visibility=stored.visibility
                    )
                )
            )
        except Exception as exc:
            conn.send(error_frame(_as_error(exc), request_id=frame.request_id))

    async def forget(self, conn: ClientConnection) -> None:
        """A closed connection watches nobody."""
        await self._drop(conn, list(self._watching.get(conn, ())))
        self._watching.pop(conn, None)

    async def _drop(self, conn: ClientConnection, user_ids: Iterable[str]) -> None:
        watched = self._watching.get(conn)
        if not watched:
            return
        gone = []
        for user_id in user_ids:
            if user_id in watched:
                watched.discard(user_id)
                watchers = self._watchers.get(user_id)
                if watchers is not None:
                    watchers.discard(conn)
                    if not watchers:
                        del self._watchers[user_id]
                        gone.append(user_id)
        await self._unsubscribe(gone)

    # The subscription

    async def _subscribe(self, user_ids: list[str]) -> None:
        if user_ids and self._pubsub is not None:
            async with self._commands:
                await self._pubsub.subscribe(*(self.channel(u) for u in user_ids))
                self._subscribed.update(user_ids)

    async def _unsubscribe(self, user_ids: list[str]) -> None:
        if user_ids and self._pubsub is not None:
            async with self._commands:
                # Checked again under the lock: a watch may have come meanwhile.
                gone = [u for u in user_ids if not self._watchers.get(u)]
                if gone:
                    await self._pubsub.unsubscribe(*(self.channel(u) for u in gone))
                    self._subscribed.difference_update(gone)

    async def run(self) -> None:
        """Holds the subscription: on a lost connection, subscribes again to
        every watched user and sends every watcher a fresh snapshot (changes
        in between were lost)."""
        interrupted = False
        while True:
            pubsub = Subscription(self._redis)
            try:
                if interrupted:
                    await refresh_topology(self._redis)
                async with self._commands:
                    # One channel of its own keeps the connection subscribed
                    # while nobody is watched.
                    await pubsub.subscribe(
                        self.channel("-"), *(self.channel(u) for u in self._watchers)
                    )
                    self._subscribed = set(self._watchers)
                    self._pubsub = pubsub
                self.subscribed.set()
                if interrupted:
                    interrupted = False
                    asyncio.get_running_loop().create_task(self._refresh_all())
                while True:
                    received = await pubsub.next_message(timeout_s=5.0)
                    if received is not None:
                        self._on_message(received[1])
            except SUBSCRIPTION_LOST as exc:
                interrupted = True
                self.subscribed.clear()
                log.warning("presence subscription lost", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RESUBSCRIBE_BACKOFF_S)
            finally:
                self._pubsub = None
                self._subscribed = set()
                await pubsub.aclose()

    def _on_message(self, payload: bytes) -> None:
        presence = common_pb2.Presence()
        try:
            presence.ParseFromString(payload)
        except Exception:
            log.warning("unreadable presence change dropped")
            return
        metrics.PRESENCE_CHANGES.inc()
        watchers = self._watchers.get(presence.user_id)
        if not watchers:
            return
        frame = client_pb2.ServerFrame(presence=client_pb2.PresenceFrame(presences=[presence]))
        for conn in watchers:
            conn.send(frame)

    async def _refresh_all(self) -> None:
        users = list(self._watchers)
        for start in range(0, len(users), 1000):
            try:
                answer = await self._presence.GetPresence(
                    presence_service_pb2.GetPresenceRequest(user_ids=users[start : start + 1000]),
                    timeout=RPC_TIMEOUT_S,
                )
            except Exception as exc:
                log.warning("presence refresh failed", extra={"fields": {"error": repr(exc)}})
                return
            by_conn: dict[ClientConnection, list[common_pb2.Presence]] = defaultdict(list)
            for presence in answer.presences:
                for conn in self._watchers.get(presence.user_id, ()):
                    by_conn[conn].append(presence)
            for conn, presences in by_conn.items():
                conn.send(
                    client_pb2.ServerFrame(presence=client_pb2.PresenceFrame(presences=presences))
                )


def _as_error(exc: Exception) -> ChatmeshError:
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_rpc_error(exc)
    if isinstance(exc, ChatmeshError):
        return exc
    error = classify(exc)
    if error is None:
        log.error("presence request failed", exc_info=exc)
        return ChatmeshError("INTERNAL", "internal error")
    return error
