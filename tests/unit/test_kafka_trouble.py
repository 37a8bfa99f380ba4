"""Broker trouble: logged once per cause in a while, named while recent."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from chatmesh.kafka_trouble import RECENT_S, RELOG_S, ConnectionTrouble

AUTH_FAILED = (
    "FAIL [rdkafka#producer-1] [thrd:sasl_ssl://k:9093/bootstrap]: sasl_ssl://k:9093/bootstrap:"
    " SASL authentication error: Authentication failed: Invalid username or password"
    " (after {}ms in state AUTH_REQ)"
)
CAUSE = (
    "sasl_ssl://k:9093/bootstrap: SASL authentication error: Authentication failed:"
    " Invalid username or password (in state AUTH_REQ)"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.__dict__["fields"]["cause"] for r in caplog.records if r.levelno == logging.WARNING]


def test_a_cause_is_logged_once_per_while_and_named_while_recent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    trouble = ConnectionTrouble("t", clock=clock)
    assert trouble.explain() == ""
    with caplog.at_level(logging.INFO, logger="chatmesh.kafka"):
        for after_ms in (301, 302, 305):  # reconnect after reconnect
            trouble.log(logging.ERROR, "%s", AUTH_FAILED.format(after_ms))
            clock.now += 1
        assert trouble.explain() == f" (broker trouble: {CAUSE})"
        assert _warnings(caplog) == [CAUSE]

        clock.now += RELOG_S
        trouble.log(logging.ERROR, "%s", AUTH_FAILED.format(300))
        assert _warnings(caplog) == [CAUSE, CAUSE]

    clock.now += RECENT_S + 1
    assert trouble.latest() == ""


def test_all_brokers_down_does_not_hide_the_cause() -> None:
    trouble = ConnectionTrouble("t", clock=Clock())
    trouble.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert trouble.latest() == "1/1 brokers are down"
    trouble.log(logging.ERROR, "%s", AUTH_FAILED.format(1))
    trouble.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert trouble.latest() == CAUSE


def test_other_librdkafka_lines_pass_through_at_their_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trouble = ConnectionTrouble("t", clock=Clock())
    with caplog.at_level(logging.INFO, logger="chatmesh.kafka"):
        trouble.log(logging.INFO, "%s [%s] %s", "CONFWARN", "rdkafka#producer-1", "a warning")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "CONFWARN [rdkafka#producer-1] a warning")
    ]
    assert trouble.latest() == ""
