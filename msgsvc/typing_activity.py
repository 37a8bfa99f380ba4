"""Typing indicators: who is typing in a conversation, told to the other members live.

Ephemeral by design: nothing is written to any store, not even a rate limit
counter in Redis. A typing state ends by itself on the recipients after
``TTL_MS`` unless renewed (clients resend ``typing`` every ~3 s while the
user types), so a lost frame, a crashed instance or a device that vanishes
mid-sentence leaves no indicator behind for long.

Everything a device can make msgsvc do here is bounded in process:

- per device, ``DeviceAllowance`` caps typing frames over all conversations
  before anything is looked up;
- per device and conversation, ``TypingThrottle`` lets a repeated start
  through at most once per ``THROTTLE_MS`` and drops stops that would tell
  nobody anything;
- in conversations of more than ``COALESCE_ABOVE_MEMBERS`` members,
  ``TypingCoalescer`` gathers a window's changes into one frame, so a large
  group costs one broadcast per window however many members type;
- memberships are read through ``RecentAudiences``, a short-lived cache, so
  a typing frame does not load a group from PostgreSQL each time.

Each structure holds a bounded number of entries and forgets idle ones, so a
flood from one device costs memory that does not grow with the flood.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatmesh.tasks import TaskGroup
from chatmesh.v1 import client_pb2
from msgsvc.access import Access
from msgsvc.routing import Router
from msgsvc.storage.directory import ADMIN, CHANNEL, DIRECT

log = logging.getLogger(__name__)

# How long a typing state lasts on the recipients unless renewed. Two renewals
# (every ~3 s) fit in it, so one lost frame does not make the indicator blink.
TTL_MS = 6_000
# At most one start per device and conversation this often while it types;
# repeats are dropped.
THROTTLE_MS = 2_000
# Above this many members a conversation's changes are gathered per window.
COALESCE_ABOVE_MEMBERS = 20
COALESCE_WINDOW_MS = 1_000
# Typing frames per device over all its conversations: what a human switching
# between chats sends, several times over; beyond it frames are dropped
# before any lookup.
DEVICE_FRAMES_PER_S = 5.0
DEVICE_FRAMES_BURST = 10
# Memberships of groups and channels are trusted this long. A member removed
# meanwhile may see typing (never content) for at most this long; one added
# is let in at once (a miss is checked afresh), and hears others once the
# entry is reloaded.
AUDIENCE_TTL_MS = 5_000

MAX_DEVICES = 100_000
MAX_THROTTLED = 100_000  # (device, conversation) pairs
MAX_PENDING_CONVERSATIONS = 10_000
MAX_CACHED_MEMBERS = 1_000_000  # member ids over all cached conversations
# Coalesced frames due at the same moment are sent this many at a time.
MAX_CONCURRENT_SENDS = 64

Now = Callable[[], float]  # monotonic milliseconds


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class DeviceAllowance:
    """A token bucket per device over all of its typing frames."""

    def __init__(
        self,
        *,
        rate_per_s: float = DEVICE_FRAMES_PER_S,
        burst: int = DEVICE_FRAMES_BURST,
        max_devices: int = MAX_DEVICES,
        now: Now = monotonic_ms,
    ) -> None:
        self._rate_per_ms = rate_per_s / 1000.0
        self._burst = float(burst)
        self._max_devices = max_devices
        self._now = now
        # (user, device) -> (tokens, at ms); least recently used first.
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        # After this long untouched a bucket is full again: as good as absent.
        self._refill_ms = self._burst / self._rate_per_ms

    def take(self, user_id: str, device_id: str) -> bool:
        now = self._now()
        self._forget_idle(now)
        key = (user_id, device_id)
        tokens, at = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate_per_ms)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_devices:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        while self._buckets:
            key, (_, at) = next(iter(self._buckets.items()))
            if now - at < self._refill_ms:
                return
            del self._buckets[key]


@dataclass(slots=True)
class _Typist:
    started_ms: float | None  # the last start let through
    typing: bool
    touched_ms: float


class TypingThrottle:
    """Which typing frames of a device, per conversation, are worth telling.

    A start passes unless this device is typing here already and its last
    start passed less than ``interval_ms`` ago. A stop passes unless this device's last
    word here was a stop already; a stop from a device this instance knows
    nothing of passes (its start may have reached another instance, or this
    one before a restart, or been forgotten as idle).
    """

    def __init__(
        self,
        *,
        interval_ms: int = THROTTLE_MS,
        ttl_ms: int = TTL_MS,
        max_entries: int = MAX_THROTTLED,
        now: Now = monotonic_ms,
    ) -> None:
        self._interval_ms = interval_ms
        self._ttl_ms = ttl_ms
        self._max_entries = max_entries
        self._now = now
        # (user, device, conversation) -> state; least recently touched first.
        self._typists: OrderedDict[tuple[str, str, str], _Typist] = OrderedDict()
        # Past the interval a start passes anyway, and past the ttl the
        # recipients have let it expire: an entry idle that long decides
        # nothing that matters (a repeated stop passes once more).
        self._idle_ms = max(interval_ms, ttl_ms)

    def admit(self, user_id: str, device_id: str, conversation_id: str, typing: bool) -> bool:
        now = self._now()
        self._forget_idle(now)
        key = (user_id, device_id, conversation_id)
        held = self._typists.get(key)
        if held is None:
            held = _Typist(started_ms=None, typing=False, touched_ms=now)
            self._typists[key] = held
            passed = True
        elif typing:
            # A start after a stop is news (someone who sent and goes on
            # writing); only repeats while typing are thinned out. Toggling
            # faster than a person does is what DeviceAllowance stops.
            passed = (
                not held.typing
                or held.started_ms is None
                or now - held.started_ms >= self._interval_ms
            )
        else:
            passed = held.typing
        if typing and passed:
            held.started_ms = now
        if passed or not typing:
            held.typing = typing
        held.touched_ms = now
        self._typists.move_to_end(key)
        while len(self._typists) > self._max_entries:
            self._typists.popitem(last=False)
        return passed

    def __len__(self) -> int:
        return len(self._typists)

    def _forget_idle(self, now: float) -> None:
        while self._typists:
            key, held = next(iter(self._typists.items()))
            if now - held.touched_ms < self._idle_ms:
                return
            del self._typists[key]


@dataclass(frozen=True, slots=True)
class TypingChanges:
    """A conversation's typing changes of one window, for one frame."""

    conversation_id: str
    typing_user_ids: tuple[str, ...]
    stopped_user_ids: tuple[str, ...]
    member_ids: tuple[str, ...]  # the audience, as of the latest change


