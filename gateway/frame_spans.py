"""A span for each client frame the gateway hands to msgsvc, from its
arrival until its reply (or its failure) comes back.

The span's context rides in the frame's envelope (``InboundFrame.traceparent``),
so msgsvc continues the trace per frame although many connections share one
stream. Spans are kept by the frame's stream sequence number until answered;
a stream that breaks ends the spans of its unanswered frames as failed.
"""

from __future__ import annotations

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from chatmesh.metrics import oneof_names
from chatmesh.tracing import TRACEPARENT, TRACESTATE, Tracing, carrier_of
from chatmesh.v1 import client_pb2, message_service_pb2


class FrameSpans:
    def __init__(self, tracing: Tracing) -> None:
        self._tracer = tracing.tracer
        self._open: dict[int, Span] = {}
        self._names = {
            kind: f"ws frame {kind}" for kind in oneof_names(client_pb2.ClientFrame, "kind")
        }

    def start(self, inbound: message_service_pb2.InboundFrame) -> None:
        """Opens the frame's span and writes its context into the envelope."""
        kind = inbound.frame.WhichOneof("kind") or "none"
        span = self._tracer.start_span(
            self._names.get(kind, "ws frame"),
            kind=SpanKind.SERVER,
            attributes={"chatmesh.frame.kind": kind},
        )
        carrier = carrier_of(set_span_in_context(span))
        inbound.traceparent = carrier.get(TRACEPARENT, "")
        inbound.tracestate = carrier.get(TRACESTATE, "")
        self._open[inbound.seq] = span

    def answered(self, seq: int, reply: client_pb2.ServerFrame) -> None:
        span = self._open.pop(seq, None)
        if span is None:
            return
        if reply.WhichOneof("kind") == "error":
            span.set_attribute("chatmesh.error.reason", reply.error.reason)
        span.end()

    def failed(self, seq: int, reason: str) -> None:
        span = self._open.pop(seq, None)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, reason))
            span.end()

    def fail_all(self, seqs: list[int], reason: str) -> None:
        for seq in seqs:
            self.failed(seq, reason)
