"""Each client frame msgsvc handles: counted, its ack timed, and traced.

A frame's span continues the gateway's trace named in its envelope
(``InboundFrame.traceparent``): one gateway stream carries frames of many
connections, so the trace travels with each frame, not with the stream. The
span is current while the frame is handled, so the store calls and the
routing the frame starts are its children. A frame of a trace the gateway
did not sample is handled without any span.
"""

from __future__ import annotations

import time

from opentelemetry.trace import SpanKind, Status, StatusCode

from chatmesh.tracing import Tracing, context_of, sampled
from chatmesh.v1 import client_pb2, common_pb2, message_service_pb2
from msgsvc import metrics
from msgsvc.client_frames import ClientFrameHandler

# Errors that are msgsvc's fault, not the client's: only these mark a span failed.
_SERVER_FAULTS = frozenset({common_pb2.ERROR_CODE_INTERNAL, common_pb2.ERROR_CODE_UNAVAILABLE})


class FrameObserver:
    def __init__(self, frames: ClientFrameHandler, tracing: Tracing) -> None:
        self._frames = frames
        self._tracing = tracing
        self._span_names = {kind: f"frame {kind}" for kind in metrics.FRAME_KINDS}

    async def handle(
        self, inbound: message_service_pb2.InboundFrame, arrived_s: float
    ) -> client_pb2.ServerFrame:
        """The reply to ``inbound``, which arrived at ``arrived_s`` (``time.perf_counter``)."""
        if self._tracing.enabled and (not inbound.traceparent or sampled(inbound.traceparent)):
            reply = await self._traced(inbound)
        else:
            reply = await self._frames.handle(inbound.user_id, inbound.device_id, inbound.frame)
        kind = inbound.frame.WhichOneof("kind")
        answered = reply.WhichOneof("kind")
        metrics.FRAMES_BY_OUTCOME[kind or "none", answered == "error"].inc()
        if answered == "ack":
            metrics.SEND_ACK_SECONDS.observe(time.perf_counter() - arrived_s)
        elif answered == "error":
            metrics.ERRORS.labels(reply.error.reason).inc()
        return reply

    async def _traced(self, inbound: message_service_pb2.InboundFrame) -> client_pb2.ServerFrame:
        kind = inbound.frame.WhichOneof("kind") or "none"
        parent = (
            context_of(inbound.traceparent, inbound.tracestate) if inbound.traceparent else None
        )
        with self._tracing.tracer.start_as_current_span(
            self._span_names.get(kind, "frame"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"chatmesh.frame.kind": kind},
        ) as span:
            reply = await self._frames.handle(inbound.user_id, inbound.device_id, inbound.frame)
            if reply.WhichOneof("kind") == "error":
                span.set_attribute("chatmesh.error.reason", reply.error.reason)
                if reply.error.code in _SERVER_FAULTS:
                    span.set_status(Status(StatusCode.ERROR, reply.error.reason))
            return reply
