"""Reading the message log and routing each record to its members' devices.

A batch is split by conversation; each conversation's records are handled in
log order, conversations concurrently, and the batch's offsets are committed
once every record is routed. A record that fails (sessionsvc down, say) is
tried again, with the records after it in its conversation, until it
succeeds; a worker that dies mid-batch leaves the uncommitted records to the
partition's next owner. Delivery is at least once; devices drop repeats by
message id.

Each record names a message; its row is read from Cassandra, the ground
truth. A row that is not there yet may still be committing (the write and the
append run side by side): the worker waits for it, up to the commit bound,
and drops the record after that (its send was never acknowledged). A system
message is applied to the membership (harmless if it was) and invalidates
the group's cached membership before it is routed itself. A broadcast
channel's messages are not delivered: its members are nudged
(``ChannelNudges``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Protocol

from chatmesh.clock import Clock
from chatmesh.kafka_io import LogRecord
from chatmesh.tracing import NO_TRACING, Tracing
from chatmesh.v1 import common_pb2
from msgsvc.fanout import metrics
from msgsvc.fanout.membership import MembershipCache
from msgsvc.fanout.record_spans import RecordSpans
from msgsvc.group_events import decode
from msgsvc.message_log import decode_entry
from msgsvc.model import SendOutcome, StoredMessage
from msgsvc.routing import Router
from msgsvc.storage.directory import CHANNEL
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import MessageStore
from msgsvc.visibility import COMMIT_BOUND_MS, age_ms

log = logging.getLogger(__name__)

BATCH_RECORDS = 500
POLL_TIMEOUT_S = 0.5
ROW_WAIT_S = 0.02  # a row still being written is typically there within milliseconds
RETRY_BACKOFF_S = (0.2, 2.0)  # first and longest pause before routing a batch again
# A busy channel nudges its members at most this often: a nudge costs a
# session lookup of every member.
NUDGE_WINDOW_S = 1.0


class LogSource(Protocol):
    async def batch(self, max_records: int, timeout_s: float) -> list[LogRecord]: ...

    async def commit(self, records: Sequence[LogRecord]) -> None: ...


class ChannelNudges:
    """A channel's members are nudged, not delivered each message: at most one
    nudge per channel per window, naming its newest message. Best effort, like
    every live delivery: a member who misses a nudge sees the activity on
    their next sync."""

    def __init__(self, router: Router, window_s: float) -> None:
        self._router = router
        self._window_s = window_s
        self._pending: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def note(self, conversation_id: str, message_id: int, members: tuple[str, ...]) -> None:
        held = self._pending.get(conversation_id)
        if held is not None:
            self._pending[conversation_id] = (max(held[0], message_id), members)
            return
        self._pending[conversation_id] = (message_id, members)
        task = asyncio.get_running_loop().create_task(
            self._send_later(conversation_id), name=f"channel-nudge:{conversation_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send_later(self, conversation_id: str) -> None:
        await asyncio.sleep(self._window_s)
        message_id, members = self._pending.pop(conversation_id)
        try:
            await self._router.nudge(conversation_id, message_id, members)
        except Exception:
            log.warning("channel nudge lost", extra={"fields": {"channel": conversation_id}})


class FanoutWorker:
    def __init__(
        self,
        *,
        source: LogSource,
        messages: MessageStore,
        members: MembershipCache,
        groups: GroupStore,
        router: Router,
        clock: Clock,
        nudge_window_s: float = NUDGE_WINDOW_S,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._spans = RecordSpans(tracing)
        self._nudges = ChannelNudges(router, nudge_window_s)
        self._source = source
        self._messages = messages
        self._members = members
        self._groups = groups
        self._router = router
        self._clock = clock
        self.routed = 0  # records routed since start, repeats included

    async def close(self) -> None:
        """Drops nudges not sent yet (their channels are seen at the next sync)."""
        await self._nudges.close()

    async def run(self) -> None:
        """Reads, routes and commits, batch after batch, until cancelled."""
        while True:
            try:
                records = await self._source.batch(BATCH_RECORDS, POLL_TIMEOUT_S)
                if records:
                    started = time.perf_counter()
                    metrics.RECORDS_CONSUMED.inc(len(records))
                    await self.route_batch(records)
                    await self._source.commit(records)
                    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            except Exception:
                # Kafka unreachable, a commit refused during a rebalance: the
                # uncommitted records are read again, by this worker or the
                # partition's next owner.
                log.exception("fan-out batch failed")
                await asyncio.sleep(RETRY_BACKOFF_S[1])

    async def route_batch(self, records: Sequence[LogRecord]) -> None:
        """Routes every record, retrying what fails until it succeeds."""
        pending: OrderedDict[str, deque[LogRecord]] = OrderedDict()
        for record in records:
            pending.setdefault(record.key.decode(), deque()).append(record)
        pause = RETRY_BACKOFF_S[0]
        while True:
            queues = list(pending.values())
            outcomes = await asyncio.gather(
                *(self._conversation(q) for q in queues), return_exceptions=True
            )
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            for outcome in failed:
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation: stop now, uncommitted
            for key in [k for k, q in pending.items() if not q]:
                del pending[key]
            if not pending:
                return
            log.warning(
                "routing failed; retrying",
                extra={"fields": {"conversations": len(pending), "error": repr(failed[0])}},
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_BACKOFF_S[1])

    async def _conversation(self, queue: deque[LogRecord]) -> None:
        while queue:
            with self._spans.routing(queue[0]):
                await self._route(queue[0])
            queue.popleft()

    async def _route(self, record: LogRecord) -> None:
        entry = decode_entry(record.value)
        message = await self._row(entry.conversation_id, entry.message_id)
        if message is None:
            metrics.RECORDS_DROPPED.inc()
            return  # never written, so never acknowledged
        if message.kind == common_pb2.MESSAGE_KIND_SYSTEM:
            await self._groups.apply(entry.conversation_id, entry.message_id, decode(message.body))
            self._members.invalidate(entry.conversation_id)
        group = await self._members.get(entry.conversation_id)
        recipients = group.recipients(message.message_id) if group is not None else ()
        if group is not None and group.kind == CHANNEL:
            self._nudges.note(group.conversation_id, message.message_id, recipients)
        else:
            await self._router.route(SendOutcome(message, recipients, duplicate=True))
        self.routed += 1
        metrics.RECORDS_ROUTED.inc()

    async def _row(self, conversation_id: str, message_id: int) -> StoredMessage | None:
        while True:
            row = await self._messages.get(conversation_id, message_id)
            if row is not None:
                return row
            if age_ms(message_id, self._clock.now_ms()) > COMMIT_BOUND_MS:
                return None
            await asyncio.sleep(ROW_WAIT_S)
