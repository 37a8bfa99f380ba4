"""Presence benchmark: what 10,000 connected watchers cost at rest, and how
long a disconnect takes to reach its watchers as an offline event.

    .venv/bin/python -m bench.presence [--users 10000] [--watching 50] [--window-s 60]
                                       [--disconnects 300] [--spacing-ms 100]
                                       [--workers 4] [--own-redis]

Starts a cluster on free ports over throwaway stores, with the default
presence settings (a 5 s offline grace, 30 s gateway leases) unless
``--grace-ms`` / ``--lease-s`` say otherwise.

**Population.** ``--users`` users and their devices are inserted in
PostgreSQL, in group conversations of ``--watching`` + 1 members; each user
watches the others of its own group (if the users do not divide evenly, the
last ones form a group with the last full group's tail, so everyone watches
exactly ``--watching`` users). Each user connects once, straight to a
gateway's WebSocket port (user *i* to gateway *i* mod 2, not through Envoy),
from ``--workers`` client processes (each from its own source address,
127.0.0.2 and on), and then sends one ``watch_presence`` naming its group
mates. Every connection sends a ``ping`` frame every ``--heartbeat-s``
seconds (spread evenly); the gateways also ping every WebSocket every 30 s.

**Phases**, each measured by the Redis command counters (``INFO stats`` and
``INFO commandstats``) and the CPU time and RSS of every process (/proc):

1. ``idle``: the cluster running, nobody connected (``--idle-s``).
2. ``connect`` and ``watch``: how long they took.
3. ``steady``: everyone connected and watching, ``--window-s`` seconds.
4. ``disconnect``: ``--disconnects`` users close their connection, one every
   ``--spacing-ms`` (taken round robin over the groups, so two of one group
   are far apart); every watcher records when each offline event arrives.
   Measured: close → offline event over every (user, watcher) pair, and per
   user close → its *last* watcher's event; split into close → last seen
   (the gateway's report, at most a second) and last seen + grace → arrival
   (the sweep, at most half a second, and the fan-out).

Redis is the shared local one unless ``--own-redis``: its counters then
include whatever else uses it (other tests), which ``idle`` helps to judge;
with ``--own-redis`` the cluster runs a private redis-server (AOF, fsync
always, as in the crash tests) and the counts are the cluster's alone, with
the server's CPU. Every presence event the cluster publishes is also heard
on one pattern subscription (``published``: each transition exactly once?),
and the services' logged warnings and errors are counted
(``service_log_problems``). Bounded; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import multiprocessing
import os
import resource
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import asyncpg
import redis
import redis.asyncio as redis_async
import uvloop
from websockets.asyncio.client import connect

from bench.common import latency_summary, print_report
from chatmesh.auth import Identity, TokenIssuer
from chatmesh.client import Connection, NoHello
from chatmesh.clock import SystemClock
from chatmesh.devcluster import ClusterConfig, LocalCluster
from chatmesh.frames import Encoding, decode_server_frame
from chatmesh.isolation import isolated_stores
from chatmesh.v1 import client_pb2, common_pb2
from gateway.presence import PRESENCE_LEASE_S, REPORT_INTERVAL_S
from presencesvc.presence import OFFLINE_GRACE_MS

OFFLINE = common_pb2.PRESENCE_STATUS_OFFLINE
DEVICE = "phone"
CONNECT_CONCURRENCY = 16  # per worker process
CONNECT_ATTEMPTS = 5
OPEN_TIMEOUT_S = 30.0  # a busy gateway may take long to register a session
HELLO_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
WATCH_CONCURRENCY = 16  # per worker process
WATCH_TIMEOUT_S = 30.0
SETTLE_S = 5.0  # after the watches: the last reports and online events go by
EVENT_PATIENCE_S = 15.0  # beyond the grace, how long offline events are waited for
# A watcher is expected to get a user's offline event if it stays connected
# this long beyond the grace after the user's close.
EXPECTED_BEYOND_GRACE_S = 5.0
CALL_MARGIN_S = 60.0  # a worker's answer may take this beyond its own timeouts


# -- population ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Population:
    users: list[str]
    conversations: list[list[str]]  # members of each group conversation
    own_groups: list[list[str]]  # the full groups: each user in exactly one
    watches: dict[str, list[str]]  # user -> the users it watches

    def watchers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {u: [] for u in self.users}
        for watcher, watched in self.watches.items():
            for user in watched:
                found[user].append(watcher)
        return found


def population(tag: str, count: int, watching: int) -> Population:
    size = min(watching + 1, count)
    users = [f"p{tag}{i:05d}" for i in range(count)]
    full = count // size
    conversations = [users[g * size : (g + 1) * size] for g in range(full)]
    watches = {u: [m for m in group if m != u] for group in conversations for u in group}
    if count % size:
        tail = users[count - size :]  # overlaps the last full group
        conversations.append(tail)
        for u in users[full * size :]:
            watches[u] = [m for m in tail if m != u]
    return Population(users, conversations, conversations[:full], watches)


async def insert(pg_dsn: str, tag: str, people: Population) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.copy_records_to_table(
            "users", records=[(u,) for u in people.users], columns=["user_id"]
        )
        await conn.copy_records_to_table(
            "devices",
            records=[(u, DEVICE) for u in people.users],
            columns=["user_id", "device_id"],
        )
        ids = [f"bench-{tag}-{i}" for i in range(len(people.conversations))]
        now_ms = int(time.time() * 1000)
        await conn.copy_records_to_table(
            "conversations",
            records=[
                (c, 2, now_ms, members[0])
                for c, members in zip(ids, people.conversations, strict=True)
            ],
            columns=["conversation_id", "kind", "created_at_ms", "created_by"],
        )
        await conn.copy_records_to_table(
            "members",
            records=[
                (c, u)
                for c, members in zip(ids, people.conversations, strict=True)
                for u in members
            ],
            columns=["conversation_id", "user_id"],
        )
    finally:
        await conn.close()


# -- client worker processes ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    source_address: str
    private_key_pem: bytes
    users: list[tuple[str, str]]  # (user, gateway URL)
    watches: dict[str, list[str]]
    heartbeat_s: float


@dataclass
class _State:
    conns: dict[str, Connection] = field(default_factory=dict)
    closed_at: dict[str, float] = field(default_factory=dict)
    # (watcher, user, arrival, last_seen_ms) of every offline event
    offline: list[tuple[str, str, float, int]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    pong_rtt_ms: list[float] = field(default_factory=list)
    closing: list[asyncio.Task[None]] = field(default_factory=list)
    watch_failed: list[str] = field(default_factory=list)


def _worker_main(pipe: Pipe, spec: WorkerSpec) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(_worker(pipe, spec))


async def _worker(pipe: Pipe, spec: WorkerSpec) -> None:
    state = _State()
    heartbeats: asyncio.Task[None] | None = None
    while True:
        command, argument = await asyncio.to_thread(pipe.recv)
        try:
            if command == "connect":
                reply: Any = await _connect_all(spec, state)
                heartbeats = asyncio.get_running_loop().create_task(_heartbeats(spec, state))
            elif command == "watch":
                reply = await _watch_all(spec, state)
            elif command == "counters":
                reply = {**state.counters, "pong_samples": len(state.pong_rtt_ms)}
            elif command == "disconnect":
                state.closing = [
                    asyncio.get_running_loop().create_task(_close_at(state, user, at))
                    for user, at in argument
                ]
                reply = len(state.closing)
            elif command == "collect":
                await asyncio.gather(*state.closing)
                reply = {
                    "closed_at": state.closed_at,
                    "offline": state.offline,
                    "counters": dict(state.counters),
                    "pong_rtt_ms": state.pong_rtt_ms,
                }
            elif command == "stop":
                if heartbeats is not None:
                    heartbeats.cancel()
                await _close_all(state)
                pipe.send({"closed": True})
                return
            else:
                raise ValueError(f"unknown command {command!r}")
        except Exception:
            reply = {"error": traceback.format_exc()}
        pipe.send(reply)


def _dispatch(user: str, state: _State) -> Callable[[client_pb2.ServerFrame], None]:
    def on_frame(frame: client_pb2.ServerFrame) -> None:
        kind = frame.WhichOneof("kind")
        if kind == "presence" and not frame.presence.request_id:
            arrived = time.time()
            for presence in frame.presence.presences:
                if presence.status == OFFLINE:
                    state.counters["offline_events"] += 1
                    state.offline.append(
                        (user, presence.user_id, arrived, int(presence.last_seen_ms))
                    )
                else:
                    state.counters["online_events"] += 1
        elif kind == "pong":
            state.counters["pongs"] += 1
            state.pong_rtt_ms.append(time.time() * 1000 - frame.pong.client_time_ms)
        else:
            state.counters[f"frame_{kind}"] += 1

    return on_frame


async def _open(url: str, token: str, source: str, dispatch: Callable[..., None]) -> Connection:
    """``Connection.open`` from a given source address; the library's own
    keepalive pings are off (the ping frames are the heartbeat)."""
    ws = await connect(
        f"{url}?encoding=binary",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=CLOSE_TIMEOUT_S,
        ping_interval=None,
        max_queue=None,
        local_addr=(source, 0),
    )
    try:
        frame = decode_server_frame(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
    except BaseException:
        await ws.close()
        raise
    if frame.WhichOneof("kind") != "hello":
        await ws.close()
        raise NoHello(f"first frame is not hello: {frame.WhichOneof('kind')}")
    return Connection(ws, frame.hello, Encoding.BINARY, dispatch)


async def _connect_all(spec: WorkerSpec, state: _State) -> dict[str, Any]:
    issuer = TokenIssuer(spec.private_key_pem, SystemClock())
    slots = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: Counter[str] = Counter()
    retries = 0

    async def one(user: str, url: str) -> None:
        nonlocal retries
        token = issuer.mint(Identity(user, DEVICE), ttl_s=3600)
        for attempt in range(CONNECT_ATTEMPTS):
            async with slots:
                try:
                    state.conns[user] = await _open(
                        url, token, spec.source_address, _dispatch(user, state)
                    )
                    return
                except Exception as exc:
                    errors[type(exc).__name__] += 1
            retries += 1
            await asyncio.sleep(0.5 * 2**attempt)

    started = time.perf_counter()
    await asyncio.gather(*(one(user, url) for user, url in spec.users))
    return {
        "connected": len(state.conns),
        "failed": len(spec.users) - len(state.conns),
        "failed_users": [u for u, _ in spec.users if u not in state.conns],
        "retries": retries,
        "errors": dict(errors),
        "seconds": round(time.perf_counter() - started, 2),
    }


async def _watch_all(spec: WorkerSpec, state: _State) -> dict[str, Any]:
    slots = asyncio.Semaphore(WATCH_CONCURRENCY)
    outcome: Counter[str] = Counter()
    latencies: list[float] = []

    async def one(user: str, conn: Connection) -> None:
        frame = client_pb2.ClientFrame(
            watch_presence=client_pb2.WatchPresenceFrame(user_ids=spec.watches[user])
        )
        async with slots:
            started = time.perf_counter()
            try:
                reply = await conn.request(frame, timeout_s=WATCH_TIMEOUT_S)
            except Exception as exc:
                outcome[f"failed_{type(exc).__name__}"] += 1
                state.watch_failed.append(user)
                return
            latencies.append(time.perf_counter() - started)
        if reply.WhichOneof("kind") != "presence":
            outcome[f"error_{reply.error.reason}"] += 1
            state.watch_failed.append(user)
            return
        answer = reply.presence
        outcome["answered"] += 1
        outcome["watched"] += answer.watching
        outcome["refused"] += len(answer.refused_user_ids)
        for presence in answer.presences:
            outcome["snapshot_online" if presence.status != OFFLINE else "snapshot_offline"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(user, conn) for user, conn in state.conns.items()))
    return {
        **outcome,
        "failed_users": state.watch_failed,
        "seconds": round(time.perf_counter() - started, 2),
        "latencies_s": latencies,
    }


async def _heartbeats(spec: WorkerSpec, state: _State) -> None:
    """A ping frame from every connection every ``heartbeat_s``, spread
    evenly: each second, the next share of the connections."""
    users = list(state.conns)
    per_tick = math.ceil(len(users) / spec.heartbeat_s)
    position = 0
    while True:
        await asyncio.sleep(1.0)
        for _ in range(per_tick):
            conn = state.conns.get(users[position % len(users)])
            position += 1
            if conn is None or conn.closed:
                continue
            ping = client_pb2.ClientFrame(
                ping=client_pb2.PingFrame(client_time_ms=int(time.time() * 1000))
            )
            try:
                await conn.send(ping)
                state.counters["pings"] += 1
            except Exception:
                state.counters["ping_failed"] += 1


async def _close_at(state: _State, user: str, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.time()))
    conn = state.conns.pop(user, None)
    if conn is None:
        return
    state.closed_at[user] = time.time()
    try:
        await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT_S * 2)
    except Exception:
        state.counters["close_failed"] += 1


async def _close_all(state: _State) -> None:
    slots = asyncio.Semaphore(64)

    async def one(conn: Connection) -> None:
        async with slots:
            try:
                await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT_S)
            except Exception:
                pass

    conns = list(state.conns.values())
    state.conns.clear()
    await asyncio.gather(*(one(c) for c in conns))


class Worker:
    """One client process, driven over a pipe, one command at a time."""

    def __init__(self, context: Any, spec: WorkerSpec) -> None:
        self.name = f"load-generator-{spec.index + 1}"
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()

    async def call(self, command: str, timeout_s: float, argument: Any = None) -> Any:
        return await asyncio.to_thread(self._call, command, timeout_s, argument)

    def _call(self, command: str, timeout_s: float, argument: Any) -> Any:
        self._pipe.send((command, argument))
        if not self._pipe.poll(timeout_s):
            raise TimeoutError(f"{self.name}: no answer to {command} in {timeout_s} s")
        reply = self._pipe.recv()
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"{self.name} failed {command}:\n{reply['error']}")
        return reply

    def end(self) -> None:
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


async def _all(workers: list[Worker], command: str, timeout_s: float) -> list[Any]:
    return list(await asyncio.gather(*(w.call(command, timeout_s) for w in workers)))


# -- measurements --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    commands: int
    by_command: dict[str, int]
    redis_cpu_s: float
    cpu_s: dict[str, float]
    rss_mb: dict[str, float]


def _proc(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) and RSS in MB of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss_kb / 1024


def snapshot(client: redis.Redis, pids: dict[str, int]) -> Snapshot:
    stats = client.info("stats")
    commandstats = client.info("commandstats")
    cpu = client.info("cpu")
    found = {name: p for name, pid in pids.items() if (p := _proc(pid)) is not None}
    return Snapshot(
        at=time.perf_counter(),
        commands=int(stats["total_commands_processed"]),
        by_command={
            name.removeprefix("cmdstat_"): int(values["calls"])
            for name, values in commandstats.items()
        },
        redis_cpu_s=float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        cpu_s={name: p[0] for name, p in found.items()},
        rss_mb={name: p[1] for name, p in found.items()},
    )


def between(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    seconds = after.at - before.at
    by_command = {
        name: calls - before.by_command.get(name, 0)
        for name, calls in after.by_command.items()
        if calls - before.by_command.get(name, 0) > 0
    }
    # The INFO calls of this benchmark itself (three per snapshot).
    by_command["info"] = by_command.get("info", 0) - 3
    commands = after.commands - before.commands - 3
    return {
        "seconds": round(seconds, 2),
        "redis": {
            "commands": commands,
            "commands_per_s": round(commands / seconds, 1),
            "by_command_per_s": {
                name: round(calls / seconds, 2)
                for name, calls in sorted(by_command.items(), key=lambda kv: -kv[1])
                if calls > 0
            },
            "server_cpu_s_per_s": round((after.redis_cpu_s - before.redis_cpu_s) / seconds, 4),
        },
        "cpu_s_per_s": {
            name: round((cpu - before.cpu_s.get(name, cpu)) / seconds, 4)
            for name, cpu in after.cpu_s.items()
        },
        "rss_mb_at_end": {name: round(rss, 1) for name, rss in after.rss_mb.items()},
    }


async def measured(client: redis.Redis, pids: dict[str, int], seconds: float) -> dict[str, Any]:
    before = snapshot(client, pids)
    await asyncio.sleep(seconds)
    return between(before, snapshot(client, pids))


def _log_problems(cluster: LocalCluster) -> dict[str, dict[str, int]]:
    """Warnings and errors each service logged so far, by message (and task)."""
    found: dict[str, dict[str, int]] = {}
    for name, process in cluster.processes.items():
        counts: Counter[str] = Counter()
        try:
            lines = process.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                task = f" ({entry['task']})" if "task" in entry else ""
                counts[f"{entry['level']}: {entry.get('msg')}{task}"] += 1
        if counts:
            found[name] = dict(counts)
    return found


class Published:
    """Every presence event the cluster publishes, heard on one pattern
    subscription: whether each transition was published exactly once."""

    def __init__(self, url: str, key_prefix: str) -> None:
        self._client = redis_async.Redis.from_url(url)
        self._pattern = f"{key_prefix}presence-events:*"
        self.online: Counter[str] = Counter()
        self.offline: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(self._pattern)
        self._task = asyncio.get_running_loop().create_task(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message["type"] != "pmessage":
                    continue
                presence = common_pb2.Presence.FromString(message["data"])
                counter = self.offline if presence.status == OFFLINE else self.online
                counter[presence.user_id] += 1
        finally:
            await pubsub.aclose()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()


# -- the run -------------------------------------------------------------------


def _disconnect_schedule(
    people: Population, count: int, spacing_s: float, start: float
) -> list[tuple[str, float]]:
    """Round robin over the groups: the k-th user to go is member k // groups
    of group k % groups."""
    groups = people.own_groups
    count = min(count, sum(len(g) for g in groups))
    chosen = [groups[k % len(groups)][k // len(groups)] for k in range(count)]
    return [(user, start + k * spacing_s) for k, user in enumerate(chosen)]


def _offline_latencies(
    people: Population,
    closed_at: dict[str, float],
    offline: list[tuple[str, str, float, int]],
    grace_s: float,
    failed: set[str],
) -> dict[str, Any]:
    watchers = people.watchers()
    horizon = grace_s + EXPECTED_BEYOND_GRACE_S
    arrivals: dict[tuple[str, str], tuple[float, int]] = {}
    duplicates = 0
    for watcher, user, arrived, last_seen_ms in offline:
        if (watcher, user) in arrivals:
            duplicates += 1
            continue
        arrivals[(watcher, user)] = (arrived, last_seen_ms)
    pairs: list[float] = []
    last: list[float] = []
    first: list[float] = []
    spread: list[float] = []
    to_last_seen: list[float] = []
    after_grace: list[float] = []
    expected_total = missing = 0
    users_complete = 0
    for user, closed in closed_at.items():
        # Watchers connected (and watching) until the event was due at the latest.
        expected = [
            w
            for w in watchers[user]
            if w not in failed and (w not in closed_at or closed_at[w] > closed + horizon)
        ]
        expected_total += len(expected)
        got = [arrivals[(w, user)] for w in expected if (w, user) in arrivals]
        missing += len(expected) - len(got)
        delays = [arrived - closed for arrived, _ in got]
        pairs.extend(delays)
        if got:
            last_seen_s = got[0][1] / 1000
            to_last_seen.append(last_seen_s - closed)
            after_grace.extend(arrived - (last_seen_s + grace_s) for arrived, _ in got)
            first.append(min(delays))
            spread.append(max(delays) - min(delays))
        if expected and len(got) == len(expected):
            users_complete += 1
            last.append(max(delays))
    closed_users = set(closed_at)
    unexpected = sum(1 for _, user in arrivals if user not in closed_users)
    return {
        "users_disconnected": len(closed_at),
        "pairs_expected": expected_total,
        "pairs_received": len(pairs),
        "pairs_missing": missing,
        "duplicate_events": duplicates,
        "offline_events_for_users_still_connected": unexpected,
        "users_reaching_every_watcher": users_complete,
        "close_to_offline_every_pair": {"samples": len(pairs), **latency_summary(pairs)},
        "close_to_last_watcher": {"samples": len(last), **latency_summary(last)},
        "close_to_first_watcher": {"samples": len(first), **latency_summary(first)},
        "first_to_last_watcher": {"samples": len(spread), **latency_summary(spread)},
        "close_to_last_seen": {"samples": len(to_last_seen), **latency_summary(to_last_seen)},
        "last_seen_plus_grace_to_arrival": {
            "samples": len(after_grace),
            **latency_summary(after_grace),
        },
    }


async def _run(cluster: LocalCluster, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    people = population(tag, args.users, args.watching)
    started = time.perf_counter()
    await insert(cluster.config.pg_dsn, tag, people)
    inserted_s = time.perf_counter() - started
    client = redis.Redis.from_url(cluster.redis_url, socket_timeout=10)
    published = Published(cluster.redis_url, cluster.config.key_prefix)
    context = multiprocessing.get_context("spawn")
    key = (cluster.keys_dir / "jwt-private.pem").read_bytes()
    shares: list[list[tuple[str, str]]] = [[] for _ in range(args.workers)]
    for i, user in enumerate(people.users):
        shares[i % args.workers].append((user, cluster.gateway_url(i % 2)))
    workers: list[Worker] = []
    try:
        await published.start()
        for index, share in enumerate(shares):
            workers.append(
                Worker(
                    context,
                    WorkerSpec(
                        index=index,
                        source_address=f"127.0.0.{2 + index}",
                        private_key_pem=key,
                        users=share,
                        watches={u: people.watches[u] for u, _ in share},
                        heartbeat_s=args.heartbeat_s,
                    ),
                )
            )
        pids = {name: p.pid for name, p in cluster.processes.items() if p.running()}
        pids["load-generator"] = os.getpid()
        pids.update({w.name: w.process.pid for w in workers})
        results: dict[str, Any] = {"population_insert_s": round(inserted_s, 2)}
        results["idle"] = await measured(client, pids, args.idle_s)

        per_worker = math.ceil(args.users / args.workers)
        before = snapshot(client, pids)
        connected = await _all(workers, "connect", 120 + per_worker * 0.5)
        connect_phase = between(before, snapshot(client, pids))
        results["connect"] = {
            "connected": sum(r["connected"] for r in connected),
            "failed": sum(r["failed"] for r in connected),
            "retries": sum(r["retries"] for r in connected),
            "errors": dict(sum((Counter(r["errors"]) for r in connected), Counter())),
            "seconds": max(r["seconds"] for r in connected),
            "per_s": round(
                sum(r["connected"] for r in connected) / max(r["seconds"] for r in connected), 1
            ),
            "phase": connect_phase,
        }

        # Every connection reported (within a second): the snapshots say online.
        await asyncio.sleep(2 * REPORT_INTERVAL_S)
        before = snapshot(client, pids)
        watched = await _all(workers, "watch", WATCH_TIMEOUT_S * per_worker / 4 + CALL_MARGIN_S)
        watch_phase = between(before, snapshot(client, pids))
        # Users not connected or not watching are nobody's expected watchers.
        failed = {u for r in [*connected, *watched] for u in r["failed_users"]}
        totals: Counter[str] = Counter()
        for r in watched:
            totals.update({k: v for k, v in r.items() if isinstance(v, int) and k != "seconds"})
        results["watch"] = {
            **dict(totals),
            "seconds": max(r["seconds"] for r in watched),
            "request_latency": latency_summary([s for r in watched for s in r["latencies_s"]]),
            "phase": watch_phase,
        }
        await asyncio.sleep(SETTLE_S)
        channels = client.pubsub_channels(f"{cluster.config.key_prefix}presence-events:*")
        sample = [c.decode() if isinstance(c, bytes) else c for c in channels[:20]]
        numsub = client.pubsub_numsub(*sample) if sample else []
        results["subscriptions"] = {
            "presence_channels": len(channels),
            "subscribers_per_channel_sampled": [int(n) for _, n in numsub],
        }

        counters_before = await _all(workers, "counters", CALL_MARGIN_S)
        results["steady"] = await measured(client, pids, args.window_s)
        counters_after = await _all(workers, "counters", CALL_MARGIN_S)
        results["steady"]["clients"] = {
            name: sum(
                a.get(name, 0) - b.get(name, 0)
                for a, b in zip(counters_after, counters_before, strict=True)
            )
            for name in sorted({n for c in counters_after for n in c} - {"pong_samples"})
        }

        grace_s = args.grace_ms / 1000
        start = time.time() + 2.0
        schedule = _disconnect_schedule(people, args.disconnects, args.spacing_ms / 1000, start)
        worker_of = {u: i % args.workers for i, u in enumerate(people.users)}
        before = snapshot(client, pids)
        await asyncio.gather(
            *(
                w.call(
                    "disconnect",
                    CALL_MARGIN_S,
                    [(u, at) for u, at in schedule if worker_of[u] == index],
                )
                for index, w in enumerate(workers)
            )
        )
        last_close = schedule[-1][1] if schedule else start
        await asyncio.sleep(max(0.0, last_close - time.time()) + grace_s + EVENT_PATIENCE_S)
        collected = await _all(workers, "collect", CALL_MARGIN_S)
        disconnect_phase = between(before, snapshot(client, pids))
        closed_at = {u: t for r in collected for u, t in r["closed_at"].items()}
        offline = [
            (w, u, float(at), int(seen)) for r in collected for w, u, at, seen in r["offline"]
        ]
        results["disconnect"] = {
            "spacing_ms": args.spacing_ms,
            "span_s": round(schedule[-1][1] - schedule[0][1], 2) if schedule else 0,
            **_offline_latencies(people, closed_at, offline, grace_s, failed),
            "phase": disconnect_phase,
        }
        rtts = [ms / 1000 for r in collected for ms in r["pong_rtt_ms"]]
        steady_rtts = [
            ms / 1000
            for r, b, a in zip(collected, counters_before, counters_after, strict=True)
            for ms in r["pong_rtt_ms"][b["pong_samples"] : a["pong_samples"]]
        ]
        results["heartbeats"] = {
            "interval_s": args.heartbeat_s,
            "pings": sum(r["counters"].get("pings", 0) for r in collected),
            "pongs": sum(r["counters"].get("pongs", 0) for r in collected),
            "ping_failed": sum(r["counters"].get("ping_failed", 0) for r in collected),
            "pong_rtt_whole_run": latency_summary(rtts),
            "pong_rtt_steady": {"samples": len(steady_rtts), **latency_summary(steady_rtts)},
        }
        results["client_counters"] = dict(
            sum((Counter(r["counters"]) for r in collected), Counter())
        )
        sampled = set(closed_at)
        results["published"] = {
            "online_events": sum(published.online.values()),
            "users_online_published": len(published.online),
            "users_online_published_twice_or_more": sum(
                1 for n in published.online.values() if n > 1
            ),
            "offline_events": sum(published.offline.values()),
            "disconnected_users_offline_published": len(sampled & set(published.offline)),
            "offline_events_for_users_still_connected": len(set(published.offline) - sampled),
        }
        await _all(workers, "stop", CALL_MARGIN_S)
        results["service_log_problems"] = _log_problems(cluster)
    finally:
        for w in workers:
            w.end()
        client.close()
        await published.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.presence")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--watching", type=int, default=50, help="users each one watches")
    parser.add_argument("--window-s", type=float, default=60.0, help="the steady state")
    parser.add_argument("--idle-s", type=float, default=20.0, help="the idle cluster, before")
    parser.add_argument("--heartbeat-s", type=float, default=30.0, help="ping frame interval")
    parser.add_argument("--disconnects", type=int, default=300)
    parser.add_argument("--spacing-ms", type=float, default=100.0, help="between disconnects")
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--grace-ms", type=int, default=OFFLINE_GRACE_MS)
    parser.add_argument("--lease-s", type=int, default=PRESENCE_LEASE_S)
    parser.add_argument("--own-redis", action="store_true", help="a private redis-server")
    parser.add_argument(
        "--workdir", type=Path, help="keep the cluster's logs here (default: a temporary one)"
    )
    args = parser.parse_args()
    os.environ.setdefault("CHATMESH_LOG_LEVEL", "WARNING")
    env = {}
    if args.grace_ms != OFFLINE_GRACE_MS:
        env["CHATMESH_PRESENCE_GRACE_MS"] = str(args.grace_ms)
    if args.lease_s != PRESENCE_LEASE_S:
        env["CHATMESH_PRESENCE_LEASE_S"] = str(args.lease_s)
    started = time.time()
    with isolated_stores("b") as stores, tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(
            ClusterConfig.on_free_ports(
                stores, args.workdir or Path(tmp), "presence", own_redis=args.own_redis
            ),
            env=env,
        )
        with LocalCluster.running(config) as cluster:
            results = uvloop.run(_run(cluster, args))
    print_report(
        "presence",
        started,
        {
            "path": "gateway reports (batched, 1 s) -> presencesvc (Redis, Lua per user) "
            "-> grace -> sweep (0.5 s) -> PUBLISH on the user's channel -> gateways "
            "subscribed once per watched user -> watchers",
            "users": args.users,
            "watching_each": args.watching,
            "gateways": 2,
            "client_processes": args.workers,
            "heartbeat_s": args.heartbeat_s,
            "grace_ms": args.grace_ms,
            "lease_s": args.lease_s,
            "redis": "own (AOF, fsync always)" if args.own_redis else "shared local",
            "window_s": args.window_s,
            "disconnects": args.disconnects,
        },
        results,
    )


if __name__ == "__main__":
    main()
