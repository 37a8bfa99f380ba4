"""A TCP forwarder to a real server that a test can switch off and on.

Down, it listens on nothing (connections are refused) and cuts every
forwarded connection; up, it forwards to the real server again on the same
port. Services pointed at it see their store go away and come back without
the store itself being disturbed for anyone else.

With ``server_tls`` it terminates TLS: clients must complete a handshake
with its certificate (and present one of theirs, if the context requires
it) before a byte reaches the server, which it speaks to in plaintext. The
certificates clients presented are kept in ``client_certificates``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from concurrent.futures import Future
from typing import Any

from chatmesh.devcluster import free_port


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        port: int | None = None,
        *,
        server_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._target = (target_host, target_port)
        self.port = port or free_port()
        self._server_tls = server_tls
        self.client_certificates: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._forwarding: set[asyncio.Task[None]] = set()

    def _run(self, coro: object) -> object:
        future: Future[object] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(10)

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is None:
            self._run(self._start())

    def stop(self) -> None:
        if self._server is not None:
            self._run(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True, ssl=self._server_tls
        )

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        # Cut connections unwind in a few loop turns; a loop stopped before
        # then would leave their tasks pending.
        if self._forwarding:
            await asyncio.wait(self._forwarding, timeout=5)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if peer := writer.get_extra_info("peercert"):
            self.client_certificates.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._writers -= {writer, upstream_writer}
            for w in (writer, upstream_writer):
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()
