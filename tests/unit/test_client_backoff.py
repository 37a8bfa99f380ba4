"""A device's reconnect delay: quick after a lost connection, growing (with
full jitter, capped) while attempts keep failing."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chatmesh.client.device import RECONNECT_BACKOFF_MAX_S, RECONNECT_BACKOFF_S, reconnect_delay


@given(st.integers(min_value=0, max_value=200), st.integers())
def test_the_delay_stays_within_its_bounds(failures: int, seed: int) -> None:
    low, high = RECONNECT_BACKOFF_S
    delay = reconnect_delay(failures, random.Random(seed))
    assert low <= delay <= min(RECONNECT_BACKOFF_MAX_S, high * 2**failures)


def test_after_a_lost_connection_the_first_attempt_is_quick() -> None:
    rng = random.Random(7)
    assert all(reconnect_delay(0, rng) <= RECONNECT_BACKOFF_S[1] for _ in range(1000))


def test_failures_in_a_row_spread_attempts_out() -> None:
    rng = random.Random(7)
    first = [reconnect_delay(1, rng) for _ in range(1000)]
    later = [reconnect_delay(6, rng) for _ in range(1000)]
    assert sum(later) / len(later) > 5 * sum(first) / len(first)
    assert max(later) <= RECONNECT_BACKOFF_MAX_S
