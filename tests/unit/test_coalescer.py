"""Coalescing concurrent calls: one batch in flight, results in order, failures shared."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chatmesh.coalescer import Coalescer


async def test_calls_made_while_a_batch_runs_form_the_next_batch() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await release.wait()
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(run, max_batch=3, name="test")
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)  # the first goes out alone, at once
    rest = [asyncio.create_task(coalescer.submit(i)) for i in range(2, 7)]
    await asyncio.sleep(0)
    assert batches == [[1]]
    release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
    assert batches == [[1], [2, 3, 4], [5, 6]]


async def test_a_failed_batch_fails_its_calls_only() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        if 2 in items:
            raise ConnectionError("store down")
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(run, max_batch=1, name="test")
    outcomes = await asyncio.gather(
        *(coalescer.submit(i) for i in (1, 2, 3)), return_exceptions=True
    )
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ConnectionError)
    assert await coalescer.submit(4) == 4  # and it keeps working


async def test_a_batch_must_answer_every_item() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        return []

    coalescer: Coalescer[int, int] = Coalescer(run, max_batch=8, name="test")
    with pytest.raises(ValueError):
        await coalescer.submit(1)
