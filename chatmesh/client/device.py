"""A device that stays connected: ``ClientProtocol`` over reconnecting WebSockets.

``start`` launches one supervised task that connects to ``url`` (a fresh
token from ``token_factory`` per attempt; a ``wss://`` edge verified by
``tls`` if given), runs the protocol until the connection closes, waits a
small jittered backoff and connects again, until ``stop``. A close with
code 4001 (another connection of this device took over) ends it instead:
reconnecting would only evict that one in turn.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chatmesh.client.connection import Connection, NoHello, closed_error
from chatmesh.client.protocol import ClientOptions, ClientProtocol, Event, SyncFinished
from chatmesh.frames import CLOSE_DEVICE_REVOKED, CLOSE_SUPERSEDED, Encoding
from chatmesh.v1 import client_pb2, common_pb2

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_S = (0.1, 0.5)  # jittered, so devices cut at once do not return at once
# After failed attempts in a row the ceiling doubles (full jitter) up to this:
# thousands of devices whose gateway died must not retry twice a second each
# while the survivors are busy taking the first of them.
RECONNECT_BACKOFF_MAX_S = 30.0


def reconnect_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait before the next attempt, after ``failures`` failed
    attempts in a row (0: the connection was lost after its hello)."""
    low, high = RECONNECT_BACKOFF_S
    return rng.uniform(low, min(RECONNECT_BACKOFF_MAX_S, high * 2**failures))


def retry_after_s(header: str | None) -> float:
    """A ``Retry-After`` of seconds, capped at the longest backoff; 0 when
    absent or given as a date."""
    try:
        seconds = float(header) if header else 0.0
    except ValueError:
        return 0.0
    if not math.isfinite(seconds):
        return 0.0
    return min(max(seconds, 0.0), RECONNECT_BACKOFF_MAX_S)


def connect_failure_kind(exc: BaseException) -> str:
    """What a failed connection attempt ran into, in a few words."""
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, NoHello):
        return f"closed {exc.close_code} before hello" if exc.close_code else "no hello"
    if isinstance(exc, TimeoutError):
        return "open timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError):
        return "network error"
    return type(exc).__name__


# The longest the driver sleeps without looking at its timers. Frames, sends
# and the connection's close wake it at once, and the protocol names its own
# timers (``next_wakeup``): this is only a safety net, long enough that ten
# thousand idle devices in one process do not each wake ten times a second.
IDLE_TICK_S = 5.0