@dataclass(slots=True)
class _Window:
    opened_ms: float
    states: dict[str, bool]  # user -> typing, the latest change wins
    member_ids: tuple[str, ...]


class TypingCoalescer:
    """Gathers typing changes per conversation: a window opens at a
    conversation's first change and closes ``window_ms`` later with one
    ``TypingChanges`` for all the changes it gathered."""

    def __init__(
        self,
        *,
        window_ms: int = COALESCE_WINDOW_MS,
        max_conversations: int = MAX_PENDING_CONVERSATIONS,
        now: Now = monotonic_ms,
    ) -> None:
        self._window_ms = window_ms
        self._max_conversations = max_conversations
        self._now = now
        # Opened in time order, all equally long: the first closes first.
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def add(
        self, conversation_id: str, user_id: str, typing: bool, member_ids: tuple[str, ...]
    ) -> bool:
        """Gathers one change; False if dropped because too many
        conversations have a window open."""
        window = self._windows.get(conversation_id)
        if window is None:
            if len(self._windows) >= self._max_conversations:
                return False
            window = _Window(self._now(), {}, member_ids)
            self._windows[conversation_id] = window
        window.states[user_id] = typing
        window.member_ids = member_ids
        return True

    def next_due_ms(self) -> float | None:
        """When the first open window closes, on the clock."""
        first = next(iter(self._windows.values()), None)
        return None if first is None else first.opened_ms + self._window_ms

    def take_due(self) -> list[TypingChanges]:
        now = self._now()
        due: list[TypingChanges] = []
        while self._windows:
            conversation_id, window = next(iter(self._windows.items()))
            if now - window.opened_ms < self._window_ms:
                break
            del self._windows[conversation_id]
            due.append(
                TypingChanges(
                    conversation_id,
                    tuple(sorted(u for u, typing in window.states.items() if typing)),
                    tuple(sorted(u for u, typing in window.states.items() if not typing)),
                    window.member_ids,
                )
            )
        return due

    def __len__(self) -> int:
        return len(self._windows)


