"""Coalescing concurrent calls into batches: one batch in flight at a time.

Each small call to a store costs a round trip and, in Python, a fair share of
CPU on both sides; a PostgreSQL write also costs a commit. Calls that arrive
while a batch is in flight wait and form the next batch, so under load the
batch grows with the load and the number of round trips stays small; when
idle, a call goes out at once and pays no added delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    item: Item
    result: asyncio.Future[Result]


class Coalescer(Generic[Item, Result]):
    """``run_batch`` gets items in arrival order and returns one result per
    item, in the same order. If it raises, every call in the batch raises."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int,
        name: str,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[_Waiting[Item, Result]] = []
        self._pump: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        waiting: _Waiting[Item, Result] = _Waiting(item, loop.create_future())
        self._waiting.append(waiting)
        if self._pump is None:
            self._pump = loop.create_task(self._drain(), name=self._name)
        return await waiting.result

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    results = await self._run_batch([w.item for w in batch])
                    if len(results) != len(batch):
                        raise ValueError(
                            f"{self._name}: {len(results)} results for {len(batch)} items"
                        )
                except Exception as exc:
                    for waiting in batch:
                        if not waiting.result.done():
                            waiting.result.set_exception(exc)
                    continue
                for waiting, result in zip(batch, results, strict=True):  # checked above
                    if not waiting.result.done():
                        waiting.result.set_result(result)
        finally:
            # No await between the loop's last check and this line, so a call
            # arriving now always finds the pump gone and starts a new one.
            self._pump = None
