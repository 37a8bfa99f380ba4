from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmesh import snowflake
from chatmesh.snowflake import ClockWentBackwards, SnowflakeGenerator

START_MS = snowflake.EPOCH_MS + 10**9


class SteppedClock:
    """Replays a list of wall-clock readings, then repeats the last one."""

    def __init__(self, readings: list[int]) -> None:
        self._readings = readings
        self._i = 0

    def now_ms(self) -> int:
        value = self._readings[min(self._i, len(self._readings) - 1)]
        self._i += 1
        return value


# Steps between successive clock readings: mostly forward or still, sometimes
# backwards (NTP corrections), within the generator's tolerance.
steps = st.lists(st.integers(min_value=-2_000, max_value=50), min_size=1, max_size=3_000)


def _readings(deltas: list[int]) -> list[int]:
    now, out = START_MS, []
    for d in deltas:
        now += d
        out.append(now)
    return out


@given(steps)
def test_ids_strictly_increase_per_worker_whatever_the_clock_does(deltas: list[int]) -> None:
    readings = _readings(deltas)
    lag = max(0, max(readings) - min(readings)) + 1  # never beyond tolerance here
    gen = SnowflakeGenerator(7, SteppedClock(readings), max_lag_ms=lag + 1_000)
    ids = [gen.next_id() for _ in readings]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {snowflake.parse(i).worker_id for i in ids} == {7}


@given(
    st.lists(st.integers(0, snowflake.MAX_WORKER_ID), min_size=2, max_size=6, unique=True), steps
)
def test_workers_never_collide(workers: list[int], deltas: list[int]) -> None:
    readings = _readings(deltas)
    seen: set[int] = set()
    total = 0
    for worker in workers:
        gen = SnowflakeGenerator(worker, SteppedClock(readings), max_lag_ms=10**7)
        ids = [gen.next_id() for _ in readings]
        seen.update(ids)
        total += len(ids)
    assert len(seen) == total


def test_sequence_exhaustion_borrows_the_next_millisecond() -> None:
    gen = SnowflakeGenerator(1, SteppedClock([START_MS]))
    ids = [gen.next_id() for _ in range(snowflake.MAX_SEQUENCE + 3)]
    parts = [snowflake.parse(i) for i in ids]
    assert parts[snowflake.MAX_SEQUENCE].timestamp_ms == START_MS
    assert parts[snowflake.MAX_SEQUENCE + 1].timestamp_ms == START_MS + 1
    assert parts[snowflake.MAX_SEQUENCE + 1].sequence == 0
    assert ids == sorted(set(ids))


def test_clock_going_back_within_tolerance_continues_on_the_logical_clock() -> None:
    gen = SnowflakeGenerator(3, SteppedClock([START_MS, START_MS - 500, START_MS - 400]))
    first, second, third = gen.next_id(), gen.next_id(), gen.next_id()
    assert first < second < third
    assert snowflake.timestamp_ms(third) == START_MS  # the lagging clock did not rewind ids


def test_clock_going_back_beyond_tolerance_refuses() -> None:
    gen = SnowflakeGenerator(3, SteppedClock([START_MS, START_MS - 20_000]), max_lag_ms=10_000)
    gen.next_id()
    with pytest.raises(ClockWentBackwards):
        gen.next_id()


def test_new_holder_of_a_worker_id_starts_after_the_previous_holders_mark() -> None:
    # The previous holder issued ids through START_MS; this instance's clock is behind.
    gen = SnowflakeGenerator(5, SteppedClock([START_MS - 3_000]), issued_through_ms=START_MS)
    assert snowflake.timestamp_ms(gen.next_id()) == START_MS + 1


@given(
    st.integers(snowflake.EPOCH_MS, snowflake.EPOCH_MS + snowflake.MAX_TIMESTAMP),
    st.integers(0, snowflake.MAX_WORKER_ID),
    st.integers(0, snowflake.MAX_SEQUENCE),
)
def test_compose_and_parse_round_trip(ts: int, worker: int, seq: int) -> None:
    parts = snowflake.parse(snowflake.compose(ts, worker, seq))
    assert (parts.timestamp_ms, parts.worker_id, parts.sequence) == (ts, worker, seq)


def test_ids_fit_a_signed_64_bit_column() -> None:
    biggest = snowflake.compose(
        snowflake.EPOCH_MS + snowflake.MAX_TIMESTAMP,
        snowflake.MAX_WORKER_ID,
        snowflake.MAX_SEQUENCE,
    )
    assert biggest < 2**63


def test_invalid_worker_id_is_rejected() -> None:
    with pytest.raises(ValueError):
        SnowflakeGenerator(snowflake.MAX_WORKER_ID + 1, SteppedClock([START_MS]))
