"""From push jobs to notifications on devices.

The reader takes jobs from the job topic and puts each into the window of
every device of its recipients that has a push credential and did not get
the message live. When a device's window closes, its missed messages are checked
again, all devices due at that moment together (one query of each kind):

- a device connected since then gets nothing (it syncs);
- a message the user has read (on another device) or a conversation the
  user muted or left is dropped;
- a credential cleared or replaced since the job was read is re-read.

What is left becomes one notification per conversation (``composer``),
with the user's badge and, for a device that opted in, the text of the
newest message, read from the message store then and only for it. Each is
handed to its provider's guard. Dead credentials are forgotten; a push the
provider could not take is held and tried again later, until it expires.

A job is finished when every device it was put in has sent or dropped it;
offsets are committed below the oldest unfinished job (``OffsetTracker``),
so a crash loses nothing and repeats only what was in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import DecodeError

from chatmesh import snowflake
from chatmesh.kafka_io import LogRecord
from chatmesh.push_jobs import PushJob, decode
from chatmesh.tasks import TaskGroup
from chatmesh.v1 import common_pb2
from msgsvc.model import StoredMessage
from notifysvc import metrics
from notifysvc.composer import Missed, compose
from notifysvc.devices import PushDevice
from notifysvc.directory import ConversationInfo
from notifysvc.offsets import OffsetTracker
from notifysvc.providers.message import (
    DEFAULT_TTL_S,
    CredentialDead,
    Delivered,
    Outcome,
    PushMessage,
    Rejected,
    RetryAfter,
)
from notifysvc.windows import DEFAULT_WINDOW_S, DeviceWindows

log = logging.getLogger(__name__)

BATCH_RECORDS = 500
POLL_TIMEOUT_S = 0.5
# Pushes waiting in windows or being sent, at most: beyond, reading pauses
# (a provider down for long must not fill memory; the topic holds the rest).
MAX_PENDING_PUSHES = 100_000
COMMIT_INTERVAL_S = 0.5
# A push held for its provider is tried again after this, doubling per try.
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
# Windows due within this of each other are checked and sent together.
FLUSH_TOGETHER_S = 0.1
# A window whose checks failed (a store down) is tried again after this.
CHECK_RETRY_S = 2.0
# A message older than this is not pushed any more: providers would drop
# the notification after the same time, and the app has long synced.
MAX_PUSH_AGE_S = DEFAULT_TTL_S


_MEDIA_LABELS: dict[int, str] = {
    common_pb2.MESSAGE_KIND_IMAGE: "📷 Photo",
    common_pb2.MESSAGE_KIND_VIDEO: "🎥 Video",
    common_pb2.MESSAGE_KIND_VOICE: "🎤 Voice message",
    common_pb2.MESSAGE_KIND_DOCUMENT: "📄 Document",
}
_PREVIEWED = frozenset({common_pb2.MESSAGE_KIND_TEXT, *_MEDIA_LABELS})


def media_preview(row: StoredMessage) -> str:
    """A text's words; for media, what it is and its caption, never the media."""
    caption = row.body.decode("utf-8", errors="replace")
    label = _MEDIA_LABELS.get(row.kind)
    if label is None:
        return caption
    return f"{label}: {caption}" if caption.strip() else label


class JobSource(Protocol):
    async def batch(self, max_records: int, timeout_s: float) -> list[LogRecord]: ...

    async def commit_positions(self, positions: Mapping[int, int]) -> None: ...


class Directory(Protocol):
    async def push_devices(self, user_ids: Collection[str]) -> dict[str, list[PushDevice]]: ...

    async def display_names(self, user_ids: Collection[str]) -> dict[str, str]: ...

    async def conversations(
        self, conversation_ids: Collection[str]
    ) -> dict[str, ConversationInfo]: ...

    async def read_marks(
        self, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int | None]: ...

    async def muted(
        self, pairs: Collection[tuple[str, str]], now_ms: int
    ) -> set[tuple[str, str]]: ...

    async def badges(self, user_ids: Collection[str]) -> dict[str, int]: ...

    async def forget_credential(self, device: PushDevice) -> bool: ...


class LiveDevices(Protocol):
    async def live(self, user_ids: Collection[str]) -> set[tuple[str, str]]:
        """(user, device) of the users' devices connected now."""
        ...


