"""Presence as watchers see it: transitions from the gateways' reports and
the sweeps, published to the user's channel; watches authorized by a shared
conversation; what a user hides, shown as offline.

A user who hides their presence (``NOBODY``) appears offline and never
seen, in snapshots and to internal readers alike, and their changes are not
published at all: nothing tells them apart from an offline user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatmesh.channels import presence_channel
from chatmesh.errors import InvalidArgument, NotFound
from chatmesh.pubsub import publish
from chatmesh.redis_client import RedisClient
from chatmesh.v1 import common_pb2
from presencesvc import metrics
from presencesvc.directory import NOBODY
from presencesvc.store import PresenceState, RedisPresenceStore, Transition

log = logging.getLogger(__name__)

# A reconnect within this after the last connection closed makes no
# offline/online pair: watchers see nothing.
OFFLINE_GRACE_MS = 5_000
# How long a user's visibility is trusted from memory: a user who hides is
# hidden everywhere within this.
VISIBILITY_TTL_S = 5.0
MAX_WATCH_PER_REQUEST = 200
VISIBILITIES = frozenset(
    {common_pb2.PRESENCE_VISIBILITY_CONVERSATIONS, common_pb2.PRESENCE_VISIBILITY_NOBODY}
)


class Directory(Protocol):
    async def sharing_a_conversation(self, user_id: str, others: Collection[str]) -> set[str]: ...

    async def visibility(self, user_ids: Collection[str]) -> dict[str, int]: ...

    async def set_visibility(self, user_id: str, visibility: int) -> bool: ...


class VisibilityCache:
    def __init__(self, directory: Directory, ttl_s: float = VISIBILITY_TTL_S) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[int, float]] = {}

    async def of(self, user_ids: Collection[str]) -> dict[str, int]:
        now = time.monotonic()
        found = {u: v for u in user_ids if (v := self._fresh(u, now)) is not None}
        missing = [u for u in user_ids if u not in found]
        if missing:
            read = await self._directory.visibility(missing)
            for user_id, visibility in read.items():
                self._known[user_id] = (visibility, now + self._ttl_s)
            found.update(read)
        if len(self._known) > 100_000:  # bounded: drop what has expired
            self._known = {u: e for u, e in self._known.items() if e[1] > now}
        return found

    def remember(self, user_id: str, visibility: int) -> None:
        self._known[user_id] = (visibility, time.monotonic() + self._ttl_s)

    def _fresh(self, user_id: str, now: float) -> int | None:
        entry = self._known.get(user_id)
        return entry[0] if entry is not None and entry[1] > now else None


def visible(state: PresenceState, visibility: int) -> common_pb2.Presence:
    if visibility == NOBODY or not state.since_ms:
        return common_pb2.Presence(user_id=state.user_id, status=common_pb2.PRESENCE_STATUS_OFFLINE)
    return common_pb2.Presence(
        user_id=state.user_id,
        status=common_pb2.PRESENCE_STATUS_ONLINE
        if state.online
        else common_pb2.PRESENCE_STATUS_OFFLINE,
        last_seen_ms=state.last_seen_ms,
        changed_at_ms=state.since_ms,
    )


@dataclass(frozen=True, slots=True)
class Watch:
    presences: list[common_pb2.Presence]
    refused: list[str]


class PresenceTracker:
    def __init__(
        self,
        *,
        store: RedisPresenceStore,
        directory: Directory,
        events: RedisClient,
        key_prefix: str,
        grace_ms: int = OFFLINE_GRACE_MS,
    ) -> None:
        self._store = store
        self._directory = directory
        self._visibility = VisibilityCache(directory)
        self._events = events
        self._prefix = key_prefix
        self._grace_ms = grace_ms

    async def report(
        self,
        gateway_id: str,
        *,
        connected: Sequence[str],
        disconnected: Sequence[str],
        online: Sequence[str],
        full: bool,
        lease_s: int,
    ) -> bool:
        """Applies a gateway's report; True if its next must be full."""
        if not gateway_id or lease_s <= 0:
            raise InvalidArgument("INCOMPLETE_REPORT", "gateway_id and lease_seconds are required")
        known = await self._store.renew(gateway_id, lease_s * 1000)
        metrics.REPORTS.labels("full" if full else "delta").inc()
        came, went = list(connected), list(disconnected)
        if full:
            now_online = set(online)
            before = await self._store.population(gateway_id)
            came = sorted(now_online - before)
            went = sorted(before - now_online)
        await self._announce(await self._store.connected(gateway_id, came))
        await self._store.disconnected(gateway_id, went, grace_ms=self._grace_ms)
        return not known and not full

    async def sweep(self) -> None:
        """Gateways whose lease ran out, then offlines that are due."""
        with metrics.SWEEP_SECONDS.time():
            await self._store.sweep_gateways()
            await self._announce(await self._store.settle())

    async def watch(self, watcher: str, user_ids: Sequence[str]) -> Watch:
        wanted = list(dict.fromkeys(user_ids))
        if len(wanted) > MAX_WATCH_PER_REQUEST:
            raise InvalidArgument("WATCH_LIMIT", f"at most {MAX_WATCH_PER_REQUEST} users at once")
        others = [u for u in wanted if u and u != watcher]
        allowed = await self._directory.sharing_a_conversation(watcher, others) if others else set()
        ordered = [u for u in others if u in allowed]
        return Watch(
            presences=await self.get(ordered),
            refused=[u for u in wanted if u not in allowed],
        )

    async def get(self, user_ids: Sequence[str]) -> list[common_pb2.Presence]:
        if not user_ids:
            return []
        states = await self._store.get(user_ids)
        visibility = await self._visibility.of(set(user_ids))
        return [visible(s, visibility[s.user_id]) for s in states]

    async def set_visibility(self, user_id: str, visibility: int) -> int:
        if visibility not in VISIBILITIES:
            raise InvalidArgument(
                "INVALID_PRESENCE_VISIBILITY", "visibility is CONVERSATIONS or NOBODY"
            )
        if not await self._directory.set_visibility(user_id, visibility):
            raise NotFound("USER_NOT_FOUND", "no such user")
        self._visibility.remember(user_id, visibility)
        # Watchers see the change at once: offline when hiding, the real
        # state when showing again.
        (state,) = await self._store.get([user_id])
        await self._send(visible(state, visibility))
        return visibility

    async def _announce(self, transitions: list[Transition]) -> None:
        """Publishes the transitions, then marks them announced: cut short
        in between, they are announced again (a repeat is harmless: watchers
        keep the later ``changed_at_ms``)."""
        if not transitions:
            return
        await self._publish(transitions)
        await self._store.announced(transitions)

    async def _publish(self, transitions: list[Transition]) -> None:
        visibility = await self._visibility.of({t.user_id for t in transitions})
        for t in transitions:
            metrics.TRANSITIONS.labels("online" if t.online else "offline").inc()
            if visibility[t.user_id] == NOBODY:
                continue
            await self._send(
                common_pb2.Presence(
                    user_id=t.user_id,
                    status=common_pb2.PRESENCE_STATUS_ONLINE
                    if t.online
                    else common_pb2.PRESENCE_STATUS_OFFLINE,
                    last_seen_ms=0 if t.online else t.at_ms,
                    changed_at_ms=t.at_ms,
                )
            )

    async def _send(self, presence: common_pb2.Presence) -> None:
        metrics.EVENTS_PUBLISHED.inc()
        await publish(
            self._events,
            presence_channel(self._prefix, presence.user_id),
            presence.SerializeToString(),
        )
