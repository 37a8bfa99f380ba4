"""A simulated client device: what a well-behaved chatmesh app does.

This is test support code, and the reference for the client side of the
protocol (``proto/chatmesh/v1/client.proto``). A device that follows it never
loses an acknowledged message and never shows one twice, whatever the
servers do between crashes. The contract:

1. **Connect** with a fresh token and wait for ``hello``. Any failure, or a
   close at any later time (crash, 1012 drain, 1013 overload, an edge that
   refuses while a gateway restarts), means: wait a small jittered backoff,
   then start again at 1. The one exception is close code 4001: another
   connection of this same device took over, and reconnecting would only
   evict it in turn; the device stops.
2. **Catch up** (sync) before anything else: ``sync{cursor}`` lists the
   conversations that changed; each is paged with ``sync_conversation``
   carrying *the cursor sent in the sync* (not the new one) until its
   ``next_page_token`` is empty; only once all are fetched is
   ``next_cursor`` adopted. An UNAVAILABLE error, or no reply in time,
   means the whole sync is retried a little later; any other error is a
   failure. Also sync whenever the server sends ``sync_required``.
3. **Resend** every unacknowledged outbox entry, with its original
   client_msg_id. The server deduplicates, so a resend never creates a second
   message and is answered with the first one's id.
4. **Live**: a send goes into the outbox first and leaves it only on its
   ``ack`` (the message is durable) or a non-UNAVAILABLE error (a real
   failure). An UNAVAILABLE error means resend after a short delay; no ack
   within ``ACK_TIMEOUT_S`` means resend too.
5. **Store** messages per conversation keyed by message_id and show them in
   message_id order. Deliveries are best effort and may repeat, syncs repeat
   what the device already has, and the device's own sends come back from
   sync too: everything is deduplicated by message_id and by
   (sender_user_id, sender_device_id, client_msg_id), which identifies one
   send: a client_msg_id is the sending device's, and another device of the
   same user may use the same one for another message.

Frames are read by one task and matched to the request they answer by
request_id, so sync replies, acks and deliveries interleave freely; all
writes come from one driver coroutine per connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from chatmesh.frames import Encoding, decode_server_frame, encode_client_frame
from chatmesh.v1 import client_pb2, common_pb2
from gateway.connection import CLOSE_SUPERSEDED
from tests.e2e.checker import DeviceSnapshot, ViewEntry

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # TCP + WebSocket upgrade through the edge
HELLO_TIMEOUT_S = 5.0  # the gateway registers the session before it greets
CLOSE_TIMEOUT_S = 1.0  # a test device does not wait long for a closing handshake
RECONNECT_BACKOFF_S = (0.1, 0.5)  # jittered, so devices cut at once do not return at once
ACK_TIMEOUT_S = 3.0  # a send usually acks in milliseconds; seconds mean it was lost
UNAVAILABLE_RETRY_S = (0.2, 0.5)  # "resend later": a short, jittered pause
REQUEST_TIMEOUT_S = 5.0  # a sync reply this late is treated as lost
SYNC_RETRY_S = (0.2, 0.5)
SYNC_PAGE_SIZE = 50  # the protocol's maximum
MARK_INTERVAL_S = 1.0  # at most one delivered receipt per conversation per second
IDLE_TICK_S = 0.1  # how often timers are looked at when nothing happens

Frame = client_pb2.ServerFrame


class _Disconnected(Exception):
    """The connection closed; the device reconnects."""


class _NoHello(Exception):
    """The connection closed, or said something else, before ``hello``."""


class _SyncUnavailable(Exception):
    """A sync frame failed with UNAVAILABLE or went unanswered: retry the sync."""


class _SyncRejected(Exception):
    """A sync frame failed for good: recorded as a failure."""


@dataclass(slots=True)
class OutboxEntry:
    """A send not yet acknowledged."""

    client_msg_id: str
    to_user_id: str | None
    conversation_id: str | None
    body: bytes
    due_at: float = 0.0  # loop time of the next (re)transmission


@dataclass(slots=True)
class DeviceStats:
    connects: int = 0
    connect_failures: int = 0  # refused, timed out, closed before hello
    disconnects: int = 0  # connections lost after hello
    sends: int = 0  # messages put in the outbox
    transmissions: int = 0  # send frames written: first tries and resends
    acks: int = 0  # ack frames, repeats included
    unavailable: Counter[str] = field(default_factory=Counter)  # UNAVAILABLE reasons on sends
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

    def brief(self) -> str:
        return (
            f"connects={self.connects} connect_failures={self.connect_failures}"
            f" disconnects={self.disconnects} sends={self.sends}"
            f" transmissions={self.transmissions} acks={self.acks}"
            f" received={dict(self.received)} dup={self.duplicates_filtered}"
            f" syncs={self.syncs} sync_retries={self.sync_retries}"
            f" sync_required={dict(self.sync_required)} unavailable={dict(self.unavailable)}"
            f" unmatched_errors={dict(self.unmatched_errors)}"
            f" marks={self.marks_sent}/{self.marks_answered} receipt_events={self.receipt_events}"
            f" gateways={dict(self.gateways)}"
        )


class _Connection:
    """One WebSocket session: a reader task, and replies matched to requests.

    Replies whose request_id is awaited by ``request`` resolve it; every
    other frame goes to ``dispatch``. When the socket closes, waiting
    requests fail with ``_Disconnected`` and ``closed_event`` is set.
    """

    def __init__(
        self,
        ws: ClientConnection,
        dispatch: Callable[[Frame], None],
        closed_event: asyncio.Event,
        name: str,
    ) -> None:
        self._ws = ws
        self._dispatch = dispatch
        self._closed_event = closed_event
        self._name = name
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.gateway_id = ""  # from hello

    async def hello(self) -> client_pb2.HelloFrame:
        try:
            frame = decode_server_frame(await asyncio.wait_for(self._ws.recv(), HELLO_TIMEOUT_S))
        except ConnectionClosed as exc:
            raise _NoHello(f"closed before hello: {exc}") from exc
        if frame.WhichOneof("kind") != "hello":
            raise _NoHello(f"first frame is not hello: {frame.WhichOneof('kind')}")
        self.gateway_id = frame.hello.gateway_id
        return frame.hello

    def start_reading(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"device-reader:{self._name}"
        )

    @property
    def closed(self) -> bool:
        return self._reader is not None and self._reader.done()

    async def send(self, frame: client_pb2.ClientFrame) -> None:
        if self.closed:
            raise _Disconnected("connection closed")
        try:
            await self._ws.send(encode_client_frame(frame, Encoding.JSON))
        except ConnectionClosed as exc:
            raise _Disconnected(str(exc)) from exc

    async def request(self, frame: client_pb2.ClientFrame) -> Frame:
        """Sends a frame and returns the reply carrying its request_id (which
        may be an error frame). Raises ``TimeoutError`` or ``_Disconnected``."""
        reply: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[frame.request_id] = reply
        try:
            await self.send(frame)
            return await asyncio.wait_for(reply, REQUEST_TIMEOUT_S)
        finally:
            self._pending.pop(frame.request_id, None)

    async def close(self) -> None:
        """Closes the socket and stops the reader; re-raises what broke the
        reader (an undecodable frame, a bug in ``dispatch``), if anything."""
        await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            (outcome,) = await asyncio.gather(self._reader, return_exceptions=True)
            if isinstance(outcome, Exception):
                raise outcome

    async def _read_loop(self) -> None:
        try:
            async for data in self._ws:
                frame = decode_server_frame(data)
                reply = self._pending.get(_request_id_of(frame))
                if reply is not None and not reply.done():
                    reply.set_result(frame)
                else:
                    self._dispatch(frame)
        except ConnectionClosed:
            pass
        finally:
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(_Disconnected("connection closed"))
            self._closed_event.set()


class SimulatedDevice:
    """One device of one user, following the client contract of this module.

    ``start`` launches a supervised run loop that keeps the device connected
    to ``url`` (with a token from ``token_factory`` per attempt) until
    ``stop``. ``send`` may be called at any time. ``sync=False`` turns
    catching up off (only to debug the rest against a server without sync:
    messages whose live delivery died are then missing). ``mark_delivered``
    reports delivered receipts for what the device holds. ``client_msg_ids``
    makes the ids of new sends (random UUIDs by default); apps that number
    their sends per device (``m1``, ``m2``...) are simulated by a counter.
    """

    def __init__(
        self,
        user_id: str,
        device_id: str,
        *,
        url: str,
        token_factory: Callable[[], str],
        sync: bool = True,
        mark_delivered: bool = False,
        rng: random.Random | None = None,
        client_msg_ids: Callable[[], str] | None = None,
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self._url = url
        self._token_factory = token_factory
        self._sync_enabled = sync
        self._mark_delivered = mark_delivered
        self._rng = rng or random.Random()
        self._new_client_msg_id = client_msg_ids or (lambda: uuid.uuid4().hex)
        self._run_task: asyncio.Task[None] | None = None
        self._conn: _Connection | None = None  # set once caught up
        self._wake = asyncio.Event()
        self._request_seq = 0
        # Outbox, in send order; entries leave on ack or a permanent error.
        self._outbox: dict[str, OutboxEntry] = {}
        self.acked: dict[str, tuple[str, int]] = {}
        self.failures: list[str] = []
        self.superseded = False  # closed with 4001: another connection is this device now
        self.anomalies: list[str] = []
        self.stats = DeviceStats()
        # Local store: conversation -> message_id -> entry, and the id each send got.
        self._messages: dict[str, dict[int, ViewEntry]] = {}
        self._id_of_send: dict[tuple[str, str, str], int] = {}
        # Sync state: the cursor, and generations of sync requests (resync,
        # sync_required) so a waiter is released only by a sync begun after it asked.
        self._cursor = ""
        self._sync_requested = 0
        self._sync_covered = 0
        self._sync_waiters: list[tuple[int, asyncio.Future[bool]]] = []
        # Delivered receipts: highest id reported per conversation, when, and in flight.
        self._marked: dict[str, int] = {}
        self._marked_at: dict[str, float] = {}
        self._mark_requests: dict[str, tuple[str, int]] = {}

    @property
    def name(self) -> str:
        return f"{self.user_id}/{self.device_id}"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self._run_task = asyncio.get_running_loop().create_task(
            self._run(), name=f"device:{self.name}"
        )

    async def stop(self) -> None:
        """Disconnects and stops; the outbox and the local store are kept."""
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
            self._run_task = None
        for _, waiter in self._sync_waiters:
            if not waiter.done():
                waiter.set_result(False)
        self._sync_waiters.clear()

    # -- what the app does -----------------------------------------------------

    def send(
        self, *, to_user: str | None = None, conversation: str | None = None, body: str
    ) -> str:
        """Queues a text message in the outbox and returns its client_msg_id.
        It is transmitted at once if connected, else after the next catch-up."""
        if (to_user is None) == (conversation is None):
            raise ValueError("name exactly one of to_user, conversation")
        client_msg_id = self._new_client_msg_id()
        if client_msg_id in self._outbox or client_msg_id in self.acked:
            raise ValueError(f"client_msg_id {client_msg_id!r} already used by this device")
        self._outbox[client_msg_id] = OutboxEntry(
            client_msg_id, to_user, conversation, body.encode()
        )
        self.stats.sends += 1
        self._wake.set()
        return client_msg_id

    async def resync(self) -> bool:
        """Runs a full sync (begun after this call) and returns True once it
        completed; False if sync is off, was refused, or the device stopped."""
        if not self._sync_enabled:
            return False
        generation = self._request_sync()
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append((generation, waiter))
        return await waiter

    # -- accessors -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected and caught up."""
        return self._conn is not None and not self._conn.closed

    @property
    def gateway_id(self) -> str | None:
        """The gateway holding the current connection, if connected."""
        conn = self._conn
        return conn.gateway_id if conn is not None and not conn.closed else None

    @property
    def outbox_empty(self) -> bool:
        return not self._outbox

    def conversation_ids(self) -> list[str]:
        return sorted(self._messages)

    def conversation_view(self, conversation_id: str) -> list[ViewEntry]:
        """The conversation as displayed: message_id order, each send once."""
        return sorted(self._messages.get(conversation_id, {}).values())

    def snapshot(self) -> DeviceSnapshot:
        return DeviceSnapshot(
            user_id=self.user_id,
            device_id=self.device_id,
            views={c: tuple(self.conversation_view(c)) for c in self._messages},
            acked=dict(self.acked),
            unacked=tuple(self._outbox),
            failures=tuple(self.failures),
            anomalies=tuple(self.anomalies),
            received=sum(self.stats.received.values()),
            duplicates_filtered=self.stats.duplicates_filtered,
        )

    # -- the supervised run loop -------------------------------------------------

    async def _run(self) -> None:
        while not self.superseded:
            try:
                await self._session()
            except _Disconnected:
                log.debug("device disconnected", extra={"fields": {"device": self.name}})
                self.stats.disconnects += 1
            except (_NoHello, OSError, TimeoutError, WebSocketException) as exc:
                self.stats.connect_failures += 1
                log.debug(
                    "device connect failed",
                    extra={"fields": {"device": self.name, "error": repr(exc)}},
                )
            except Exception as exc:  # a bug in this module: surface it, keep going
                log.exception("device session failed", extra={"fields": {"device": self.name}})
                self.failures.append(f"device error: {exc!r}")
            await asyncio.sleep(self._rng.uniform(*RECONNECT_BACKOFF_S))

    async def _session(self) -> None:
        ws = await connect(
            self._url,
            additional_headers={"Authorization": f"Bearer {self._token_factory()}"},
            open_timeout=CONNECT_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
        )
        conn = _Connection(ws, self._on_frame, self._wake, self.name)
        try:
            hello = await conn.hello()
            self.stats.connects += 1
            self.stats.gateways[hello.gateway_id] += 1
            conn.start_reading()
            self._marked.clear()  # receipts in flight died with the last connection
            self._mark_requests.clear()
            if self._sync_enabled:
                await self._catch_up(conn)
            for entry in self._outbox.values():
                entry.due_at = 0.0  # resend everything unacknowledged
            self._conn = conn
            await self._live(conn)
        finally:
            self._conn = None
            await conn.close()
            self.superseded = ws.close_code == CLOSE_SUPERSEDED

    async def _live(self, conn: _Connection) -> None:
        while True:
            if conn.closed:
                raise _Disconnected("connection closed")
            if self._sync_requested > self._sync_covered:
                await self._catch_up(conn)
            await self._transmit_due(conn)
            if self._mark_delivered:
                await self._mark_progress(conn)
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_TICK_S)
            except TimeoutError:
                pass
            self._wake.clear()

    # -- outbox --------------------------------------------------------------------

    async def _transmit_due(self, conn: _Connection) -> None:
        now = asyncio.get_running_loop().time()
        for entry in list(self._outbox.values()):
            if entry.due_at > now:
                continue
            send = client_pb2.SendFrame(
                client_msg_id=entry.client_msg_id,
                kind=common_pb2.MESSAGE_KIND_TEXT,
                body=entry.body,
            )
            if entry.to_user_id is not None:
                send.to_user_id = entry.to_user_id
            else:
                assert entry.conversation_id is not None
                send.conversation_id = entry.conversation_id
            entry.due_at = now + ACK_TIMEOUT_S  # resent if no ack by then
            self.stats.transmissions += 1
            await conn.send(client_pb2.ClientFrame(request_id=self._next_request_id(), send=send))

    def _on_ack(self, ack: client_pb2.AckFrame) -> None:
        self.stats.acks += 1
        self._outbox.pop(ack.client_msg_id, None)
        earlier = self.acked.get(ack.client_msg_id)
        if earlier is not None and earlier != (ack.conversation_id, ack.message_id):
            self.anomalies.append(
                f"{ack.client_msg_id} acked as {earlier} and as"
                f" {(ack.conversation_id, ack.message_id)}"
            )
            return
        self.acked[ack.client_msg_id] = (ack.conversation_id, ack.message_id)
        self._ingest(
            ack.conversation_id,
            ViewEntry(ack.message_id, self.user_id, self.device_id, ack.client_msg_id),
            "ack",
        )

    def _on_send_error(self, error: client_pb2.ErrorFrame) -> None:
        entry = self._outbox.get(error.client_msg_id)
        if entry is None:
            return  # already acked, or already failed: a late answer to a resend
        if error.code == common_pb2.ERROR_CODE_UNAVAILABLE:
            self.stats.unavailable[error.reason] += 1
            now = asyncio.get_running_loop().time()
            entry.due_at = now + self._rng.uniform(*UNAVAILABLE_RETRY_S)
            return
        del self._outbox[error.client_msg_id]
        self.failures.append(
            f"send {error.client_msg_id} refused: {common_pb2.ErrorCode.Name(error.code)}"
            f" {error.reason} ({error.message})"
        )

    # -- sync ----------------------------------------------------------------------

    def _request_sync(self) -> int:
        self._sync_requested += 1
        self._wake.set()
        return self._sync_requested

    async def _catch_up(self, conn: _Connection) -> None:
        """Syncs until one sync completes (retrying while the server is
        unavailable) or the server refuses it. ``_Disconnected`` propagates."""
        generation = self._sync_requested
        while True:
            try:
                await self._sync_once(conn)
                self.stats.syncs += 1
                self._sync_finished(generation, completed=True)
                return
            except (_SyncUnavailable, TimeoutError):
                self.stats.sync_retries += 1
                await asyncio.sleep(self._rng.uniform(*SYNC_RETRY_S))
            except _SyncRejected as exc:
                self.failures.append(f"sync refused: {exc}")
                self._sync_finished(generation, completed=False)
                return

    def _sync_finished(self, generation: int, *, completed: bool) -> None:
        self._sync_covered = max(self._sync_covered, generation)
        still_waiting = []
        for wanted, waiter in self._sync_waiters:
            if wanted <= generation:
                if not waiter.done():
                    waiter.set_result(completed)
            else:
                still_waiting.append((wanted, waiter))
        self._sync_waiters = still_waiting

    async def _sync_once(self, conn: _Connection) -> None:
        cursor = self._cursor
        reply = await conn.request(
            client_pb2.ClientFrame(
                request_id=self._next_request_id(), sync=client_pb2.SyncFrame(cursor=cursor)
            )
        )
        summary = _expect(reply, "sync_summary").sync_summary
        if summary.gap:
            self.anomalies.append(f"sync from cursor {cursor!r} reported gap=true")
        for conversation in summary.conversations:
            await self._sync_conversation(conn, conversation.conversation_id, cursor)
        self._cursor = summary.next_cursor

    async def _sync_conversation(
        self, conn: _Connection, conversation_id: str, cursor: str
    ) -> None:
        page_token = ""
        while True:
            reply = await conn.request(
                client_pb2.ClientFrame(
                    request_id=self._next_request_id(),
                    sync_conversation=client_pb2.SyncConversationFrame(
                        conversation_id=conversation_id,
                        cursor=cursor,
                        page_token=page_token,
                        page_size=SYNC_PAGE_SIZE,
                    ),
                )
            )
            page = _expect(reply, "sync_page").sync_page
            ids = [m.message_id for m in page.messages]
            if ids != sorted(ids):
                self.anomalies.append(f"sync page of {conversation_id} not in id order: {ids}")
            for message in page.messages:
                self._ingest_message(message, "sync")
            if not page.next_page_token:
                return
            page_token = page.next_page_token

    # -- receipts --------------------------------------------------------------------

    async def _mark_progress(self, conn: _Connection) -> None:
        now = asyncio.get_running_loop().time()
        for conversation_id, messages in self._messages.items():
            highest = max(messages, default=0)
            if highest <= self._marked.get(conversation_id, 0):
                continue
            if now - self._marked_at.get(conversation_id, -MARK_INTERVAL_S) < MARK_INTERVAL_S:
                continue
            request_id = self._next_request_id()
            self._marked[conversation_id] = highest
            self._marked_at[conversation_id] = now
            self._mark_requests[request_id] = (conversation_id, highest)
            self.stats.marks_sent += 1
            await conn.send(
                client_pb2.ClientFrame(
                    request_id=request_id,
                    mark=client_pb2.MarkFrame(
                        conversation_id=conversation_id,
                        kind=common_pb2.RECEIPT_KIND_DELIVERED,
                        message_id=highest,
                    ),
                )
            )

    def _on_mark_error(self, request_id: str, error: client_pb2.ErrorFrame) -> None:
        conversation_id, message_id = self._mark_requests.pop(request_id)
        if error.code == common_pb2.ERROR_CODE_UNAVAILABLE:
            if self._marked.get(conversation_id) == message_id:
                del self._marked[conversation_id]  # report it again later
            return
        self.failures.append(
            f"mark {conversation_id} {message_id} refused:"
            f" {common_pb2.ErrorCode.Name(error.code)} {error.reason}"
        )

    # -- incoming frames ---------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        """Every frame that is not the awaited reply to a sync request."""
        kind = frame.WhichOneof("kind")
        if kind == "ack":
            self._on_ack(frame.ack)
        elif kind == "deliver":
            self._ingest_message(frame.deliver.message, "deliver")
        elif kind == "error":
            self._on_error(frame.error)
        elif kind == "sync_required":
            self.stats.sync_required[frame.sync_required.reason] += 1
            if self._sync_enabled:
                self._request_sync()
        elif kind == "watermark":
            if self._mark_requests.pop(frame.watermark.request_id, None) is not None:
                self.stats.marks_answered += 1
            elif not frame.watermark.request_id:
                self.stats.receipt_events += 1
        elif kind in ("sync_summary", "sync_page"):
            self.stats.late_replies += 1  # its request timed out and was retried

    def _on_error(self, error: client_pb2.ErrorFrame) -> None:
        if error.client_msg_id:
            self._on_send_error(error)
        elif error.request_id in self._mark_requests:
            self._on_mark_error(error.request_id, error)
        else:
            self.stats.unmatched_errors[error.reason] += 1

    # -- the local store ---------------------------------------------------------------

    def _ingest_message(self, message: common_pb2.Message, source: str) -> None:
        self._ingest(
            message.conversation_id,
            ViewEntry(
                message.message_id,
                message.sender_user_id,
                message.sender_device_id,
                message.client_msg_id,
            ),
            source,
        )

    def _ingest(self, conversation_id: str, entry: ViewEntry, source: str) -> None:
        """Adds a message unless held already (by message_id, or by send)."""
        self.stats.received[source] += 1
        send = (entry.sender_user_id, entry.sender_device_id, entry.client_msg_id)
        messages = self._messages.setdefault(conversation_id, {})
        known_id = self._id_of_send.get(send)
        held = messages.get(entry.message_id)
        if known_id is not None and known_id != entry.message_id:
            self.anomalies.append(
                f"send {send} seen as {known_id} and as {entry.message_id} ({source})"
            )
        if held is not None and held != entry:
            self.anomalies.append(f"message {entry.message_id} seen as {held} and as {entry}")
        if known_id is not None or held is not None:
            self.stats.duplicates_filtered += 1
            return
        messages[entry.message_id] = entry
        self._id_of_send[send] = entry.message_id
        self.stats.unique += 1

    def _next_request_id(self) -> str:
        self._request_seq += 1
        return f"{self.device_id}-{self._request_seq}"


def _request_id_of(frame: Frame) -> str:
    """The request_id a reply carries ('' for events and unanswerable frames)."""
    kind = frame.WhichOneof("kind")
    if kind in ("sync_summary", "sync_page", "error", "watermark"):
        return str(getattr(frame, kind).request_id)
    return ""


def _expect(reply: Frame, kind: str) -> Frame:
    """The reply if it is of ``kind``; raises the sync error it carries otherwise."""
    got = reply.WhichOneof("kind")
    if got == kind:
        return reply
    if got == "error":
        error = reply.error
        description = f"{common_pb2.ErrorCode.Name(error.code)} {error.reason} ({error.message})"
        if error.code == common_pb2.ERROR_CODE_UNAVAILABLE:
            raise _SyncUnavailable(description)
        raise _SyncRejected(description)
    raise _SyncRejected(f"expected {kind}, got {got}")
