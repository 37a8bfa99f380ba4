"""The local multi-node stores (``deploy/local/backing.sh up --multinode``):
which process is which node, killing one, and bringing back what is down."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from chatmesh.devcluster import REPO_ROOT

STORES_DIR = REPO_ROOT / ".local" / "multinode"
BACKING = REPO_ROOT / "deploy" / "local" / "backing.sh"
RESTART_TIMEOUT_S = 600
REDIS_PORTS = (26379, 26380)


@dataclass(frozen=True, slots=True)
class Node:
    """One store process: ``cassandra-2``, ``kafka-3``, ``redis-26379-1``."""

    name: str

    @property
    def pidfile(self) -> Path:
        store = self.name.split("-", 1)[0]
        return STORES_DIR / self.name / f"{store}.pid"

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed beyond what the store already had."""
        os.kill(self.pid(), signal.SIGKILL)


def cassandra(n: int) -> Node:
    return Node(f"cassandra-{n}")


def kafka(n: int) -> Node:
    return Node(f"kafka-{n}")


def redis_primary(slot_of: str) -> Node:
    """The Redis node that is the primary of ``slot_of``'s slot now."""
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORTS[0], socket_timeout=2.0)
    try:
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", slot_of))  # type: ignore[no-untyped-call]
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
            if start <= slot <= end:
                return Node(_node_name(f"{primary[0].decode()}:{int(primary[1])}"))
    finally:
        client.close()
    raise LookupError(f"no primary serves slot {slot}")


def redis_replica_of(primary: Node) -> Node:
    """A replica that follows ``primary`` now."""
    client = redis.Redis(host="127.0.0.1", port=REDIS_PORTS[0], socket_timeout=2.0)
    try:
        lines = client.execute_command("CLUSTER", "NODES").decode().splitlines()  # type: ignore[no-untyped-call]
    finally:
        client.close()
    nodes = {f[0]: f for f in (line.split() for line in lines)}
    by_name = {_node_name(f[1]): f[0] for f in nodes.values()}
    primary_id = by_name[primary.name]
    for fields in nodes.values():
        if fields[3] == primary_id and "fail" not in fields[2]:
            return Node(_node_name(fields[1]))
    raise LookupError(f"{primary.name} has no replica")


def _node_name(address: str) -> str:
    """``redis-PORT-N`` of a CLUSTER NODES address ``127.0.0.N:PORT@BUS``."""
    host, port = address.split("@", 1)[0].rsplit(":", 1)
    return f"redis-{port}-{host.rsplit('.', 1)[1]}"


def bring_back() -> None:
    """Starts whatever store node is down and waits until every store is
    whole again (a restarted node rejoins its ring, cluster or quorum)."""
    subprocess.run(
        ["bash", str(BACKING), "up", "--multinode"],
        check=True,
        timeout=RESTART_TIMEOUT_S,
        capture_output=True,
    )