class Device:
    def __init__(
        self,
        user_id: str,
        device_id: str,
        *,
        url: str,
        token_factory: Callable[[], str],
        options: ClientOptions | None = None,
        rng: random.Random | None = None,
        client_msg_ids: Callable[[], str] | None = None,
        encoding: Encoding = Encoding.JSON,
        on_event: Callable[[Event], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._rng = rng or random.Random()
        self.protocol = ClientProtocol(
            user_id, device_id, options=options, rng=self._rng, client_msg_ids=client_msg_ids
        )
        self._url = url
        self._tls = tls
        self._token_factory = token_factory
        self._encoding = encoding
        self._on_event = on_event
        self._wake = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._conn: Connection | None = None
        self._sync_waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self.superseded = False  # closed with 4001: another connection is this device now
        self.revoked = False  # closed with 4003, or refused with 403: the device was removed
        self.connect_failures = 0  # refused, timed out, closed before hello
        # The same attempts by what went wrong ("http 503", "open timeout", ...).
        self.connect_failure_kinds: Counter[str] = Counter()
        self.disconnects = 0  # connections lost after hello
        self.errors: list[str] = []  # bugs surfaced by the run loop

    @property
    def user_id(self) -> str:
        return self.protocol.user_id

    @property
    def device_id(self) -> str:
        return self.protocol.device_id

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

    @property
    def connected(self) -> bool:
        """Connected and caught up."""
        return self._conn is not None and not self._conn.closed and self.protocol.caught_up

    @property
    def gateway_id(self) -> str | None:
        conn = self._conn
        return conn.hello.gateway_id if conn is not None and not conn.closed else None

    @property
    def outbox_empty(self) -> bool:
        return not self.protocol.outbox

    # -- what the app does -------------------------------------------------------

    def send_text(
        self, *, to_user: str | None = None, conversation: str | None = None, body: str
    ) -> str:
        """Queues a text message; returns its client_msg_id. It is transmitted
        at once if connected, else after the next catch-up."""
        client_msg_id = self.protocol.send(
            to_user=to_user,
            conversation=conversation,
            body=body.encode(),
            kind=common_pb2.MESSAGE_KIND_TEXT,
        )
        self._wake.set()
        return client_msg_id

    def send_media(
        self,
        media: common_pb2.MediaAttachment,
        *,
        kind: int,
        to_user: str | None = None,
        conversation: str | None = None,
        caption: str = "",
    ) -> str:
        """Queues a media message for a completed upload (``upload_media``);
        returns its client_msg_id. Resent like any message until acked."""
        client_msg_id = self.protocol.send(
            to_user=to_user,
            conversation=conversation,
            body=caption.encode(),
            kind=kind,
            media=media,
        )
        self._wake.set()
        return client_msg_id

    async def resync(self) -> bool:
        """Runs a full sync (begun after this call) and returns True once it
        completed; False if sync is off, was refused, or the device stopped."""
        if not self.protocol.options.sync:
            return False
        generation = self.protocol.request_sync()
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append((generation, waiter))
        self._wake.set()
        return await waiter

    async def request(
        self, frame: client_pb2.ClientFrame, timeout_s: float = 10.0
    ) -> client_pb2.ServerFrame:
        """A request of the app's own (history, a read receipt...) on the
        current connection; raises ``ConnectionError`` when not connected."""
        conn = self._conn
        if conn is None or conn.closed:
            raise ConnectionError(f"{self.name} is not connected")
        return await conn.request(frame, timeout_s)

    async def post(self, frame: client_pb2.ClientFrame) -> bool:
        """Writes a frame nothing answers (typing) on the current connection;
        False, and nothing written, when not connected: such frames are not
        worth keeping for the next connection."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        await conn.send(frame)
        return True

    # -- the supervised run loop -------------------------------------------------

    async def _run(self) -> None:
        failures = 0  # attempts in a row that never got a hello
        while not (self.superseded or self.revoked):
            failures += 1
            told_to_wait_s = 0.0
            try:
                await self._session()
            except ConnectionClosed:
                self.disconnects += 1
                failures = 0
            except InvalidStatus as exc:
                self._connect_failed(exc)
                # 403: this device was removed; its tokens will never work again.
                self.revoked = exc.response.status_code == HTTPStatus.FORBIDDEN
                told_to_wait_s = retry_after_s(exc.response.headers.get("Retry-After"))
            except (NoHello, OSError, TimeoutError, WebSocketException) as exc:
                self._connect_failed(exc)
                log.debug(
                    "device connect failed",
                    extra={"fields": {"device": self.name, "error": repr(exc)}},
                )
            except Exception as exc:  # a bug: surface it, keep going
                log.exception("device session failed", extra={"fields": {"device": self.name}})
                self.errors.append(f"device error: {exc!r}")
            # A busy gateway's Retry-After is a floor, spread a little so that
            # the devices it turned away together do not return together.
            await asyncio.sleep(
                max(
                    reconnect_delay(failures, self._rng),
                    told_to_wait_s * self._rng.uniform(1.0, 1.5),
                )
            )

    def _connect_failed(self, exc: BaseException) -> None:
        self.connect_failures += 1
        self.connect_failure_kinds[connect_failure_kind(exc)] += 1

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()

        def dispatch(frame: client_pb2.ServerFrame) -> None:
            self.protocol.receive(frame, loop.time())
            self._wake.set()

        conn = await Connection.open(
            self._url,
            self._token_factory(),
            encoding=self._encoding,
            dispatch=dispatch,
            tls=self._tls,
        )
        self._conn = conn
        conn.when_closed(self._wake.set)
        try:
            self.protocol.connected(conn.hello)
            while not conn.closed:
                for frame in self.protocol.frames_to_send(loop.time()):
                    await conn.send(frame)
                self._deliver_events()
                await self._sleep_until(self.protocol.next_wakeup())
            raise closed_error(conn.ws)
        finally:
            self._conn = None
            self.protocol.disconnected()
            await conn.close()
            self.superseded = conn.close_code == CLOSE_SUPERSEDED
            self.revoked = conn.close_code == CLOSE_DEVICE_REVOKED
            self._deliver_events()

    async def _sleep_until(self, wakeup: float | None) -> None:
        loop = asyncio.get_running_loop()
        timeout = IDLE_TICK_S if wakeup is None else min(IDLE_TICK_S, wakeup - loop.time())
        if timeout > 0:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        self._wake.clear()

    def _deliver_events(self) -> None:
        for event in self.protocol.events():
            if isinstance(event, SyncFinished):
                self._release_sync_waiters(event)
            if self._on_event is not None:
                self._on_event(event)

    def _release_sync_waiters(self, finished: SyncFinished) -> None:
        still_waiting = []
        for wanted, waiter in self._sync_waiters:
            if wanted <= finished.generation:
                if not waiter.done():
                    waiter.set_result(finished.outcome.completed)
            else:
                still_waiting.append((wanted, waiter))
        self._sync_waiters = still_waiting
