"""What librdkafka says is wrong with the brokers, so our errors can say it too.

librdkafka retries a broker it cannot talk to behind the scenes. Its calls
then fail with a bare "transport failure" or a timeout; the cause (a
refused password, a certificate nobody trusts, a listener that hung up in
the middle of the first request because it expected TLS) reaches only its
error and log callbacks. Each client gets a ``ConnectionTrouble`` as both:
it logs each cause once in a while, not at every reconnect, and keeps the
latest for the errors we raise to name.

The callbacks run on whichever thread serves the client (``poll``,
``consume``), never from librdkafka's own threads.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

log = logging.getLogger("chatmesh.kafka")

# A cause older than this is no longer taken for the reason a call failed:
# librdkafka reconnects at most 10 s apart, noting the cause again each time.
RECENT_S = 30.0
# A cause that persists is logged again this often.
RELOG_S = 60.0
MAX_REMEMBERED = 64  # distinct causes; more than that and some are logged early
# librdkafka's log line for a broker connection it gave up on:
# "FAIL [rdkafka#producer-1] [thrd:...]: host:port/id: <cause> (after 5ms in state X)"
_FAIL = re.compile(r"^FAIL \[[^\]]*\] \[[^\]]*\]: (?P<cause>.*)$")
_AFTER = re.compile(r" \(after \d+ms in state (\w+)\)")


class ConnectionTrouble:
    def __init__(self, client_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._client_id = client_id
        self._clock = clock
        self._latest: tuple[float, str] | None = None
        self._logged: dict[str, float] = {}

    def client_config(self) -> dict[str, Any]:
        """The librdkafka callbacks that feed this."""
        return {"error_cb": self.on_error, "logger": self}

    def on_error(self, error: KafkaError) -> None:
        # "1/1 brokers are down" says less than the cause noted before it.
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self.latest():
            return
        self._note(error.str())

    def log(self, level: int, fmt: str, *args: object) -> None:
        """librdkafka's log lines, as ``logging.Logger.log`` is called."""
        message = fmt % args
        failed = _FAIL.match(message)
        if failed is None:
            log.log(level, message, extra={"fields": {"client": self._client_id}})
        else:
            self._note(failed["cause"])

    def latest(self) -> str:
        """The last cause librdkafka gave, if recent; else empty."""
        if self._latest is None or self._clock() - self._latest[0] > RECENT_S:
            return ""
        return self._latest[1]

    def explain(self) -> str:
        """``" (broker trouble: <cause>)"`` to append to an error, or empty."""
        cause = self.latest()
        return f" (broker trouble: {cause})" if cause else ""

    def _note(self, cause: str) -> None:
        # The same failure differs only in its timing from one reconnect to the next.
        cause = _AFTER.sub(r" (in state \1)", cause)
        now = self._clock()
        self._latest = (now, cause)
        if now - self._logged.get(cause, -RELOG_S) >= RELOG_S:
            if len(self._logged) >= MAX_REMEMBERED:
                self._logged.clear()
            self._logged[cause] = now
            log.warning(
                "kafka broker trouble",
                extra={"fields": {"client": self._client_id, "cause": cause}},
            )
