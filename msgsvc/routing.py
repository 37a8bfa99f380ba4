"""Routing a persisted message to its recipients' devices.

Best effort by design: pub/sub may drop and a gateway may die, and Cassandra
remains the ground truth a reconnecting device syncs from. One publish per
destination gateway, however many recipients it holds. Then the message's
push job is appended to the push job topic, naming every recipient with the
devices that got it live; notifysvc pushes their other devices. The append
must succeed for routing to succeed: the route journal and the log consumer
retry it, so no push job is lost to a crash, and no push service outage
holds deliveries up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatmesh.channels import gateway_channel
from chatmesh.coalescer import Coalescer
from chatmesh.pubsub import queue_publish
from chatmesh.push_jobs import PushJob, PushRecipient
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import (
    client_pb2,
    common_pb2,
    delivery_pb2,
    session_service_pb2,
    session_service_pb2_grpc,
)
from msgsvc import metrics
from msgsvc.model import SendOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceSession:
    user_id: str
    device_id: str
    gateway_id: str
    connection_id: str


class SessionLookup(Protocol):
    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        """Live sessions (on heartbeating gateways) of the given users."""
        ...


class DeliveryPublisher(Protocol):
    async def publish(self, gateway_id: str, delivery: delivery_pb2.GatewayDelivery) -> None: ...


class PushQueue(Protocol):
    async def append(self, job: PushJob) -> None:
        """Returns once the job is durable; raises otherwise."""
        ...


class Router:
    def __init__(
        self, sessions: SessionLookup, publisher: DeliveryPublisher, push: PushQueue
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._push = push

    async def route(self, outcome: SendOutcome) -> None:
        """Delivers a stored message to every live device of its members
        except the sending device (it has the ack), and hands every other
        member to the push job topic with the devices that were live. The
        sender's own other devices sync; they are not pushed. System
        messages (group changes) are delivered, not pushed."""
        message = outcome.message
        live = await self._sessions.lookup(list(outcome.recipients))
        frame = client_pb2.ServerFrame(deliver=client_pb2.DeliverFrame(message=message.to_proto()))
        await self._publish(frame, live, skip=(message.sender_user_id, message.sender_device_id))
        if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
            return
        live_devices: dict[str, set[str]] = defaultdict(set)
        for session in live:
            live_devices[session.user_id].add(session.device_id)
        recipients = tuple(
            PushRecipient(user, frozenset(live_devices.get(user, ())))
            for user in outcome.recipients
            if user != message.sender_user_id
        )
        if recipients:
            await self._push.append(
                PushJob(
                    message.conversation_id,
                    message.message_id,
                    message.sender_user_id,
                    recipients,
                )
            )
            metrics.PUSH_JOBS_APPENDED.inc()

    async def nudge(
        self, conversation_id: str, last_message_id: int, user_ids: Sequence[str]
    ) -> None:
        """Tells the live devices of a channel's members that it has new
        messages, instead of delivering each one. No push: a channel's
        audience hears of it when it opens the app."""
        frame = client_pb2.ServerFrame(
            channel_activity=client_pb2.ChannelActivityFrame(
                channels=[
                    client_pb2.ChannelActivity(
                        conversation_id=conversation_id, last_message_id=last_message_id
                    )
                ]
            )
        )
        await self.broadcast(frame, user_ids, skip=("", ""))

    async def broadcast(
        self, frame: client_pb2.ServerFrame, user_ids: Sequence[str], *, skip: tuple[str, str]
    ) -> None:
        """Sends an ephemeral frame (a receipt) to the live devices of the
        given users except the (user, device) ``skip``. Offline devices learn
        the state on their next sync or list."""
        await self._publish(frame, await self._sessions.lookup(list(user_ids)), skip=skip)

    async def broadcast_each(
        self,
        user_ids: Sequence[str],
        frame_for: Callable[[str], client_pb2.ServerFrame | None],
    ) -> None:
        """Like ``broadcast``, but each user's live devices get
        ``frame_for(user)``, or nothing for None. One session lookup for all
        of them; users given the same frame object share its publishes, so a
        frame most users get costs one publish per gateway, as in
        ``broadcast``, and each other frame one more per gateway it reaches."""
        chosen: dict[str, client_pb2.ServerFrame | None] = {}
        by_frame: dict[int, tuple[client_pb2.ServerFrame, list[DeviceSession]]] = {}
        for session in await self._sessions.lookup(list(user_ids)):
            if session.user_id not in chosen:
                chosen[session.user_id] = frame_for(session.user_id)
            frame = chosen[session.user_id]
            if frame is not None:
                by_frame.setdefault(id(frame), (frame, []))[1].append(session)
        for frame, sessions in by_frame.values():
            await self._publish(frame, sessions, skip=("", ""))

    async def _publish(
        self,
        frame: client_pb2.ServerFrame,
        sessions: Iterable[DeviceSession],
        *,
        skip: tuple[str, str],
    ) -> None:
        by_gateway: dict[str, list[DeviceSession]] = defaultdict(list)
        for session in sessions:
            if (session.user_id, session.device_id) != skip:
                by_gateway[session.gateway_id].append(session)
        publishes = [
            self._publisher.publish(
                gateway_id,
                delivery_pb2.GatewayDelivery(
                    targets=[
                        delivery_pb2.DeliveryTarget(
                            user_id=s.user_id, device_id=s.device_id, connection_id=s.connection_id
                        )
                        for s in targets
                    ],
                    frame=frame,
                ),
            )
            for gateway_id, targets in by_gateway.items()
        ]
        if len(publishes) == 1:
            await publishes[0]  # most messages: no task needed
        elif publishes:
            await asyncio.gather(*publishes)  # concurrent, so they share a pipeline
        metrics.DELIVERIES_PUBLISHED.inc(len(by_gateway))


class GrpcSessionLookup:
    def __init__(self, stub: session_service_pb2_grpc.SessionServiceStub) -> None:
        self._stub = stub

    async def lookup(self, user_ids: Sequence[str]) -> list[DeviceSession]:
        response = await self._stub.LookupSessions(
            session_service_pb2.LookupSessionsRequest(user_ids=list(user_ids)), timeout=2.0
        )
        return [
            DeviceSession(s.user_id, s.device_id, s.gateway_id, s.connection_id)
            for s in response.sessions
        ]


MAX_PUBLISHES_PER_BATCH = 256


class RedisDeliveryPublisher:
    """Every routed message publishes at least once: publishes issued while
    others are in flight share one pipeline (one round trip)."""

    def __init__(self, client: RedisClient, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._publishes: Coalescer[tuple[str, bytes], int] = Coalescer(
            self._publish_many, max_batch=MAX_PUBLISHES_PER_BATCH, name="delivery-publishes"
        )

    async def publish(self, gateway_id: str, delivery: delivery_pb2.GatewayDelivery) -> None:
        receivers = await self._publishes.submit(
            (gateway_channel(self._prefix, gateway_id), delivery.SerializeToString())
        )
        if receivers == 0:
            log.warning("no subscriber for gateway", extra={"fields": {"gateway_id": gateway_id}})

    async def _publish_many(self, publishes: Sequence[tuple[str, bytes]]) -> list[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in publishes:
                queue_publish(pipe, channel, payload)
            return [int(receivers) for receivers in await pipe.execute()]
