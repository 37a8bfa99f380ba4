"""What a well-behaved chatmesh device does, as a state machine without I/O.

``ClientProtocol`` is told when a connection opens (``connected``), closes
(``disconnected``), what arrives (``receive``), and what time it is; it
answers with the frames to write (``frames_to_send``), when to look again
(``next_wakeup``), and what happened (``events``). A transport (``Device``)
does the I/O; tests can drive it by hand. The contract it implements:

1. **Catch up** before anything else after connecting: a sync from the
   stored cursor (``chatmesh.client.sync``). An UNAVAILABLE reply, or none in
   time, means the whole sync runs again a little later. Sync again whenever
   the server sends ``sync_required``.
2. **Resend** every unacknowledged outbox entry once caught up, with its
   original client_msg_id: the server stores a send once and answers every
   attempt with the same id.
3. **Live**: a send enters the outbox first and leaves it on its ``ack``
   (the message is durable) or on an error other than UNAVAILABLE and
   RATE_LIMITED (a real failure). UNAVAILABLE means resend after a short
   jittered delay, RATE_LIMITED after a second or two (the user's budget
   refills; what they wrote is not dropped for it). No ack within
   ``ack_timeout_s`` means resend too, waiting twice as long for each
   resend of the same message without an ack (up to ``ack_timeout_max_s``):
   a server that acks slowly is not sent every pending message again every
   few seconds.
4. **Store** messages per conversation, each once (``MessageStore``), shown in
   message_id order: deliveries may repeat, syncs re-read a window, and the
   device's own sends come back from sync.
5. **Receipts**, if asked to: report the newest message held in each
   conversation as delivered, at most once per ``mark_interval_s``.

A client_msg_id is scoped to the sending device: each device may number its
sends on its own.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chatmesh.client.store import MessageStore
from chatmesh.client.sync import MAX_PAGE_SIZE, SyncOutcome, SyncRun, SyncStep
from chatmesh.frames import request_id_of
from chatmesh.v1 import client_pb2, common_pb2

RATE_LIMITED = "RATE_LIMITED"  # the reason of a send refused for the user's rate


@dataclass(frozen=True, slots=True)
class ClientOptions:
    sync: bool = True  # off only to observe a server without catch-up
    mark_delivered: bool = False  # report delivered receipts for what is held
    ack_timeout_s: float = 3.0  # a send acks in milliseconds; seconds mean it was lost
    ack_timeout_max_s: float = 30.0  # doubling per unanswered resend, up to this
    unavailable_retry_s: tuple[float, float] = (0.2, 0.5)  # jittered "resend later"
    rate_limited_retry_s: tuple[float, float] = (1.0, 2.0)
    request_timeout_s: float = 5.0  # a sync reply this late is treated as lost
    sync_retry_s: tuple[float, float] = (0.2, 0.5)
    sync_page_size: int = MAX_PAGE_SIZE
    sync_pages_in_flight: int = 1
    # Name the messages held in each sync page request so the server leaves
    # them out; off only to measure what that saves.
    sync_names_held: bool = True
    mark_interval_s: float = 1.0  # per conversation


@dataclass(slots=True)
class PendingSend:
    """A send not yet acknowledged."""

    client_msg_id: str
    to_user_id: str | None
    conversation_id: str | None
    kind: int
    body: bytes
    due_at: float = 0.0  # time of the next (re)transmission
    media: common_pb2.MediaAttachment | None = None
    unanswered: int = 0  # transmissions on this connection with no answer yet


# -- events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message new to this device: from its own ack, a delivery or a sync."""

    message: common_pb2.Message
    source: str  # "ack", "deliver" or "sync"


@dataclass(frozen=True, slots=True)
class SendFailed:
    client_msg_id: str
    error: client_pb2.ErrorFrame


@dataclass(frozen=True, slots=True)
class SyncFinished:
    generation: int  # covers every request_sync that returned up to this
    outcome: SyncOutcome


