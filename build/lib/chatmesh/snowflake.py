"""Snowflake ids: 41 bits of milliseconds, 10 bits of worker, 12 bits of sequence.

Ids from one generator strictly increase. Ids from generators with different
worker ids never collide. Worker ids are leased (see ``msgsvc.worker_lease``)
so two live instances never share one.

When the wall clock steps backwards the generator keeps issuing from its own
logical clock (the last millisecond it used) instead of refusing or repeating:
ids stay unique and increasing, their timestamps lag reality by at most
``max_lag_ms``. If the clock falls further behind than that, the generator
raises ``ClockWentBackwards`` rather than issue ids far in the future.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatmesh.clock import Clock

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: 2^41 ms from here lasts until 2093.
TIMESTAMP_BITS = 41
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER_ID = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
WORKER_SHIFT = SEQUENCE_BITS
TIMESTAMP_SHIFT = SEQUENCE_BITS + WORKER_BITS
# NTP corrections are usually well under a second; a 10 s step means a broken
# clock, and issuing ids that far ahead of real time would be worse than failing.
DEFAULT_MAX_LAG_MS = 10_000


class ClockWentBackwards(RuntimeError):
    """The wall clock is further behind the ids already issued than allowed."""


@dataclass(frozen=True, slots=True)
class SnowflakeParts:
    timestamp_ms: int
    worker_id: int
    sequence: int


def compose(timestamp_ms: int, worker_id: int, sequence: int) -> int:
    offset = timestamp_ms - EPOCH_MS
    if not 0 <= offset <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp_ms} outside the Snowflake range")
    if not 0 <= worker_id <= MAX_WORKER_ID:
        raise ValueError(f"worker id {worker_id} outside 0..{MAX_WORKER_ID}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} outside 0..{MAX_SEQUENCE}")
    return (offset << TIMESTAMP_SHIFT) | (worker_id << WORKER_SHIFT) | sequence


def parse(snowflake: int) -> SnowflakeParts:
    return SnowflakeParts(
        timestamp_ms=(snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS,
        worker_id=(snowflake >> WORKER_SHIFT) & MAX_WORKER_ID,
        sequence=snowflake & MAX_SEQUENCE,
    )


def timestamp_ms(snowflake: int) -> int:
    return (snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS


def lowest_id_at(timestamp_ms: int) -> int:
    """The smallest id any generator can issue in the given millisecond."""
    return compose(timestamp_ms, 0, 0)


class SnowflakeGenerator:
    """Issues ids for one worker. Not thread-safe; one per event loop."""

    def __init__(
        self,
        worker_id: int,
        clock: Clock,
        *,
        issued_through_ms: int = 0,
        max_lag_ms: int = DEFAULT_MAX_LAG_MS,
    ) -> None:
        """``issued_through_ms``: the latest millisecond any earlier holder of
        this worker id may have used; new ids start strictly after it."""
        compose(EPOCH_MS, worker_id, 0)  # validates the worker id
        self._worker_id = worker_id
        self._clock = clock
        self._max_lag_ms = max_lag_ms
        self._last_ms = max(issued_through_ms, EPOCH_MS - 1)
        self._sequence = MAX_SEQUENCE  # forces the next id past _last_ms

    @property
    def worker_id(self) -> int:
        return self._worker_id

    @property
    def last_ms(self) -> int:
        """The latest millisecond used so far (a high-water mark to persist)."""
        return self._last_ms

    def next_id(self) -> int:
        now = self._clock.now_ms()
        if now > self._last_ms:
            self._last_ms = now
            self._sequence = 0
        else:
            # Same millisecond, or the clock is behind the last id: continue on
            # the logical clock, borrowing the next millisecond when the
            # sequence runs out.
            if self._last_ms - now > self._max_lag_ms:
                raise ClockWentBackwards(
                    f"clock is {self._last_ms - now} ms behind issued ids "
                    f"(limit {self._max_lag_ms} ms)"
                )
            if self._sequence == MAX_SEQUENCE:
                self._last_ms += 1
                self._sequence = 0
            else:
                self._sequence += 1
        return compose(self._last_ms, self._worker_id, self._sequence)
