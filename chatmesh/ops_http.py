"""The operations endpoint every process serves on ``CHATMESH_OPS_LISTEN``.

Plain HTTP/1.1, GET only, one request per connection: ``/healthz`` (the
process runs: liveness), ``/readyz`` (its dependencies answer: readiness,
503 with the failing ones otherwise) and ``/metrics`` (Prometheus text). It
carries no user data, so it needs no TLS; NetworkPolicies keep it to the
monitoring namespace.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from chatmesh.readiness import Readiness

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 5.0


class OpsServer:
    def __init__(
        self, listen: str, readiness: Readiness, registry: CollectorRegistry = REGISTRY
    ) -> None:
        self._listen = listen
        self._readiness = readiness
        self._registry = registry
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        host, _, port = self._listen.rpartition(":")
        self._server = await asyncio.start_server(
            self._serve, host.strip("[]") or "0.0.0.0", int(port)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "ops endpoint serving", extra={"fields": {"listen": self._listen, "port": self.port}}
        )
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            method, path = _request_line(head)
            if method != "GET":
                status, content_type, body = 405, "text/plain", b"GET only\n"
            else:
                status, content_type, body = self._route(path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _route(self, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            if self._readiness.ready:
                return 200, "text/plain", b"ready\n"
            failing = ", ".join(self._readiness.failing)
            return 503, "text/plain", f"not ready: {failing}\n".encode()
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        return 404, "text/plain", b"not found\n"


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        return "", ""
    return parts[0], parts[1]


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