@dataclass(frozen=True, slots=True)
class WatermarkChanged:
    """Another device's receipt moved a member's watermark."""

    watermark: common_pb2.Watermark


@dataclass(frozen=True, slots=True)
class ReceiptCountsChanged:
    """How many of a group's members have, and have read, this device's user's messages."""

    conversation_id: str
    counts: tuple[common_pb2.ReceiptCounts, ...]


@dataclass(frozen=True, slots=True)
class ChannelActivity:
    """Broadcast channels have new messages: read them when opened (sync, history)."""

    channels: tuple[tuple[str, int], ...]  # (conversation_id, newest message id)


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A frame the protocol has no use for (a pong, an unmatched error)."""

    frame: client_pb2.ServerFrame


Event = (
    MessageAdded
    | SendFailed
    | SyncFinished
    | WatermarkChanged
    | ReceiptCountsChanged
    | ChannelActivity
    | FrameReceived
)


@dataclass(slots=True)
class ClientStats:
    connects: int = 0
    sends: int = 0  # messages put in the outbox
    transmissions: int = 0  # send frames written: first tries and resends
    acks: int = 0  # ack frames, repeats included
    unavailable: Counter[str] = field(default_factory=Counter)  # UNAVAILABLE reasons on sends
    rate_limited: int = 0  # sends refused for the user's rate, and resent later
    received: Counter[str] = field(default_factory=Counter)  # raw copies by source
    unique: int = 0  # copies that were new
    duplicates_filtered: int = 0  # copies already held
    syncs: int = 0  # completed syncs
    sync_retries: int = 0
    sync_required: Counter[str] = field(default_factory=Counter)  # by reason
    marks_sent: int = 0
    marks_answered: int = 0
    receipt_events: int = 0  # watermark frames about other members
    late_replies: int = 0  # replies to requests that had already timed out
    unmatched_errors: Counter[str] = field(default_factory=Counter)
    gateways: Counter[str] = field(default_factory=Counter)  # connections per gateway


class ClientProtocol:
    def __init__(
        self,
        user_id: str,
        device_id: str,
        *,
        options: ClientOptions | None = None,
        rng: random.Random | None = None,
        client_msg_ids: Callable[[], str] | None = None,
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.options = options or ClientOptions()
        self._rng = rng or random.Random()
        self._new_client_msg_id = client_msg_ids or (lambda: uuid.uuid4().hex)
        self._request_seq = itertools.count(1)
        self.store = MessageStore()
        self.stats = ClientStats()
        self.cursor = ""
        self.outbox: dict[str, PendingSend] = {}  # in send order
        self.acked: dict[str, tuple[str, int]] = {}  # client_msg_id -> (conversation, id)
        self.failures: list[str] = []  # sends and syncs the server refused for good
        self.anomalies: list[str] = []  # contradictions of the protocol seen in replies
        self._events: list[Event] = []
        self._online = False
        self._caught_up = False  # the first sync since connecting has ended
        # Sync: generations of requests, the run in progress, and its deadline.
        self._sync_requested = 0
        self._sync_covered = 0
        self._sync: SyncRun | None = None
        self._sync_generation = 0
        self._sync_deadline = 0.0
        self._sync_retry_at = 0.0
        self._sync_frames: list[client_pb2.ClientFrame] = []
        # Delivered receipts: highest id reported per conversation, when, in flight.
        self._marked: dict[str, int] = {}
        self._marked_at: dict[str, float] = {}
        self._mark_requests: dict[str, tuple[str, int]] = {}

    # -- what the app does ------------------------------------------------------

    def send(
        self,
        *,
        to_user: str | None = None,
        conversation: str | None = None,
        body: bytes,
        kind: int = common_pb2.MESSAGE_KIND_TEXT,
        media: common_pb2.MediaAttachment | None = None,
    ) -> str:
        """Puts a message in the outbox and returns its client_msg_id. It is
        transmitted once connected and caught up. A media message names a
        completed upload in ``media`` (``body`` is then its caption)."""
        if (to_user is None) == (conversation is None):
            raise ValueError("name exactly one of to_user, conversation")
        client_msg_id = self._new_client_msg_id()
        if client_msg_id in self.outbox or client_msg_id in self.acked:
            raise ValueError(f"client_msg_id {client_msg_id!r} already used by this device")
        self.outbox[client_msg_id] = PendingSend(
            client_msg_id, to_user, conversation, kind, body, media=media
        )
        self.stats.sends += 1
        return client_msg_id

    def request_sync(self) -> int:
        """Asks for a sync begun after this call; returns its generation, which
        a ``SyncFinished`` event with at least that generation answers."""
        self._sync_requested += 1
        return self._sync_requested

    @property
    def caught_up(self) -> bool:
        return self._online and self._caught_up

    @property
    def sync_pending(self) -> bool:
        return self._sync_requested > self._sync_covered

    # -- what the transport tells ------------------------------------------------

    def connected(self, hello: client_pb2.HelloFrame) -> None:
        self._online = True
        self.stats.connects += 1
        self.stats.gateways[hello.gateway_id] += 1
        # Receipts in flight died with the last connection.
        self._marked.clear()
        self._mark_requests.clear()
        if self.options.sync:
            self._caught_up = False
            self.request_sync()
        else:
            self._begin_live()

    def disconnected(self) -> None:
        self._online = False
        self._caught_up = False
        if self._sync is not None:
            self._sync.abandon("connection closed")
            self._sync = None
            self._sync_frames.clear()

    def receive(self, frame: client_pb2.ServerFrame, now: float) -> None:
        kind = frame.WhichOneof("kind")
        request_id = request_id_of(frame)
        if self._sync is not None and self._sync.owns(request_id):
            self._on_sync_step(self._sync.receive(frame), now)
        elif kind == "ack":
            self._on_ack(frame.ack)
        elif kind == "deliver":
            self._ingest(frame.deliver.message, "deliver")
        elif kind == "error":
            self._on_error(frame, now)
        elif kind == "sync_required":
            self.stats.sync_required[frame.sync_required.reason] += 1
            if self.options.sync:
                self.request_sync()
        elif kind == "watermark":
            if self._mark_requests.pop(request_id, None) is not None:
                self.stats.marks_answered += 1
            elif not request_id:
                self.stats.receipt_events += 1
                self._events.append(WatermarkChanged(frame.watermark.watermark))
        elif kind == "receipt_counts":
            counts = frame.receipt_counts
            self._events.append(ReceiptCountsChanged(counts.conversation_id, tuple(counts.counts)))
        elif kind == "channel_activity":
            self._events.append(
                ChannelActivity(
                    tuple(
                        (c.conversation_id, c.last_message_id)
                        for c in frame.channel_activity.channels
                    )
                )
            )
        elif kind in ("sync_summary", "sync_page"):
            self.stats.late_replies += 1  # its request timed out and was retried
        else:
            self._events.append(FrameReceived(frame))

    def frames_to_send(self, now: float) -> list[client_pb2.ClientFrame]:
        """Everything due now: sync requests, then sends, then receipts."""
        if not self._online:
            return []
        frames = self._sync_due(now)
        if self._caught_up:
            frames.extend(self._sends_due(now))
            if self.options.mark_delivered:
                frames.extend(self._marks_due(now))
        return frames

    def next_wakeup(self) -> float | None:
        """The time at which ``frames_to_send`` may next have something due,
        absent any frame arriving; None when only a frame can change that."""
        if not self._online:
            return None
        times = []
        if self._sync is not None:
            times.append(self._sync_deadline)
        elif self.sync_pending:
            times.append(self._sync_retry_at)
        if self._caught_up:
            times.extend(entry.due_at for entry in self.outbox.values())
            if self.options.mark_delivered:
                times.extend(
                    self._marked_at.get(c, 0.0) + self.options.mark_interval_s
                    for c in self.store.conversation_ids()
                    if self.store.newest_id(c) > self._marked.get(c, 0)
                )
        return min(times, default=None)

    def events(self) -> list[Event]:
        """What happened since the last call."""
        events, self._events = self._events, []
        return events

    # -- sync --------------------------------------------------------------------

    def _sync_due(self, now: float) -> list[client_pb2.ClientFrame]:
        if self._sync is not None and now >= self._sync_deadline:
            outcome = self._sync.abandon("no reply in time")
            self._on_sync_step(SyncStep(outcome=outcome), now)
        if self._sync is None and self.sync_pending and now >= self._sync_retry_at:
            self._sync_generation = self._sync_requested
            self._sync = SyncRun(
                self.cursor,
                request_ids=self._next_request_id,
                page_size=self.options.sync_page_size,
                pages_in_flight=self.options.sync_pages_in_flight,
                held=self.store.held_ids if self.options.sync_names_held else None,
            )
            self._on_sync_step(self._sync.start(), now)
        frames, self._sync_frames = self._sync_frames, []
        return frames

    def _on_sync_step(self, step: SyncStep, now: float) -> None:
        self._sync_frames.extend(step.frames)
        if step.frames:
            self._sync_deadline = now + self.options.request_timeout_s
        for message in step.messages:
            self._ingest(message, "sync")
        self.anomalies.extend(step.anomalies)
        outcome = step.outcome
        if outcome is None:
            return
        self._sync = None
        self._sync_frames.clear()
        if outcome.retry:
            self.stats.sync_retries += 1
            self._sync_retry_at = now + self._rng.uniform(*self.options.sync_retry_s)
            return
        if outcome.completed:
            self.stats.syncs += 1
            self.cursor = outcome.next_cursor
            if outcome.gap:
                self.anomalies.append("sync reported gap=true: rebuild from list and history")
        else:
            self.failures.append(f"sync refused: {outcome.reason}")
        self._sync_covered = max(self._sync_covered, self._sync_generation)
        self._events.append(SyncFinished(self._sync_generation, outcome))
        if not self._caught_up:
            self._begin_live()

    def _begin_live(self) -> None:
        self._caught_up = True
        for entry in self.outbox.values():
            entry.due_at = 0.0  # resend everything unacknowledged
            entry.unanswered = 0

    # -- sends -------------------------------------------------------------------

    def _sends_due(self, now: float) -> list[client_pb2.ClientFrame]:
        frames = []
        for entry in self.outbox.values():
            if entry.due_at > now:
                continue
            send = client_pb2.SendFrame(
                client_msg_id=entry.client_msg_id,
                kind=entry.kind,  # type: ignore[arg-type]
                body=entry.body,
                media=entry.media,
            )
            if entry.to_user_id is not None:
                send.to_user_id = entry.to_user_id
            else:
                assert entry.conversation_id is not None
                send.conversation_id = entry.conversation_id
            # Resent if no ack by then.
            entry.due_at = now + min(
                self.options.ack_timeout_max_s,
                self.options.ack_timeout_s * 2 ** min(entry.unanswered, 16),
            )
            entry.unanswered += 1
            self.stats.transmissions += 1
            frames.append(client_pb2.ClientFrame(request_id=self._next_request_id(), send=send))
        return frames

    def _on_ack(self, ack: client_pb2.AckFrame) -> None:
        self.stats.acks += 1
        entry = self.outbox.pop(ack.client_msg_id, None)
        earlier = self.acked.get(ack.client_msg_id)
        if earlier is not None and earlier != (ack.conversation_id, ack.message_id):
            self.anomalies.append(
                f"{ack.client_msg_id} acked as {earlier} and as"
                f" {(ack.conversation_id, ack.message_id)}"
            )
            return
        self.acked[ack.client_msg_id] = (ack.conversation_id, ack.message_id)
        message = common_pb2.Message(
            message_id=ack.message_id,
            conversation_id=ack.conversation_id,
            sender_user_id=self.user_id,
            sender_device_id=self.device_id,
            client_msg_id=ack.client_msg_id,
            created_at_ms=ack.created_at_ms,
        )
        if entry is not None:
            message.kind = entry.kind  # type: ignore[assignment]
            message.body = entry.body
        self._ingest(message, "ack")

    def _on_error(self, frame: client_pb2.ServerFrame, now: float) -> None:
        error = frame.error
        if error.client_msg_id:
            self._on_send_error(error, now)
        elif error.request_id in self._mark_requests:
            self._on_mark_error(error)
        else:
            self.stats.unmatched_errors[error.reason] += 1
            self._events.append(FrameReceived(frame))

    def _on_send_error(self, error: client_pb2.ErrorFrame, now: float) -> None:
        entry = self.outbox.get(error.client_msg_id)
        if entry is None:
            return  # already acked, or already failed: a late answer to a resend
        entry.unanswered = 0  # answered: the server is keeping up
        if error.code == common_pb2.ERROR_CODE_UNAVAILABLE:
            self.stats.unavailable[error.reason] += 1
            entry.due_at = now + self._rng.uniform(*self.options.unavailable_retry_s)
            return
        if error.reason == RATE_LIMITED:
            self.stats.rate_limited += 1
            entry.due_at = now + self._rng.uniform(*self.options.rate_limited_retry_s)
            return
        del self.outbox[error.client_msg_id]
        self.failures.append(
            f"send {error.client_msg_id} refused: {common_pb2.ErrorCode.Name(error.code)}"
            f" {error.reason} ({error.message})"
        )
        self._events.append(SendFailed(error.client_msg_id, error))

    # -- receipts ------------------------------------------------------------------

    def _marks_due(self, now: float) -> list[client_pb2.ClientFrame]:
        frames = []
        for conversation_id in self.store.conversation_ids():
            highest = self.store.newest_id(conversation_id)
            if highest <= self._marked.get(conversation_id, 0):
                continue
            last = self._marked_at.get(conversation_id)
            if last is not None and now - last < self.options.mark_interval_s:
                continue
            request_id = self._next_request_id()
            self._marked[conversation_id] = highest
            self._marked_at[conversation_id] = now
            self._mark_requests[request_id] = (conversation_id, highest)
            self.stats.marks_sent += 1
            frames.append(
                client_pb2.ClientFrame(
                    request_id=request_id,
                    mark=client_pb2.MarkFrame(
                        conversation_id=conversation_id,
                        kind=common_pb2.RECEIPT_KIND_DELIVERED,
                        message_id=highest,
                    ),
                )
            )
        return frames

    def _on_mark_error(self, error: client_pb2.ErrorFrame) -> None:
        conversation_id, message_id = self._mark_requests.pop(error.request_id)
        if error.code == common_pb2.ERROR_CODE_UNAVAILABLE:
            if self._marked.get(conversation_id) == message_id:
                del self._marked[conversation_id]  # report it again later
            return
        self.failures.append(
            f"mark {conversation_id} {message_id} refused:"
            f" {common_pb2.ErrorCode.Name(error.code)} {error.reason}"
        )

    # -- the local store -------------------------------------------------------------

    def _ingest(self, message: common_pb2.Message, source: str) -> None:
        self.stats.received[source] += 1
        stored = self.store.add(message)
        if stored.anomaly:
            self.anomalies.append(f"{stored.anomaly} ({source})")
        if not stored.added:
            self.stats.duplicates_filtered += 1
            return
        self.stats.unique += 1
        self._events.append(MessageAdded(message, source))

    def _next_request_id(self) -> str:
        return f"{self.device_id}-{next(self._request_seq)}"