class MessageReader(Protocol):
    async def get(self, conversation_id: str, message_id: int) -> StoredMessage | None: ...


class Sender(Protocol):
    async def send(self, device: PushDevice, message: PushMessage) -> Outcome: ...


@dataclass(slots=True)
class _Ticket:
    """One job record: finished when every device it went to is done with it."""

    partition: int
    offset: int
    devices: int


@dataclass(slots=True)
class _Pending:
    job: PushJob
    device: PushDevice
    ticket: _Ticket
    attempts: int = 0


@dataclass(slots=True)
class _Plan:
    device: PushDevice
    message: PushMessage
    items: list[_Pending] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PipelineClock:
    monotonic: Callable[[], float] = time.monotonic
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)


class PushPipeline:
    def __init__(
        self,
        *,
        source: JobSource,
        directory: Directory,
        live: LiveDevices,
        messages: MessageReader,
        sender: Sender,
        window_s: float = DEFAULT_WINDOW_S,
        max_pending: int = MAX_PENDING_PUSHES,
        clock: PipelineClock = PipelineClock(),
        rng: random.Random | None = None,
    ) -> None:
        self._source = source
        self._directory = directory
        self._live = live
        self._messages = messages
        self._sender = sender
        self._windows: DeviceWindows[tuple[str, str], _Pending] = DeviceWindows(window_s)
        self._offsets = OffsetTracker()
        self._to_commit: dict[int, int] = {}
        self._max_pending = max_pending
        self._pending = 0  # (job, device) pairs in windows or being sent
        self._clock = clock
        self._rng = rng or random.Random()
        self._changed = asyncio.Event()  # a window opened: the flusher may sleep less
        self._room = asyncio.Event()  # jobs finished: the reader may go on
        self._sends = TaskGroup("push-sends")
        self.jobs_read = 0
        self.pushes_sent = 0

    async def run(self) -> None:
        """Reads, sends and commits until cancelled."""
        tasks = TaskGroup("push-pipeline")
        tasks.forever("read", self._read_forever())
        tasks.forever("flush", self._flush_forever())
        tasks.every("commit", COMMIT_INTERVAL_S, self.commit)
        try:
            await asyncio.Event().wait()
        finally:
            await tasks.close()
            await self._sends.close()

    # Reading

    async def _read_forever(self) -> None:
        while True:
            while self._pending >= self._max_pending:
                self._room.clear()
                await self._room.wait()
            try:
                records = await self._source.batch(BATCH_RECORDS, POLL_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka unreachable: librdkafka reconnects by itself
                log.warning("push job read failed", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(POLL_TIMEOUT_S)
                continue
            if records:
                await self.take(records)

    async def take(self, records: Sequence[LogRecord]) -> None:
        """Puts a batch's jobs into their devices' windows."""
        jobs: list[tuple[LogRecord, PushJob]] = []
        for record in records:
            self._offsets.read(record.partition, record.offset)
            try:
                job = decode(record.value)
            except DecodeError:
                job = None
            if job is None or not (job.conversation_id and job.message_id):
                log.warning(
                    "push job dropped: malformed record",
                    extra={"fields": {"partition": record.partition, "offset": record.offset}},
                )
                metrics.SKIPPED.labels("malformed").inc()
                self._offsets.finish(record.partition, record.offset)
                continue
            jobs.append((record, job))
        self.jobs_read += len(records)
        metrics.JOBS_READ.inc(len(records))
        users = {r.user_id for _, job in jobs for r in job.recipients}
        devices = (
            await self._until_read(lambda: self._directory.push_devices(users)) if users else {}
        )
        now = self._clock.monotonic()
        for record, job in jobs:
            targets = [
                device
                for r in job.recipients
                if r.user_id != job.sender_user_id
                for device in devices.get(r.user_id, ())
                if device.device_id not in r.live_device_ids
            ]
            ticket = _Ticket(record.partition, record.offset, len(targets))
            if not targets:
                self._offsets.finish(record.partition, record.offset)
            self._pending += len(targets)
            for device in targets:
                self._windows.add(device.key, _Pending(job, device, ticket), now)
        metrics.JOBS_IN_FLIGHT.set(self._offsets.in_flight())
        self._changed.set()

    async def _until_read(
        self, read: Callable[[], Awaitable[dict[str, list[PushDevice]]]]
    ) -> dict[str, list[PushDevice]]:
        delay = 0.1
        while True:
            try:
                return await read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("push directory read failed", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, CHECK_RETRY_S)

    # Committing

    async def commit(self) -> None:
        self._to_commit.update(self._offsets.committable())
        if not self._to_commit:
            return
        positions = dict(self._to_commit)
        await self._source.commit_positions(positions)
        for partition, offset in positions.items():
            if self._to_commit.get(partition) == offset:
                del self._to_commit[partition]

    def _finish(self, items: Sequence[_Pending]) -> None:
        self._pending -= len(items)
        for item in items:
            item.ticket.devices -= 1
            if item.ticket.devices == 0:
                self._offsets.finish(item.ticket.partition, item.ticket.offset)
        metrics.JOBS_IN_FLIGHT.set(self._offsets.in_flight())
        self._room.set()

    def _skip(self, items: Sequence[_Pending], reason: str) -> None:
        if items:
            metrics.SKIPPED.labels(reason).inc(len(items))
            self._finish(items)

    # Flushing windows

    async def _flush_forever(self) -> None:
        while True:
            closes = self._windows.next_close()
            now = self._clock.monotonic()
            if closes is None or closes > now:
                self._changed.clear()
                timeout = None if closes is None else closes - now
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    pass
                continue
            # Windows closing within the next moment go out with these: one
            # round of checks for many devices, not one per device.
            due = self._windows.due(now + FLUSH_TOGETHER_S)
            if due:
                self._sends.spawn("flush", self._flush(due))

    async def _flush(self, due: list[tuple[tuple[str, str], list[_Pending]]]) -> None:
        now_ms = self._clock.now_ms()
        fresh: list[_Pending] = []
        for _, batch in due:
            for item in batch:
                if age_s(item.job.message_id, now_ms) <= MAX_PUSH_AGE_S:
                    fresh.append(item)
                else:
                    self._skip([item], "expired")
        if not fresh:
            return
        try:
            plans, skipped = await self._plan(fresh, now_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("push checks failed; held", extra={"fields": {"error": repr(exc)}})
            until = self._clock.monotonic() + CHECK_RETRY_S
            for item in fresh:
                self._windows.hold(item.device.key, [item], until)
            self._changed.set()
            return
        for reason, items in skipped.items():
            self._skip(items, reason)
        await asyncio.gather(*(self._send(plan) for plan in plans))

    async def _plan(
        self, fresh: list[_Pending], now_ms: int
    ) -> tuple[list[_Plan], dict[str, list[_Pending]]]:
        """The notifications to send, and what not to send and why. Changes
        nothing: a failed check leaves every item as it was."""
        users = {i.device.user_id for i in fresh}
        pairs = {(i.job.conversation_id, i.device.user_id) for i in fresh}
        live, devices, marks, muted = await asyncio.gather(
            self._live.live(users),
            self._directory.push_devices(users),
            self._directory.read_marks(pairs),
            self._directory.muted(pairs, now_ms),
        )
        current = {d.key: d for ds in devices.values() for d in ds}
        by_device: dict[tuple[str, str], list[_Pending]] = defaultdict(list)
        skipped: dict[str, list[_Pending]] = defaultdict(list)
        for item in fresh:
            pair = (item.job.conversation_id, item.device.user_id)
            mark = marks.get(pair)
            if item.device.key in live:
                skipped["connected"].append(item)
            elif item.device.key not in current:
                skipped["no_credential"].append(item)
            elif mark is None:
                skipped["not_member"].append(item)
            elif item.job.message_id <= mark:
                skipped["read"].append(item)
            elif pair in muted:
                skipped["muted"].append(item)
            else:
                by_device[item.device.key].append(item)
        if not by_device:
            return [], skipped
        kept = [i for batch in by_device.values() for i in batch]
        names, conversations, badges, texts = await asyncio.gather(
            self._directory.display_names({i.job.sender_user_id for i in kept}),
            self._directory.conversations({i.job.conversation_id for i in kept}),
            self._directory.badges({key[0] for key in by_device}),
            self._previews([i for i in kept if current[i.device.key].show_previews]),
        )
        plans = []
        for key, batch in by_device.items():
            device = current[key]
            batch.sort(key=lambda i: i.job.message_id)
            missed, seen = [], set()
            for item in batch:
                if item.job.message_id in seen:  # the same job read twice
                    continue
                seen.add(item.job.message_id)
                info = conversations.get(item.job.conversation_id)
                missed.append(
                    Missed(
                        conversation_id=item.job.conversation_id,
                        message_id=item.job.message_id,
                        sender_name=names.get(item.job.sender_user_id, item.job.sender_user_id),
                        group_title=None if info is None or info.direct else info.title,
                        text=texts.get((item.job.conversation_id, item.job.message_id))
                        if device.show_previews
                        else None,
                    )
                )
            for message in compose(missed, badge=badges.get(key[0])):
                ids = set(message.message_ids)
                plans.append(
                    _Plan(
                        device,
                        message,
                        [
                            i
                            for i in batch
                            if i.job.conversation_id == message.conversation_id
                            and i.job.message_id in ids
                        ],
                    )
                )
        return plans, skipped

    async def _previews(self, items: Sequence[_Pending]) -> dict[tuple[str, int], str]:
        """Texts for devices that show previews; none while the message store
        is unreachable (a push without text beats no push)."""
        wanted = {(i.job.conversation_id, i.job.message_id) for i in items}
        try:
            rows = await asyncio.gather(*(self._messages.get(c, m) for c, m in wanted))
        except Exception as exc:
            log.warning("previews unavailable", extra={"fields": {"error": repr(exc)}})
            return {}
        return {
            (row.conversation_id, row.message_id): media_preview(row)
            for row in rows
            if row is not None and row.kind in _PREVIEWED
        }

    async def _send(self, plan: _Plan) -> None:
        try:
            outcome = await self._sender.send(plan.device, plan.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A stored credential no client can use, or a bug: trying again
            # would fail again, and holding it would stall the commits.
            log.error(
                "push failed", exc_info=exc, extra={"fields": {"provider": plan.device.platform}}
            )
            outcome = Rejected(0, f"failed: {type(exc).__name__}")
        provider = plan.device.platform
        fields = {
            "user_id": plan.device.user_id,
            "device_id": plan.device.device_id,
            "provider": provider,
        }
        if isinstance(outcome, Delivered):
            metrics.PUSHES.labels(provider, "delivered").inc()
            now_ms = self._clock.now_ms()
            for message_id in plan.message.message_ids:
                metrics.MESSAGE_TO_PROVIDER_SECONDS.observe(age_s(message_id, now_ms))
            self.pushes_sent += 1
            self._finish(plan.items)
        elif isinstance(outcome, CredentialDead):
            metrics.PUSHES.labels(provider, "dead_credential").inc()
            log.info(
                "push credential dead; forgotten",
                extra={"fields": {**fields, "reason": outcome.reason}},
            )
            try:
                await self._directory.forget_credential(plan.device)
            except Exception as exc:  # the next push to it finds it dead again
                log.warning(
                    "dead credential not forgotten",
                    extra={"fields": {**fields, "error": repr(exc)}},
                )
            self._finish(plan.items)
        elif isinstance(outcome, Rejected):
            metrics.PUSHES.labels(provider, "rejected").inc()
            log.warning(
                "push dropped: rejected",
                extra={"fields": {**fields, "status": outcome.status, "reason": outcome.reason}},
            )
            self._finish(plan.items)
        else:
            metrics.PUSHES.labels(provider, "retry").inc()
            self._hold(plan, outcome)

    def _hold(self, plan: _Plan, outcome: RetryAfter) -> None:
        attempts = max(i.attempts for i in plan.items) + 1
        ceiling = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** min(attempts - 1, 16))
        delay = max(outcome.seconds or 0.0, self._rng.uniform(ceiling / 2, ceiling))
        for item in plan.items:
            item.attempts = attempts
        log.warning(
            "push held for its provider",
            extra={
                "fields": {
                    "provider": plan.device.platform,
                    "reason": outcome.reason,
                    "attempts": attempts,
                    "retry_in_s": round(delay, 1),
                }
            },
        )
        self._windows.hold(plan.device.key, plan.items, self._clock.monotonic() + delay)
        self._changed.set()


def age_s(message_id: int, now_ms: int) -> float:
    return max(0, now_ms - snowflake.timestamp_ms(message_id)) / 1000