@dataclass(frozen=True, slots=True)
class Audience:
    """What typing needs of a conversation: who is in it, and who may post."""

    conversation_id: str
    kind: int
    member_ids: tuple[str, ...]  # current members, sorted
    members: frozenset[str]
    admins: frozenset[str]

    def may_post(self, user_id: str) -> bool:
        return self.kind != CHANNEL or user_id in self.admins


class RecentAudiences:
    """Audiences of conversations typed in, for ``ttl_ms`` after loading.

    Only a hit for a current member is trusted; anything else is decided by
    ``Access`` (the same answer as every other frame gets, and a fresh load
    that refreshes the entry). 1:1 conversations are not held here: their
    members never change and the directory cache already serves them from
    memory.
    """

    def __init__(
        self,
        access: Access,
        *,
        ttl_ms: int = AUDIENCE_TTL_MS,
        max_members: int = MAX_CACHED_MEMBERS,
        now: Now = monotonic_ms,
    ) -> None:
        self._access = access
        self._ttl_ms = ttl_ms
        self._max_members = max_members
        self._now = now
        self._held: OrderedDict[str, tuple[float, Audience]] = OrderedDict()  # loaded first, first
        self._members = 0

    async def of_member(self, user_id: str, conversation_id: str) -> Audience:
        """The conversation's audience; raises as ``Access`` does if the user
        is not a current member of it."""
        now = self._now()
        self._forget_expired(now)
        held = self._held.get(conversation_id)
        if held is not None and user_id in held[1].members:
            return held[1]
        conversation = await self._access.member_conversation(user_id, conversation_id)
        audience = Audience(
            conversation.conversation_id,
            conversation.kind,
            conversation.member_ids,
            frozenset(conversation.member_ids),
            frozenset(m.user_id for m in conversation.members if m.current and m.role == ADMIN),
        )
        if conversation.kind != DIRECT:
            self._put(audience, self._now())
        return audience

    def __len__(self) -> int:
        return len(self._held)

    def _put(self, audience: Audience, now: float) -> None:
        self._drop(audience.conversation_id)
        self._held[audience.conversation_id] = (now, audience)
        self._members += len(audience.member_ids)
        while self._members > self._max_members and self._held:
            self._drop(next(iter(self._held)))

    def _drop(self, conversation_id: str) -> None:
        held = self._held.pop(conversation_id, None)
        if held is not None:
            self._members -= len(held[1].member_ids)

    def _forget_expired(self, now: float) -> None:
        while self._held:
            conversation_id, (loaded_ms, _) = next(iter(self._held.items()))
            if now - loaded_ms < self._ttl_ms:
                return
            self._drop(conversation_id)


def activity_frame(
    conversation_id: str, typing: Sequence[str], stopped: Sequence[str]
) -> client_pb2.ServerFrame:
    return client_pb2.ServerFrame(
        typing_activity=client_pb2.TypingActivityFrame(
            conversation_id=conversation_id,
            typing_user_ids=typing,
            stopped_user_ids=stopped,
            ttl_ms=TTL_MS,
        )
    )


