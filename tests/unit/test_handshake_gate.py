"""The gateway's handshake gate: a few handshakes at a time, the others in
line for a turn, refused past the line's length or its waiting time."""

from __future__ import annotations

import asyncio

import pytest

from gateway.handshake_gate import HandshakeGate


async def settle() -> None:
    """Lets woken waiters run (a turn passes through a few callbacks)."""
    for _ in range(10):
        await asyncio.sleep(0)


class HandClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_turns_go_in_arrival_order_as_handshakes_finish() -> None:
    gate = HandshakeGate(in_progress=2, waiting=10, max_wait_s=5.0)
    assert await gate.enter("a") and await gate.enter("b")
    admitted: list[str] = []

    async def wait(name: str) -> None:
        if await gate.enter(name):
            admitted.append(name)

    waiters = [asyncio.create_task(wait(n)) for n in ("c", "d", "e")]
    await asyncio.sleep(0)
    assert (gate.in_progress, gate.waiting) == (2, 3)
    gate.done("a")
    await settle()
    assert admitted == ["c"]
    gate.done("b")
    gate.done("c")
    await asyncio.gather(*waiters)
    assert admitted == ["c", "d", "e"]
    assert (gate.in_progress, gate.waiting) == (2, 0)


async def test_past_the_lines_length_or_its_waiting_time_a_handshake_is_refused() -> None:
    gate = HandshakeGate(in_progress=1, waiting=1, max_wait_s=0.05)
    assert await gate.enter("a")
    waiting = asyncio.create_task(gate.enter("b"))
    await asyncio.sleep(0)
    assert not await gate.enter("c")  # the line is full
    assert not await waiting  # waited its time
    assert gate.waiting == 0
    gate.done("a")
    assert await gate.enter("d")  # room again, nobody in line


async def test_a_handshake_never_told_done_gives_its_turn_up_after_a_while() -> None:
    clock = HandClock()
    gate = HandshakeGate(
        in_progress=1, waiting=0, max_wait_s=1.0, forgotten_after_s=10.0, monotonic=clock
    )
    assert await gate.enter("lost")
    assert not await gate.enter("next")
    clock.now += 10.5
    assert await gate.enter("next")
    gate.done("lost")  # told late: nothing to give back
    assert gate.in_progress == 1


async def test_a_cancelled_waiter_leaves_the_line_and_a_cancelled_turn_is_passed_on() -> None:
    gate = HandshakeGate(in_progress=1, waiting=5, max_wait_s=5.0)
    assert await gate.enter("a")
    b = asyncio.create_task(gate.enter("b"))
    c = asyncio.create_task(gate.enter("c"))
    await asyncio.sleep(0)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    assert gate.waiting == 1
    gate.done("a")
    assert await c
    assert gate.in_progress == 1
