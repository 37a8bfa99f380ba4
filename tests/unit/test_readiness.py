"""Readiness: ready once started and every check passes; gates need pass once."""

from __future__ import annotations

from chatmesh.readiness import Readiness


class Switch:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    async def check(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionError("down")


async def test_not_ready_until_started_and_every_check_passes() -> None:
    store = Switch()
    changes: list[bool] = []

    async def listener(ready: bool) -> None:
        changes.append(ready)

    readiness = Readiness()
    readiness.add_check("store", store.check)
    readiness.on_change(listener)
    store.up = True
    assert not await readiness.check_now()  # not started yet
    assert readiness.failing == ["starting"]
    await readiness.started()
    assert readiness.ready
    store.up = False
    await readiness.check_now()
    assert not await readiness.check_now()
    assert readiness.failing == ["store"]
    store.up = True
    assert await readiness.check_now()
    assert changes == [True, False, True]


async def test_a_gate_is_checked_until_it_first_passes() -> None:
    upstream = Switch()
    readiness = Readiness()
    readiness.add_gate("upstream", upstream.check)
    await readiness.started()
    assert not readiness.ready and readiness.failing == ["upstream"]
    upstream.up = True
    assert await readiness.check_now()
    upstream.up = False
    calls = upstream.calls
    assert await readiness.check_now()  # later outages are the process's own business
    assert upstream.calls == calls


async def test_a_ready_process_turns_unready_only_on_a_second_failure_in_a_row() -> None:
    store = Switch()
    store.up = True
    readiness = Readiness()
    readiness.add_check("store", store.check)
    await readiness.started()
    store.up = False
    assert await readiness.check_now()  # one slow or failed answer is not an outage
    assert readiness.suspect and readiness.failing == []
    store.up = True
    assert await readiness.check_now()
    assert not readiness.suspect
    store.up = False
    assert await readiness.check_now()
    assert not await readiness.check_now()
    assert readiness.failing == ["store"]
    # An unready process turns ready on the first check that passes.
    store.up = True
    assert await readiness.check_now()
