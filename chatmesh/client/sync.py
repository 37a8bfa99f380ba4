"""Catching up from a cursor: a state machine without I/O, and one way to drive it.

The protocol (README, "What a client does"): ``sync{cursor}`` answers a
summary of the conversations changed since the cursor, newest activity
first; each is then read with ``sync_conversation`` carrying *the cursor sent
in the sync* (not the new one), page by page until its ``next_page_token`` is
empty. Only once every page is in may the client adopt ``next_cursor``: a
sync cut short is run again from the old cursor, and the repeats it reads are
dropped by message id.

To spare most of those repeats, a run given ``held`` names, in each page
request, the ids the device already holds in that conversation from the
window's floor (the summary's ``window_floor_id``) up, above the last message
of the previous page, lowest first and at most ``MAX_HELD_IDS``; the server
leaves exactly those out. ``held`` must name only messages really held: a
named message is not sent again.

``SyncRun`` is fed the replies and says what to send next, so the same logic
serves a reconnecting device, a test that calls msgsvc's frame handler in
process, and a benchmark with several pages in flight.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from chatmesh.frames import request_id_of
from chatmesh.v1 import client_pb2, common_pb2

MAX_PAGE_SIZE = 50  # the protocol's limit on sync pages
MAX_HELD_IDS = 256  # the protocol's limit on held_message_ids per page request

# (conversation_id, lowest id, at most how many) -> ids held, ascending
HeldIds = Callable[[str, int, int], Sequence[int]]


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    completed: bool
    retry: bool = False  # failed for now (UNAVAILABLE, a timeout, a lost connection)
    reason: str = ""  # why it failed
    next_cursor: str = ""  # to adopt, once completed
    gap: bool = False  # the summary could not list every changed conversation
    conversations: int = 0
    pages: int = 0
    messages: int = 0


@dataclass(frozen=True, slots=True)
class SyncStep:
    frames: tuple[client_pb2.ClientFrame, ...] = ()  # to send now
    messages: tuple[common_pb2.Message, ...] = ()  # received, in page order
    anomalies: tuple[str, ...] = ()  # contradictions of the protocol seen in replies
    outcome: SyncOutcome | None = None  # set once the run is over


@dataclass(slots=True)
class _Counts:
    conversations: int = 0
    pages: int = 0
    messages: int = 0


class SyncRun:
    """One catch-up from ``cursor``. Not reusable: a retry is a new run."""

    def __init__(
        self,
        cursor: str,
        *,
        request_ids: Callable[[], str],
        page_size: int = MAX_PAGE_SIZE,
        pages_in_flight: int = 1,
        held: HeldIds | None = None,
    ) -> None:
        self.cursor = cursor
        self._held = held
        # Per conversation, the lowest id its next page can return.
        self._positions: dict[str, int] = {}
        self._request_ids = request_ids
        self._page_size = page_size
        self._pages_in_flight = pages_in_flight
        self._summary_request = ""
        self._pages: dict[str, str] = {}  # request_id -> conversation_id
        self._queue: deque[str] = deque()
        self._counts = _Counts()
        self.summary: client_pb2.SyncSummaryFrame | None = None
        self.outcome: SyncOutcome | None = None

    def start(self) -> SyncStep:
        self._summary_request = self._request_ids()
        return SyncStep(
            frames=(
                client_pb2.ClientFrame(
                    request_id=self._summary_request,
                    sync=client_pb2.SyncFrame(cursor=self.cursor),
                ),
            )
        )

    def owns(self, request_id: str) -> bool:
        return bool(request_id) and (
            request_id == self._summary_request or request_id in self._pages
        )

    def receive(self, frame: client_pb2.ServerFrame) -> SyncStep:
        """Takes a reply to one of this run's requests."""
        request_id = request_id_of(frame)
        if self.outcome is not None or not self.owns(request_id):
            return SyncStep()
        if request_id == self._summary_request:
            self._summary_request = ""
            return self._on_summary(frame)
        return self._on_page(self._pages.pop(request_id), frame)

    def abandon(self, reason: str) -> SyncOutcome:
        """Ends the run unfinished (a timeout, a lost connection): retry later."""
        if self.outcome is None:
            self.outcome = self._failed(reason, retry=True)
        return self.outcome

    def _on_summary(self, frame: client_pb2.ServerFrame) -> SyncStep:
        failed = self._failure(frame, "sync_summary")
        if failed is not None:
            return failed
        self.summary = frame.sync_summary
        self._queue.extend(c.conversation_id for c in self.summary.conversations)
        self._counts.conversations = len(self._queue)
        return self._next_requests(SyncStep())

    def _on_page(self, conversation_id: str, frame: client_pb2.ServerFrame) -> SyncStep:
        failed = self._failure(frame, "sync_page")
        if failed is not None:
            return failed
        page = frame.sync_page
        ids = [m.message_id for m in page.messages]
        if ids:
            self._positions[conversation_id] = max(
                self._positions.get(conversation_id, 0), ids[-1] + 1
            )
        anomalies: tuple[str, ...] = ()
        if ids != sorted(ids):
            anomalies = (f"sync page of {conversation_id} not in id order: {ids}",)
        self._counts.pages += 1
        self._counts.messages += len(ids)
        step = SyncStep(messages=tuple(page.messages), anomalies=anomalies)
        if page.next_page_token:
            return SyncStep(
                frames=(self._page_request(conversation_id, page.next_page_token),),
                messages=step.messages,
                anomalies=anomalies,
            )
        return self._next_requests(step)

    def _next_requests(self, step: SyncStep) -> SyncStep:
        frames = list(step.frames)
        while self._queue and len(self._pages) < self._pages_in_flight:
            frames.append(self._page_request(self._queue.popleft(), ""))
        outcome = None
        if not self._pages and not self._queue:
            assert self.summary is not None
            outcome = self.outcome = SyncOutcome(
                completed=True,
                next_cursor=self.summary.next_cursor,
                gap=self.summary.gap,
                conversations=self._counts.conversations,
                pages=self._counts.pages,
                messages=self._counts.messages,
            )
        return SyncStep(tuple(frames), step.messages, step.anomalies, outcome)

    def _page_request(self, conversation_id: str, page_token: str) -> client_pb2.ClientFrame:
        request_id = self._request_ids()
        self._pages[request_id] = conversation_id
        held: Sequence[int] = ()
        if self._held is not None:
            assert self.summary is not None
            lowest = max(self.summary.window_floor_id, self._positions.get(conversation_id, 0))
            held = self._held(conversation_id, lowest, MAX_HELD_IDS)
        return client_pb2.ClientFrame(
            request_id=request_id,
            sync_conversation=client_pb2.SyncConversationFrame(
                conversation_id=conversation_id,
                cursor=self.cursor,
                page_token=page_token,
                page_size=self._page_size,
                held_message_ids=held,
            ),
        )

    def _failure(self, frame: client_pb2.ServerFrame, expected: str) -> SyncStep | None:
        kind = frame.WhichOneof("kind")
        if kind == expected:
            return None
        if kind == "error":
            error = frame.error
            reason = f"{common_pb2.ErrorCode.Name(error.code)} {error.reason} ({error.message})"
            retry = error.code == common_pb2.ERROR_CODE_UNAVAILABLE
        else:
            reason, retry = f"expected {expected}, got {kind}", False
        self.outcome = self._failed(reason, retry=retry)
        return SyncStep(outcome=self.outcome)

    def _failed(self, reason: str, *, retry: bool) -> SyncOutcome:
        return SyncOutcome(
            completed=False,
            retry=retry,
            reason=reason,
            conversations=self._counts.conversations,
            pages=self._counts.pages,
            messages=self._counts.messages,
        )


