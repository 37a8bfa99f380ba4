"""A span for routing each message log record that carries a trace.

The record's headers name the trace of the send that appended it; routing
the record continues that trace, so a group message's trace reaches from
the sender's frame to the deliveries the fan-out publishes. A record without
one (tracing off, or an append made outside any trace) is routed untraced.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

from opentelemetry.trace import SpanKind

from chatmesh.kafka_io import LogRecord
from chatmesh.tracing import TRACEPARENT, TRACESTATE, Tracing, context_of, sampled

# Shared: routing an untraced record allocates nothing for tracing.
_UNTRACED = contextlib.nullcontext()


class RecordSpans:
    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def routing(self, record: LogRecord) -> AbstractContextManager[object]:
        """A span, child of the record's trace, current while the record is routed."""
        if not self._tracing.enabled:
            return _UNTRACED
        headers = dict(record.headers)
        traceparent = headers.get(TRACEPARENT, b"").decode()
        if not sampled(traceparent):
            return _UNTRACED  # no trace, or one not recorded
        return self._tracing.tracer.start_as_current_span(
            "fanout route",
            context=context_of(traceparent, headers.get(TRACESTATE, b"").decode()),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.kafka.partition": record.partition},
        )