class TypingIndicators:
    """Takes typing frames from members and tells the rest of the conversation."""

    def __init__(
        self,
        *,
        access: Access,
        router: Router,
        tasks: TaskGroup,
        now: Now = monotonic_ms,
        coalesce_above_members: int = COALESCE_ABOVE_MEMBERS,
    ) -> None:
        self._router = router
        self._tasks = tasks
        self._now = now
        self._coalesce_above = coalesce_above_members
        self._allowance = DeviceAllowance(now=now)
        self._throttle = TypingThrottle(now=now)
        self._coalescer = TypingCoalescer(now=now)
        self._audiences = RecentAudiences(access, now=now)
        self._pump: asyncio.Task[None] | None = None
        self._overflowing = False

    async def typing(
        self, user_id: str, device_id: str, conversation_id: str, typing: bool
    ) -> None:
        """Raises as ``Access`` does for a conversation the user is not in;
        otherwise returns, whether the change was told, gathered or dropped."""
        if not self._allowance.take(user_id, device_id):
            return
        audience = await self._audiences.of_member(user_id, conversation_id)
        # Only a channel's admins post, so only their typing means anything.
        # A member's is dropped, not refused: the member is in the channel,
        # and a typing frame has no answer to refuse it with.
        if not audience.may_post(user_id):
            return
        if not self._throttle.admit(user_id, device_id, conversation_id, typing):
            return
        if len(audience.member_ids) > self._coalesce_above:
            if self._coalescer.add(conversation_id, user_id, typing, audience.member_ids):
                self._wake_pump()
                self._overflowing = False
            elif not self._overflowing:
                # Once per overflow: a flood must not become a flood of logs.
                self._overflowing = True
                log.warning(
                    "typing changes dropped: too many conversations pending",
                    extra={"fields": {"pending": len(self._coalescer)}},
                )
            return
        # None of the typist's own devices: they know.
        others = [u for u in audience.member_ids if u != user_id]
        if not others:
            return
        changed = [user_id]
        frame = activity_frame(
            conversation_id, changed if typing else [], [] if typing else changed
        )
        try:
            await self._router.broadcast(frame, others, skip=("", ""))
        except Exception:
            # Best effort: the recipients' indicator expires by itself.
            log.warning(
                "typing activity not sent",
                extra={"fields": {"conversation_id": conversation_id}},
                exc_info=True,
            )

    def _wake_pump(self) -> None:
        if self._pump is None:
            self._pump = self._tasks.spawn("typing-coalescer", self._send_due())

    async def _send_due(self) -> None:
        try:
            while (due_ms := self._coalescer.next_due_ms()) is not None:
                await asyncio.sleep(max(due_ms - self._now(), 0.0) / 1000.0)
                due = self._coalescer.take_due()
                for start in range(0, len(due), MAX_CONCURRENT_SENDS):
                    await asyncio.gather(
                        *(self._send(c) for c in due[start : start + MAX_CONCURRENT_SENDS])
                    )
        finally:
            # No await between the loop's last check and here: a change
            # gathered from now on finds no pump and starts one.
            self._pump = None

    async def _send(self, changes: TypingChanges) -> None:
        everyone = activity_frame(
            changes.conversation_id, changes.typing_user_ids, changes.stopped_user_ids
        )
        changed = set(changes.typing_user_ids) | set(changes.stopped_user_ids)
        # A member whose own change is in the window gets the others' only.
        own: dict[str, client_pb2.ServerFrame | None] = {}
        for user_id in changed:
            typing = [u for u in changes.typing_user_ids if u != user_id]
            stopped = [u for u in changes.stopped_user_ids if u != user_id]
            own[user_id] = (
                activity_frame(changes.conversation_id, typing, stopped)
                if typing or stopped
                else None
            )
        try:
            await self._router.broadcast_each(
                changes.member_ids, lambda user_id: own.get(user_id, everyone)
            )
        except Exception:
            log.warning(
                "typing activity not sent",
                extra={"fields": {"conversation_id": changes.conversation_id}},
                exc_info=True,
            )
