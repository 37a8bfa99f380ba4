"""A device's reconnect delay: quick after a lost connection, growing (with
full jitter, capped) while attempts keep failing; and what it counts each
failed attempt as."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from chatmesh.client.connection import NoHello
from chatmesh.client.device import (
    RECONNECT_BACKOFF_MAX_S,
    RECONNECT_BACKOFF_S,
    connect_failure_kind,
    reconnect_delay,
    retry_after_s,
)


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


def test_failed_attempts_are_told_apart_by_what_went_wrong() -> None:
    busy = InvalidStatus(Response(503, "Service Unavailable", Headers()))
    assert connect_failure_kind(busy) == "http 503"
    assert connect_failure_kind(NoHello("closed", 1013)) == "closed 1013 before hello"
    assert connect_failure_kind(NoHello("no hello within 5 s")) == "no hello"
    assert connect_failure_kind(TimeoutError()) == "open timeout"
    assert connect_failure_kind(ConnectionRefusedError()) == "refused"
    assert connect_failure_kind(ConnectionResetError()) == "network error"


def test_a_retry_after_of_seconds_is_taken_within_the_longest_backoff() -> None:
    assert retry_after_s("2") == 2.0
    assert retry_after_s("0.5") == 0.5
    assert retry_after_s("3600") == RECONNECT_BACKOFF_MAX_S
    for unusable in (None, "", "-5", "nan", "inf", "Wed, 21 Oct 2026 07:28:00 GMT"):
        assert retry_after_s(unusable) == 0.0