class SyncFailed(Exception):
    def __init__(self, outcome: SyncOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass(slots=True)
class SyncResult:
    summary: client_pb2.SyncSummaryFrame
    outcome: SyncOutcome
    messages: list[common_pb2.Message] = field(default_factory=list)  # in arrival order

    @property
    def next_cursor(self) -> str:
        return self.outcome.next_cursor


Request = Callable[[client_pb2.ClientFrame], Awaitable[client_pb2.ServerFrame]]


async def run_sync(
    request: Request,
    cursor: str,
    *,
    page_size: int = MAX_PAGE_SIZE,
    pages_in_flight: int = 1,
    held: HeldIds | None = None,
) -> SyncResult:
    """Runs one sync to its end over ``request`` (a frame in, its reply out:
    a ``Connection``, or msgsvc's frame handler in process), naming the ids
    ``held`` gives in its page requests. Raises ``SyncFailed`` if the server
    refuses it or is unavailable."""
    counter = itertools.count(1)
    run = SyncRun(
        cursor,
        request_ids=lambda: f"sync-{next(counter)}",
        page_size=page_size,
        pages_in_flight=pages_in_flight,
        held=held,
    )
    received: list[common_pb2.Message] = []
    in_flight: set[asyncio.Task[client_pb2.ServerFrame]] = set()
    step = run.start()
    try:
        while True:
            received.extend(step.messages)
            if step.outcome is not None:
                if not step.outcome.completed:
                    raise SyncFailed(step.outcome)
                assert run.summary is not None
                return SyncResult(run.summary, step.outcome, received)
            in_flight.update(asyncio.ensure_future(request(f)) for f in step.frames)
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            reply = done.pop()
            in_flight.discard(reply)
            step = run.receive(reply.result())
    finally:
        for task in in_flight:
            task.cancel()
