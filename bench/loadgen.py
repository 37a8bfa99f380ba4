"""The 1:1 open-loop load shape, driven from several worker processes.

N (sender, receiver) pairs; each sender sends to its receiver at a fixed
rate on a fixed schedule (pair k's i-th send is due at start + (i + k/N) /
rate, so the N senders' sends interleave evenly), whatever the replies do: a
slow server shows up as latency, never as a lower offered load. Latency is
measured from the *scheduled* send time, so a load generator that falls
behind its schedule is charged to the result, not hidden (``send_lag``
says by how much it fell behind).

The pairs are spread over worker processes (``spawn``: nothing of the
parent's event loop or cluster handles is inherited), each with its own
uvloop loop and both ends of its pairs, so every latency is one process's
clock difference. The parent collects their raw samples and merges them
before taking percentiles.

Bounded: every worker stops sending after ``duration_s``, waits at most
``settle_s`` for the last acks and deliveries, and reports. ``lost`` counts
sends never delivered by then.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import time
from dataclasses import dataclass
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.accounting import Accounting, Sample, per_unit
from bench.common import latency_percentiles
from bench.dialects import Dialect, PairSpec, Target, dialect_for

READY_TIMEOUT_S = 180.0  # hundreds of handshakes per worker through a busy edge
OPEN_CONCURRENCY = 20  # handshakes in flight per worker
START_DELAY_S = 1.0  # between "go" and the first scheduled send: every worker gets it first
EXIT_TIMEOUT_S = 30.0
LATE_SEND_S = 0.1  # a send this far behind schedule counts as late


@dataclass(frozen=True, slots=True)
class LoadShape:
    rate_per_sender: float  # messages per second (chatmesh allows 20 per user)
    duration_s: float
    settle_s: float = 10.0  # after the last send, for the last acks and deliveries

    @property
    def messages_per_sender(self) -> int:
        return max(1, round(self.rate_per_sender * self.duration_s))


@dataclass(frozen=True, slots=True)
class _Job:
    target: Target
    pairs: tuple[PairSpec, ...]
    total_pairs: int
    shape: LoadShape


class _Pair:
    """One pair's schedule and what has come back for it."""

    def __init__(self, spec: PairSpec, total_pairs: int, shape: LoadShape) -> None:
        self.spec = spec
        self.phase = spec.index / total_pairs
        self.rate = shape.rate_per_sender
        self.start = 0.0
        self.acked: set[int] = set()
        self.delivered: set[int] = set()

    def due(self, seq: int) -> float:
        return self.start + (seq + self.phase) / self.rate


class _Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.ack_s: list[float] = []
        self.deliver_s: list[float] = []
        self.errors: dict[str, int] = {}
        self.duplicates = 0
        self.late_sends = 0
        self.max_send_lag_s = 0.0
        self.replies = 0  # first acks plus first deliveries
        self.progress = asyncio.Event()  # set on each of them


async def _read(
    ws: ClientConnection, dialect: Dialect, pair: _Pair, sender: bool, tally: _Tally
) -> None:
    try:
        async for data in ws:
            now = time.monotonic()
            for kind, seq, detail in dialect.events(data):
                if kind == "ping":
                    await ws.send(dialect.pong())
                elif sender and kind == "ack" and seq not in pair.acked:
                    pair.acked.add(seq)
                    tally.ack_s.append(now - pair.due(seq))
                    tally.replies += 1
                    tally.progress.set()
                elif sender and kind == "error":
                    tally.errors[detail] = tally.errors.get(detail, 0) + 1
                elif not sender and kind == "deliver":
                    if seq in pair.delivered:
                        tally.duplicates += 1
                    else:
                        pair.delivered.add(seq)
                        tally.deliver_s.append(now - pair.due(seq))
                        tally.replies += 1
                        tally.progress.set()
    except ConnectionClosed:
        pass


async def _open_all(
    dialect: Dialect, pairs: list[_Pair]
) -> list[tuple[_Pair, ClientConnection, ClientConnection]]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(pair: _Pair, sender: bool) -> ClientConnection:
        async with gate:
            return await dialect.open(pair.spec, sender)

    # Receivers first: a sender's first message must find its receiver online.
    receivers = await asyncio.gather(*(open_one(p, False) for p in pairs))
    senders = await asyncio.gather(*(open_one(p, True) for p in pairs))
    return list(zip(pairs, senders, receivers, strict=True))


async def _worker(pipe: multiprocessing.connection.Connection, job: _Job) -> None:
    loop = asyncio.get_running_loop()
    dialect = dialect_for(job.target)
    pairs = [_Pair(spec, job.total_pairs, job.shape) for spec in job.pairs]
    tally = _Tally()
    opened = await _open_all(dialect, pairs)
    readers = [
        loop.create_task(_read(ws, dialect, pair, sender, tally), name=f"loadgen-read:{i}")
        for i, (pair, s_ws, r_ws) in enumerate(opened)
        for ws, sender in ((s_ws, True), (r_ws, False))
    ]
    pipe.send(("ready", None))
    command, start = await loop.run_in_executor(None, pipe.recv)
    assert command == "go"
    for pair in pairs:
        pair.start = start
    count = job.shape.messages_per_sender
    # Every send of this worker in time order: one scheduler, not a sleeping task per sender.
    schedule = sorted((p.due(i), n, i) for n, p in enumerate(pairs) for i in range(count))
    for due, n, seq in schedule:
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        lag = time.monotonic() - due
        tally.max_send_lag_s = max(tally.max_send_lag_s, lag)
        tally.late_sends += lag > LATE_SEND_S
        pair, sender_ws, _ = opened[n]
        await sender_ws.send(dialect.encode_send(pair.spec, seq))
        tally.sent += 1
    settle_until = time.monotonic() + job.shape.settle_s
    expected = 2 * count * len(pairs)
    while tally.replies < expected and (left := settle_until - time.monotonic()) > 0:
        tally.progress.clear()
        try:
            await asyncio.wait_for(tally.progress.wait(), left)
        except TimeoutError:
            break
    pipe.send(
        (
            "done",
            {
                "sent": tally.sent,
                "acked": sum(len(p.acked) for p in pairs),
                "delivered": sum(len(p.delivered) for p in pairs),
                "ack_s": tally.ack_s,
                "deliver_s": tally.deliver_s,
                "errors": tally.errors,
                "duplicates": tally.duplicates,
                "late_sends": tally.late_sends,
                "max_send_lag_s": tally.max_send_lag_s,
            },
        )
    )
    await loop.run_in_executor(None, pipe.recv)  # "close": after the parent's last CPU sample
    await asyncio.gather(*(ws.close() for _, s, r in opened for ws in (s, r)))
    for reader in readers:
        reader.cancel()


