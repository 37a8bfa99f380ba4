"""One WebSocket to a chatmesh edge, with replies matched to their requests.

``Connection.open`` connects with a token and waits for ``hello``, over TLS
for a ``wss://`` URL (verified by the system's CAs, or by the CA file or
``ssl.SSLContext`` given as ``tls``; ``tls_context`` builds one). A reader
task decodes every frame: a reply whose request_id a pending ``request`` is
waiting for resolves it; every other frame goes to ``dispatch`` if one was
given, else to a queue read by ``recv``. Once the socket closes, pending
requests and ``recv`` raise ``ConnectionClosed``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import ssl
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from chatmesh.frames import Encoding, decode_server_frame, encode_client_frame, request_id_of
from chatmesh.v1 import client_pb2, common_pb2
from chatmesh.ws_close import close_within

OPEN_TIMEOUT_S = 15.0  # TCP + WebSocket upgrade, through an edge that may be busy
HELLO_TIMEOUT_S = 10.0  # the gateway registers the session before it greets
CLOSE_TIMEOUT_S = 1.0
REQUEST_TIMEOUT_S = 10.0

Frame = client_pb2.ServerFrame
# How a wss:// connection verifies the edge: a context, or a CA file to trust.
Tls = ssl.SSLContext | str | os.PathLike[str]


def tls_context(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """Verifies the server's certificate and name by ``ca_file`` alone, not
    the system's CAs: a local edge is trusted by its own CA and nothing else."""
    context = ssl.create_default_context(cafile=os.fspath(ca_file))
    # TLS 1.0 and 1.1 are deprecated (RFC 8996); the edge refuses them too.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # A WebSocket upgrade is an HTTP/1.1 request, whatever else the server speaks.
    context.set_alpn_protocols(["http/1.1"])
    return context


