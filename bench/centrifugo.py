"""Centrifugo v6, the peer bench/peers.py measures beside chatmesh.

Run as a process on a free loopback port, configured as Centrifugo is
usually measured against chat loads: the memory engine (or Redis), a
``chat`` namespace whose subscribers may publish, HS256 connection tokens. Install it with
``deploy/local/tools.sh centrifugo``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from bench.dialects import PairSpec
from chatmesh.devcluster import REPO_ROOT, free_port

BINARY = REPO_ROOT / ".local" / "bin" / "centrifugo"
# Loopback only, a throwaway server; 32 bytes, as RFC 7518 asks of an HS256 key.
HMAC_SECRET = "peers-bench-local-secret-32-bytes"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
TOKEN_TTL_S = 3600


def config(port: int, redis_url: str | None, redis_prefix: str) -> dict[str, Any]:
    engine: dict[str, Any] = {"type": "memory"}
    if redis_url is not None:
        engine = {"type": "redis", "redis": {"address": [redis_url], "prefix": redis_prefix}}
    return {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "usage_stats": {"disabled": True},
        "engine": engine,
        "client": {
            "allowed_origins": ["http://127.0.0.1"],
            "token": {"hmac_secret_key": HMAC_SECRET},
        },
        "channel": {
            "namespaces": [
                {
                    "name": "chat",
                    "history_size": 100,
                    "history_ttl": "300s",
                    "force_recovery": True,
                    "allow_subscribe_for_client": True,
                    "allow_publish_for_subscriber": True,
                }
            ]
        },
    }


@dataclass(frozen=True, slots=True)
class Centrifugo:
    process: subprocess.Popen[bytes]
    port: int
    engine: str

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running(workdir: Path, redis_url: str | None = None) -> Iterator[Centrifugo]:
    """A Centrifugo process with the memory engine, or Redis at ``redis_url``
    (under a key prefix of its own), stopped on exit."""
    if not BINARY.exists():
        raise FileNotFoundError(f"{BINARY}: run deploy/local/tools.sh centrifugo")
    port = free_port()
    path = workdir / f"centrifugo-{port}.json"
    path.write_text(json.dumps(config(port, redis_url, f"peers-{uuid.uuid4().hex[:8]}")))
    log = (workdir / f"centrifugo-{port}.log").open("wb")
    process = subprocess.Popen([str(BINARY), "--config", str(path)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"centrifugo did not start; see {log.name}")
            time.sleep(0.1)
        yield Centrifugo(process, port, "redis" if redis_url else "memory")
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def pairs(count: int) -> list[PairSpec]:
    """``count`` sender/receiver users; each pair talks on the receiver's channel."""
    tag = uuid.uuid4().hex[:6]
    expires = int(time.time()) + TOKEN_TTL_S

    def token(user: str) -> str:
        return jwt.encode({"sub": user, "exp": expires}, HMAC_SECRET, algorithm="HS256")

    return [
        PairSpec(i, token(f"s{tag}{i}"), token(f"r{tag}{i}"), f"chat:r{tag}{i}")
        for i in range(count)
    ]