def _worker_main(pipe: multiprocessing.connection.Connection, job: _Job) -> None:
    try:
        uvloop.run(_worker(pipe, job))
    except BaseException as exc:
        pipe.send(("failed", repr(exc)))
        raise


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (every core), from /proc/stat:
    what the accounted processes leave out of it was spent by something else."""
    fields = open("/proc/stat").readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _await_all(
    pipes: list[multiprocessing.connection.Connection], expect: str, timeout_s: float
) -> list[Any]:
    answers: dict[int, Any] = {}
    deadline = time.monotonic() + timeout_s
    while len(answers) < len(pipes):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(pipes) - len(answers)} load workers did not say {expect!r}")
        for ready in multiprocessing.connection.wait(
            [p for i, p in enumerate(pipes) if i not in answers], left
        ):
            assert isinstance(ready, multiprocessing.connection.Connection)
            kind, payload = ready.recv()
            if kind != expect:
                raise RuntimeError(f"a load worker said {kind}: {payload}")
            answers[pipes.index(ready)] = payload
    return [answers[i] for i in range(len(pipes))]


def run_load(
    target: Target,
    pairs: list[PairSpec],
    shape: LoadShape,
    workers: int,
    accounting: Accounting,
) -> dict[str, Any]:
    """Runs the shape over ``pairs`` from ``workers`` processes and returns
    the merged figures, with each accounted process's CPU per delivered
    message over the load window (the workers as ``loadgen``)."""
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(workers, len(pairs)))
    shares = [tuple(pairs[w::workers]) for w in range(workers)]
    pipes, processes = [], []
    for w, share in enumerate(shares):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_worker_main,
            args=(child_end, _Job(target, share, len(pairs), shape)),
            name=f"loadgen-{w}",
            daemon=True,
        )
        process.start()
        pipes.append(parent_end)
        processes.append(process)
    try:
        _await_all(pipes, "ready", READY_TIMEOUT_S)
        accounting = accounting.with_group("loadgen", [p.pid for p in processes if p.pid])
        before, machine_before = accounting.sample(), _machine_busy_s()
        start = time.monotonic() + START_DELAY_S
        for pipe in pipes:
            pipe.send(("go", start))
        results = _await_all(pipes, "done", START_DELAY_S + shape.duration_s + shape.settle_s + 60)
        after, machine_after = accounting.sample(), _machine_busy_s()
        elapsed = time.monotonic() - start
        for pipe in pipes:
            pipe.send(("close", None))
    finally:
        for process in processes:
            process.join(EXIT_TIMEOUT_S)
            if process.is_alive():
                process.kill()
    machine_busy_s = machine_after - machine_before
    return _merge(results, pairs, shape, workers, elapsed, before, after, machine_busy_s)


def _merge(
    results: list[dict[str, Any]],
    pairs: list[PairSpec],
    shape: LoadShape,
    workers: int,
    elapsed_s: float,
    before: Sample,
    after: Sample,
    machine_busy_s: float,
) -> dict[str, Any]:
    sent = sum(r["sent"] for r in results)
    acked = sum(r["acked"] for r in results)
    delivered = sum(r["delivered"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for reason, n in r["errors"].items():
            errors[reason] = errors.get(reason, 0) + n
    ack_s = [s for r in results for s in r["ack_s"]]
    deliver_s = [s for r in results for s in r["deliver_s"]]
    return {
        "pairs": len(pairs),
        "rate_per_sender": shape.rate_per_sender,
        "offered_per_s": round(len(pairs) * shape.rate_per_sender, 1),
        "duration_s": shape.duration_s,
        "workers": workers,
        "sent": sent,
        "acked": acked,
        "delivered": delivered,
        "lost": sent - delivered,  # not delivered by the end of the settle window
        "duplicate_deliveries": sum(r["duplicates"] for r in results),
        "errors": errors,
        "elapsed_s": round(elapsed_s, 2),
        "delivered_per_s": round(delivered / (shape.duration_s or 1), 1),
        "ack_latency": latency_percentiles(ack_s),
        "delivery_latency": latency_percentiles(deliver_s),
        "late_sends": sum(r["late_sends"] for r in results),
        "max_send_lag_ms": round(max(r["max_send_lag_s"] for r in results) * 1000, 1),
        # From the "go" to the last report, per delivered message.
        "cost_per_delivered_message": per_unit(before, after, max(delivered, 1)),
        "machine_busy_cpu_ms_per_delivered": round(machine_busy_s / max(delivered, 1) * 1000, 3),
    }
