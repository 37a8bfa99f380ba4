"""Client worker processes for benchmarks that hold many connections.

A process may hold at most 20,000 open files here, and one source address
reaches one destination through at most ~28,000 ephemeral ports, so a fleet
of tens of thousands of clients is spread over several processes, each with
its own source address (127.0.0.2, 127.0.0.3, ...) and its own raised
``RLIMIT_NOFILE``.

Each worker runs an *agent* (a class with async methods, built in the child
from a picklable spec) and is driven over a pipe, one command at a time:
``await fleet.call_all("connect", timeout_s)`` runs ``agent.connect(arg)`` in
every worker at once and returns their answers. An agent method that raises
is reported back as a ``RuntimeError`` carrying the child's traceback.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any

import uvloop

STOP = "stop"  # the command that ends a worker after its agent's ``stop``
JOIN_TIMEOUT_S = 15.0


def source_address(index: int) -> str:
    """Worker ``index``'s own loopback address (127.0.0.1 is the servers')."""
    return f"127.0.0.{2 + index}"


def raise_fd_limit() -> int:
    """Raises this process's soft open-file limit to its hard one; returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _child(pipe: Pipe, make_agent: Callable[[Any], Any], spec: Any) -> None:
    raise_fd_limit()
    uvloop.run(_serve(pipe, make_agent(spec)))


async def _serve(pipe: Pipe, agent: Any) -> None:
    while True:
        command, argument = await asyncio.to_thread(pipe.recv)
        try:
            reply: Any = await getattr(agent, command)(argument)
        except Exception:
            reply = {"error": traceback.format_exc()}
        pipe.send(reply)
        if command == STOP:
            return


class Worker:
    """One client process running one agent."""

    def __init__(self, context: Any, name: str, make_agent: Callable[[Any], Any], spec: Any):
        self.name = name
        self._pipe, child = context.Pipe()
        self.process = context.Process(
            target=_child, args=(child, make_agent, spec), daemon=True, name=name
        )
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
        self.process.join(JOIN_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class Fleet:
    """Workers started with ``spawn`` (no inherited event loop or sockets)."""

    def __init__(self, make_agent: Callable[[Any], Any], specs: list[Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = [
            Worker(context, f"load-generator-{i + 1}", make_agent, spec)
            for i, spec in enumerate(specs)
        ]

    @property
    def pids(self) -> dict[str, int]:
        return {w.name: w.process.pid for w in self.workers if w.process.pid is not None}

    async def call_all(
        self, command: str, timeout_s: float, arguments: list[Any] | None = None
    ) -> list[Any]:
        args = arguments if arguments is not None else [None] * len(self.workers)
        return list(
            await asyncio.gather(
                *(w.call(command, timeout_s, a) for w, a in zip(self.workers, args, strict=True))
            )
        )

    async def stop(self, timeout_s: float) -> None:
        try:
            await self.call_all(STOP, timeout_s)
        finally:
            self.end()

    def end(self) -> None:
        for worker in self.workers:
            worker.end()
