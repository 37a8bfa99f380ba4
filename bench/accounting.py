"""Where the CPU goes: every process on a message's path, from /proc.

``Accounting.of(cluster)`` finds the cluster's own processes, the backing
stores (by the pid files ``deploy/local/backing.sh`` keeps, and Redis by
asking it) and this process, the load generator. ``with_group`` adds
processes counted under one name (a load generator's worker processes,
``loadgen``); ``Accounting(pids, None)`` accounts any processes at all (a
peer system's server). ``sample()`` reads each
one's CPU time and resident memory; ``per_unit(before, after, n)`` says what
each spent per unit of work (a delivered message, an upload) over the load
window between the two samples, and its memory at the end.

PostgreSQL runs a process per connection: its CPU is the postmaster's own,
what its exited children left in its ``cutime``/``cstime``, and what its live
children have used; its memory sums theirs, so shared buffers count once
per process. Processes that are not running are left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis

from chatmesh.devcluster import REPO_ROOT, LocalCluster

LOCAL = REPO_ROOT / ".local"
_STORE_PID_FILES = {
    "cassandra": LOCAL / "cassandra" / "cassandra.pid",
    "kafka": LOCAL / "kafka" / "kafka.pid",
    "object-store": LOCAL / "seaweedfs" / "weed.pid",
}
_POSTMASTER_PID = LOCAL / "postgres" / "data" / "postmaster.pid"
# deploy/local/backing.sh up --multinode: every node of a store is counted
# under the store's name (.local/multinode/cassandra-2/cassandra.pid, ...).
_MULTINODE = LOCAL / "multinode"
_MULTINODE_STORES = ("cassandra", "kafka", "redis")
# The client side: left out of the server's ``total``.
CLIENT_PROCESSES = frozenset({"load-generator", "loadgen"})
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True)
class Sample:
    cpu_s: dict[str, float]
    rss_kib: dict[str, int]


def _stat(pid: int) -> list[str] | None:
    try:
        # The command name may hold spaces and parentheses: split after the last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def redis_pid(url: str) -> int | None:
    """The Redis server's pid, as it reports it (it runs outside our pid files)."""
    try:
        return int(redis.Redis.from_url(url).info("server")["process_id"])
    except redis.RedisError:
        return None


@dataclass(frozen=True, slots=True)
class Accounting:
    pids: dict[str, int]
    postmaster: int | None  # PostgreSQL: counted with its children
    # Several processes counted as one name; each is read while it lives.
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, cluster: LocalCluster) -> Accounting:
        pids = {name: p.pid for name, p in cluster.processes.items() if p.running()}
        pids["load-generator"] = os.getpid()
        multinode = cluster.redis_cluster  # the cluster runs on the multi-node stores
        for name, path in _STORE_PID_FILES.items():
            if multinode and name in _MULTINODE_STORES:
                continue
            if (pid := _read_pid(path)) is not None:
                pids[name] = pid
        accounting = cls(pids, _read_pid(_POSTMASTER_PID))
        if multinode:
            for store in _MULTINODE_STORES:
                nodes = sorted(_MULTINODE.glob(f"{store}-*/{store}.pid"))
                accounting = accounting.with_group(
                    store, [pid for path in nodes if (pid := _read_pid(path)) is not None]
                )
        elif (pid := redis_pid(cluster.redis_url)) is not None:
            pids.setdefault("redis", pid)
        return accounting

    def with_group(self, name: str, pids: Iterable[int]) -> Accounting:
        return replace(self, groups={**self.groups, name: tuple(pids)})

    def sample(self) -> Sample:
        cpu: dict[str, float] = {}
        rss: dict[str, int] = {}
        for name, pid in self.pids.items():
            if (fields := _stat(pid)) is not None:
                cpu[name] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
                rss[name] = int(fields[21]) * _PAGE_KIB
        for name, pids in self.groups.items():
            for pid in pids:
                if (fields := _stat(pid)) is not None:
                    cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
                    rss[name] = rss.get(name, 0) + int(fields[21]) * _PAGE_KIB
        if self.postmaster is not None and (fields := _stat(self.postmaster)) is not None:
            total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
            memory = int(fields[21])
            for child in _children(self.postmaster):
                if (child_fields := _stat(child)) is not None:
                    total += int(child_fields[11]) + int(child_fields[12])
                    memory += int(child_fields[21])
            cpu["postgres"] = total / _TICKS
            rss["postgres"] = memory * _PAGE_KIB
        return Sample(cpu, rss)


def per_unit(before: Sample, after: Sample, units: int) -> dict[str, dict[str, float]]:
    """CPU milliseconds per unit and resident MiB at the end, per process,
    with a ``total`` of the server side (everything but the load generator
    and its workers)."""
    spent = {
        name: {
            "cpu_ms": round((after.cpu_s[name] - before.cpu_s.get(name, 0.0)) / units * 1000, 3),
            "rss_mib": round(after.rss_kib.get(name, 0) / 1024, 1),
        }
        for name in sorted(after.cpu_s)
    }
    spent["total"] = {
        "cpu_ms": round(sum(v["cpu_ms"] for k, v in spent.items() if k not in CLIENT_PROCESSES), 3),
        "rss_mib": round(
            sum(v["rss_mib"] for k, v in spent.items() if k not in CLIENT_PROCESSES), 1
        ),
    }
    return spent


def cpu_seconds(cluster: LocalCluster) -> dict[str, float]:
    """CPU seconds so far of every process of the cluster, the stores and
    this one, by name: for benchmarks that keep their own windows."""
    return Accounting.of(cluster).sample().cpu_s
