"""Running a local provider on a real socket, in-process or from the CLI."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import TracebackType

from hypercorn.asyncio import serve
from hypercorn.config import Config

from notifysvc.providers.local.asgi import Handler, asgi_app
from notifysvc.providers.local.faults import Faults

# Hung requests are released at stop; nothing else is long enough to wait for.
GRACEFUL_TIMEOUT_S = 1.0


class LocalServer:
    """Serves ``handler`` on 127.0.0.1:``port`` (0: any free port); over TLS
    with HTTP/2 only when ``tls_dir`` (``tls.crt``/``tls.key``) is given,
    as APNs requires."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        faults: Faults,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        tls_dir: Path | None = None,
    ) -> None:
        self._name = name
        self._handler = handler
        self._faults = faults
        self._host = host
        self._requested_port = port
        self._tls_dir = tls_dir
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls_dir else "http"
        return f"{scheme}://{self._host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self.port = sock.getsockname()[1]
        # Listening now: a client may connect before the server task first runs.
        sock.listen(128)
        config = Config()
        # Hypercorn takes the bound socket over, so the port is known before
        # it starts and no other process can take it in between.
        config.bind = [f"fd://{sock.detach()}"]
        config.graceful_timeout = GRACEFUL_TIMEOUT_S
        # The providers keep a connection for as long as the sender wants;
        # Hypercorn would drop it, streams in flight, after 1000 requests.
        config.keep_alive_max_requests = 2**31
        config.accesslog = None
        if self._tls_dir is not None:
            config.certfile = str(self._tls_dir / "tls.crt")
            config.keyfile = str(self._tls_dir / "tls.key")
            config.alpn_protocols = ["h2"]
        app = asgi_app(self._handler)
        self._task = asyncio.create_task(
            serve(app, config, shutdown_trigger=self._stop.wait),  # type: ignore[arg-type]
            name=f"local-{self._name}",
        )

    async def stop(self) -> None:
        self._faults.release()
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
