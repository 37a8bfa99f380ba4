"""Supervised background tasks: named, logged when they fail, stopped in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskGroup:
    """Owns long-running and fire-and-forget tasks of one component.

    Every task is named; a task that dies with an exception is logged (never
    silently dropped); ``close`` cancels what is left and waits for it.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._long_running: set[asyncio.Task[Any]] = set()

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def forever(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task meant to run until shutdown (a subscriber, a stream pump)."""
        task = self.spawn(name, coro)
        self._long_running.add(task)
        return task

    def every(
        self, name: str, interval_s: float, action: Callable[[], Awaitable[object]]
    ) -> asyncio.Task[Any]:
        """Runs ``action`` every ``interval_s``; a failing run is logged and retried."""

        async def loop() -> None:
            while True:
                try:
                    await action()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("periodic task failed", extra={"fields": {"task": name}})
                await asyncio.sleep(interval_s)

        task = self.spawn(name, loop())
        self._long_running.add(task)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._long_running.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error(
                "background task failed",
                exc_info=exc,
                extra={"fields": {"task": task.get_name()}},
            )

    async def join(self) -> None:
        """Waits until every transient task (and any it spawns) is done."""
        while self._tasks - self._long_running:
            await asyncio.gather(*list(self._tasks - self._long_running), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)

    async def join_then_close(self, *, timeout_s: float) -> None:
        """Stops long-running tasks, gives transient ones ``timeout_s`` to finish,
        then cancels what is left."""
        for task in list(self._long_running):
            task.cancel()
        try:
            await asyncio.wait_for(self.join(), timeout_s)
        except TimeoutError:
            log.warning("tasks still running at shutdown", extra={"fields": {"count": len(self)}})
        await self.close()

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