class NoHello(Exception):
    """The connection closed, or said something else, before ``hello``."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        # The server's close code, if it closed (1013: sessions unavailable, retry).
        self.close_code = close_code


class Connection:
    def __init__(
        self,
        ws: ClientConnection,
        hello: client_pb2.HelloFrame,
        encoding: Encoding,
        dispatch: Callable[[Frame], None] | None,
    ) -> None:
        self.ws = ws
        self.hello = hello
        self.encoding = encoding
        self._dispatch = dispatch
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._unmatched: asyncio.Queue[Frame | ConnectionClosed] = asyncio.Queue()
        self._request_ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:6]
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"client-reader:{hello.connection_id}"
        )

    @classmethod
    async def open(
        cls,
        url: str,
        token: str,
        *,
        encoding: Encoding = Encoding.JSON,
        dispatch: Callable[[Frame], None] | None = None,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        tls: Tls | None = None,
        token_in_query: bool = False,
    ) -> Connection:
        """Connects (the token in the Authorization header, or in the
        ``access_token`` query parameter as browsers must send it; ``encoding``
        picks the encoding of the server's frames from the first one) and
        returns once greeted. ``tls`` is for ``wss://`` URLs only; a
        ``ws://`` URL with ``tls`` raises ``ValueError``."""
        params = {"encoding": "binary"} if encoding is Encoding.BINARY else {}
        headers = {"Authorization": f"Bearer {token}"}
        if token_in_query:
            params["access_token"] = token
            headers = {}
        query = f"?{urlencode(params)}" if params else ""
        options: dict[str, Any] = {}
        if tls is not None:
            options["ssl"] = tls if isinstance(tls, ssl.SSLContext) else tls_context(tls)
        ws = await connect(
            f"{url}{query}",
            additional_headers=headers,
            open_timeout=open_timeout_s,
            close_timeout=close_timeout_s,
            max_queue=None,  # the reader drains at once; the queue is ours
            **options,
        )
        try:
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
        except TimeoutError as exc:
            await _close(ws)
            raise NoHello(f"no hello within {HELLO_TIMEOUT_S:g} s") from exc
        except ConnectionClosed as exc:
            await _close(ws)
            code = exc.rcvd.code if exc.rcvd is not None else None
            raise NoHello(f"closed before hello: {exc}", code) from exc
        except BaseException:
            await _close(ws)
            raise
        if frame.WhichOneof("kind") != "hello":
            await _close(ws)
            raise NoHello(f"first frame is not hello: {frame.WhichOneof('kind')}")
        return cls(ws, frame.hello, encoding, dispatch)

    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def send(self, frame: client_pb2.ClientFrame) -> None:
        await self.ws.send(encode_client_frame(frame, self.encoding))

    async def send_raw(self, data: str | bytes) -> None:
        """Writes a frame as given: JSON text, protobuf bytes, or anything else."""
        await self.ws.send(data)

    async def send_text(
        self,
        *,
        to_user: str | None = None,
        conversation: str | None = None,
        body: str = "hello",
        client_msg_id: str | None = None,
    ) -> str:
        """Sends a text message without waiting for its ack; returns its
        client_msg_id (a fresh one unless given)."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send(text_send(client_msg_id, to_user, conversation, body))
        return client_msg_id

    async def request(
        self, frame: client_pb2.ClientFrame, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> Frame:
        """Sends ``frame`` (given a request_id unless it has one) and returns
        the reply carrying that request_id: its answer or an error frame."""
        if not frame.request_id:
            frame.request_id = f"{self._prefix}-{next(self._request_ids)}"
        if self.closed:
            raise closed_error(self.ws)
        reply: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[frame.request_id] = reply
        try:
            await self.send(frame)
            return await asyncio.wait_for(reply, timeout_s)
        finally:
            self._pending.pop(frame.request_id, None)

    async def recv(self, timeout_s: float = REQUEST_TIMEOUT_S) -> Frame:
        """The next frame no request was waiting for."""
        item = await asyncio.wait_for(self._unmatched.get(), timeout_s)
        if isinstance(item, ConnectionClosed):
            self._unmatched.put_nowait(item)  # every later recv raises too
            raise item
        return item

    async def recv_kind(self, kind: str, timeout_s: float = REQUEST_TIMEOUT_S) -> Frame:
        """The next unmatched frame of ``kind``; frames of other kinds are dropped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(remaining, 0.001))
            if frame.WhichOneof("kind") == kind:
                return frame

    async def close(self) -> None:
        """Closes the socket and stops the reader; re-raises what broke the
        reader (an undecodable frame, a bug in ``dispatch``), if anything."""
        await _close(self.ws)
        self._reader.cancel()
        (outcome,) = await asyncio.gather(self._reader, return_exceptions=True)
        if isinstance(outcome, Exception) and not isinstance(outcome, ConnectionClosed):
            raise outcome

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once the connection has closed (soon, if it has)."""
        self._reader.add_done_callback(lambda _: callback())

    async def wait_closed(self) -> None:
        await asyncio.shield(self._reader)

    async def _read_loop(self) -> None:
        closed: ConnectionClosed | None = None
        try:
            async for data in self.ws:
                frame = decode_server_frame(data)
                reply = self._pending.get(request_id_of(frame))
                if reply is not None and not reply.done():
                    reply.set_result(frame)
                elif self._dispatch is not None:
                    self._dispatch(frame)
                else:
                    self._unmatched.put_nowait(frame)
        except ConnectionClosed as exc:
            closed = exc
        finally:
            closed = closed or closed_error(self.ws)
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(closed)
            self._unmatched.put_nowait(closed)


def closed_error(ws: ClientConnection) -> ConnectionClosed:
    """The exception a closed socket raises, for code that noticed the close
    itself; a generic one while the closing handshake is still under way."""
    if ws.protocol.state is State.CLOSED:
        return ws.protocol.close_exc
    return ConnectionClosed(None, None)


def text_send(
    client_msg_id: str, to_user: str | None, conversation: str | None, body: str
) -> client_pb2.ClientFrame:
    """A send frame for a text message to a user or a conversation."""
    if (to_user is None) == (conversation is None):
        raise ValueError("name exactly one of to_user, conversation")
    send = client_pb2.SendFrame(
        client_msg_id=client_msg_id, kind=common_pb2.MESSAGE_KIND_TEXT, body=body.encode()
    )
    if to_user is not None:
        send.to_user_id = to_user
    else:
        assert conversation is not None
        send.conversation_id = conversation
    return client_pb2.ClientFrame(request_id=f"r-{client_msg_id}", send=send)


async def _close(ws: ClientConnection) -> None:
    # Twice the close timeout: once to write the close frame, once to wait
    # for the answer; a server that reads nothing cannot hold us longer.
    await close_within(ws, 1000, "", timeout_s=2 * (ws.close_timeout or CLOSE_TIMEOUT_S))
