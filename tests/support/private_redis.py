"""A private ``redis-server`` that speaks only TLS and knows one ACL user.

Debian's redis-server is built with TLS, so the server itself terminates
it: no plaintext port (``--port 0``), client certificates required, the
``default`` user off, so every connection must authenticate as ``user``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.store_pki import StorePki
from tests.support.tcp_proxy import free_port

STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class PrivateRedis:
    port: int
    user: str
    password: str

    def url(self, *, password: str | None = None, scheme: str = "rediss") -> str:
        return f"{scheme}://{self.user}:{password or self.password}@127.0.0.1:{self.port}/0"


@contextmanager
def tls_redis(pki: StorePki, workdir: Path, *, user: str, password: str) -> Iterator[PrivateRedis]:
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found; deploy/local/backing.sh up installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "redis.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                server,
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                str(pki.server.cert_file),
                "--tls-key-file",
                str(pki.server.key_file),
                "--tls-ca-cert-file",
                str(pki.ca_file),
                "--tls-auth-clients",
                "yes",
                # One token per argument: redis-server joins them into config lines.
                "--user",
                "default",
                "off",
                "--user",
                user,
                "on",
                f">{password}",
                "~*",
                "&*",
                "+@all",
                "--dir",
                str(workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, log_path)
        yield PrivateRedis(port=port, user=user, password=password)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{log_path.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"redis-server not listening on {port}")
